"""The build context: the files a Dockerfile's COPY and ADD may use, as Docker sends them.

``.dockerignore`` is honoured with Docker's rules (``*``, ``?``, ``**``, ``!`` exceptions, the
last matching line wins, a directory's exclusion covers what is in it). No source may name a
path outside the context (``../x``), and a symbolic link that points outside it is refused.
The context has a size limit (500 MB by default), checked before anything is built.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from labkit.errors import BuildError

MAX_CONTEXT_BYTES = 500 * 1024 * 1024
GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class Entry:
    """One path of the context."""

    path: str  # relative, with "/" separators
    kind: str  # "file", "dir" or "link"
    size: int
    mode: int
    target: str = ""  # a link's target


class IgnoreRules:
    """The patterns of a ``.dockerignore``."""

    def __init__(self, text: str) -> None:
        self.rules: list[tuple[re.Pattern[str], bool]] = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            exception = line.startswith("!")
            pattern = posixpath.normpath(line[1:].strip() if exception else line).lstrip("/")
            if pattern in ("", "."):
                continue
            self.rules.append((re.compile(_translate(pattern)), exception))

    @property
    def has_exceptions(self) -> bool:
        """Whether some ``!`` line may bring back a path inside an excluded directory."""
        return any(exception for _, exception in self.rules)

    def excluded(self, path: str) -> bool:
        """Whether ``path`` (relative, "/"-separated) is left out of the context."""
        parents = [path]
        while "/" in parents[-1]:
            parents.append(parents[-1].rsplit("/", 1)[0])
        result = False
        for regex, exception in self.rules:
            if any(regex.fullmatch(p) for p in parents):
                result = not exception
        return result


def _translate(pattern: str) -> str:
    """A regular expression for one .dockerignore pattern (Go's filepath.Match plus ``**``)."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                i += 1
                out.append("(?:.*/)?")
            else:
                out.append(".*")
            continue
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1 : end]
                out.append("[" + ("^" + body[1:] if body.startswith("^") else re.escape(body)) + "]")
                i = end
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)


class BuildContext:
    """The files of a context directory, without what ``.dockerignore`` leaves out."""

    def __init__(self, root: Path, limit: int = MAX_CONTEXT_BYTES) -> None:
        if not root.is_dir():
            raise BuildError(
                f"the build context {root} is not a directory",
                "give the folder holding your Dockerfile and files, e.g. labkit build -t app:1.0 .",
            )
        self.root = root.resolve()
        ignore = self.root / ".dockerignore"
        self.ignore = IgnoreRules(ignore.read_text(errors="replace") if ignore.exists() else "")
        self.entries: dict[str, Entry] = {}
        self.size = 0
        self._walk(limit)

    def _walk(self, limit: int) -> None:
        prune = not self.ignore.has_exceptions
        for top, dirs, files in os.walk(self.root):
            rel_top = os.path.relpath(top, self.root).replace(os.sep, "/")
            rel_top = "" if rel_top == "." else rel_top + "/"
            kept = []
            for name in dirs:
                rel = rel_top + name
                excluded = self.ignore.excluded(rel)
                if os.path.islink(os.path.join(top, name)):
                    files.append(name)
                elif not (excluded and prune):
                    kept.append(name)
                    if not excluded:
                        self._add(rel, os.path.join(top, name))
            dirs[:] = kept
            for name in files:
                rel = rel_top + name
                if not self.ignore.excluded(rel):
                    self._add(rel, os.path.join(top, name))
            if self.size > limit:
                raise BuildError(
                    f"the build context {self.root} is over {limit // 2**20} MB, the limit",
                    "list big folders you do not COPY (data/, .venv/, node_modules/, .git/) in a "
                    ".dockerignore next to the Dockerfile, or build from a smaller folder",
                )

    def _add(self, rel: str, full: str) -> None:
        info = os.lstat(full)
        if stat.S_ISLNK(info.st_mode):
            self.entries[rel] = Entry(rel, "link", 0, info.st_mode, os.readlink(full))
        elif stat.S_ISDIR(info.st_mode):
            self.entries[rel] = Entry(rel, "dir", 0, stat.S_IMODE(info.st_mode))
        elif stat.S_ISREG(info.st_mode):
            self.entries[rel] = Entry(rel, "file", info.st_size, stat.S_IMODE(info.st_mode))
            self.size += info.st_size

    def escapes(self, entry: Entry) -> bool:
        """Whether a link points outside the context."""
        if entry.target.startswith("/"):
            return True
        joined = posixpath.normpath(posixpath.join(posixpath.dirname(entry.path), entry.target))
        return joined == ".." or joined.startswith("../")

    def select(self, source: str, instruction: str, line: int) -> list[tuple[str, list[Entry]]]:
        """The context paths a COPY source names: for each match, the path and the entries it
        brings (a directory brings everything under it). Raises :class:`BuildError` for a
        path outside the context, a missing one, or a link pointing out."""
        clean = posixpath.normpath(source.replace("\\", "/")).lstrip("/") or "."
        if clean == ".." or clean.startswith("../"):
            raise BuildError(
                f"Dockerfile line {line}: {instruction}: {source} is outside the build context ({self.root})",
                "files can only come from inside the context: move the file into it, or build from "
                "a folder that holds both (labkit build -f path/to/Dockerfile FOLDER)",
                line=line,
            )
        if clean == ".":
            matches = [""]
        elif GLOB_CHARS.search(clean):
            regex = re.compile(_translate(clean))
            matches = sorted(p for p in self.entries if regex.fullmatch(p))
        else:
            matches = [clean] if clean in self.entries else []
        if not matches:
            raise self._missing(source, clean, instruction, line)
        return [(m, self._under(m, instruction, line)) for m in matches]

    def _under(self, path: str, instruction: str, line: int) -> list[Entry]:
        if path and self.entries[path].kind != "dir":
            chosen = [self.entries[path]]
        else:
            prefix = path + "/" if path else ""
            chosen = [e for p, e in sorted(self.entries.items()) if p.startswith(prefix)]
        for entry in chosen:
            if entry.kind == "link" and self.escapes(entry):
                raise BuildError(
                    f"Dockerfile line {line}: {instruction}: {entry.path} is a symbolic link to "
                    f"{entry.target}, outside the build context",
                    "copy the file it points to into the context instead of linking to it, or list "
                    "the link in .dockerignore",
                    line=line,
                )
        return chosen

    def _missing(self, source: str, clean: str, instruction: str, line: int) -> BuildError:
        if (self.root / clean).exists() or os.path.islink(self.root / clean):
            return BuildError(
                f"Dockerfile line {line}: {instruction}: {source} is excluded by .dockerignore",
                "remove the matching line from .dockerignore (or add a !exception) to copy it",
                line=line,
            )
        return BuildError(
            f"Dockerfile line {line}: {instruction}: {source} not found in the build context ({self.root})",
            "check the name (paths are relative to the context folder, not to the Dockerfile)",
            line=line,
        )

    def digest(self, entries: list[Entry]) -> str:
        """A hash of what these entries hold: names, kinds, modes, contents, link targets."""
        h = hashlib.sha256()
        for entry in entries:
            h.update(f"{entry.path}\0{entry.kind}\0{entry.mode:o}\0{entry.size}\0{entry.target}\0".encode())
            if entry.kind == "file":
                with open(self.root / entry.path, "rb") as f:
                    while chunk := f.read(1 << 20):
                        h.update(chunk)
        return h.hexdigest()

    def path(self, entry: Entry) -> Path:
        """Where an entry is on disk."""
        return self.root / entry.path
