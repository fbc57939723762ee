"""Go's ``encoding/base64`` StdEncoding errors, for the byte offsets the API server reports."""

from __future__ import annotations

_B64 = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def base64_error(text: str) -> str | None:
    """Go's error for ``text`` as padded base64 (``illegal base64 data at input byte N``), or None."""
    src, si = text.encode(), 0
    while si < len(src):
        si, bad = _base64_quantum(src, si)
        if bad is not None:
            return f"illegal base64 data at input byte {bad}"
    return None


def _base64_quantum(src: bytes, si: int) -> tuple[int, int | None]:
    """One 4-character group of Go's decodeQuantum: the next offset and a bad offset, if any."""
    j = 0
    while j < 4:
        if si == len(src):
            return si, None if j == 0 else si - j
        char = chr(src[si])
        si += 1
        if char in _B64:
            j += 1
            continue
        if char in "\r\n":
            continue
        if char != "=" or j < 2:
            return si, si - 1
        if j == 2:  # "==" expected
            while si < len(src) and chr(src[si]) in "\r\n":
                si += 1
            if si == len(src):
                return si, len(src)
            if chr(src[si]) != "=":
                return si, si - 1
            si += 1
        while si < len(src) and chr(src[si]) in "\r\n":
            si += 1
        return si, si if si < len(src) else None
    return si, None
