"""Timestamps as the Kubernetes API writes them, and ages as ``kubectl get`` prints them."""

from __future__ import annotations

import re
from datetime import datetime, timezone

_RFC3339 = re.compile(r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$")

_MINUTE = 60
_HOUR = 60 * _MINUTE
_DAY = 24


def now() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(timezone.utc)


def rfc3339(dt: datetime | None = None) -> str:
    """``dt`` (default: now) as ``2026-11-25T08:01:17Z``: UTC, whole seconds, like ``metav1.Time``.

    A naive ``dt`` is taken to be UTC already.
    """
    dt = now() if dt is None else dt
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(s: str) -> datetime:
    """Parse an RFC 3339 timestamp (``Z`` or an offset, optional fraction) to an aware UTC datetime.

    Raises ``ValueError`` naming the text when it is not RFC 3339.
    """
    match = _RFC3339.match(s.strip()) if isinstance(s, str) else None
    if match is None:
        raise ValueError(f"invalid RFC 3339 timestamp {s!r}: expected e.g. 2026-11-25T08:01:17Z")
    date, clock, fraction, offset = match.groups()
    micros = (fraction or "").ljust(6, "0")[:6]
    offset = "+00:00" if offset in ("Z", "z") else offset
    try:
        parsed = datetime.fromisoformat(f"{date}T{clock}.{micros}{offset}")
    except ValueError as e:
        raise ValueError(f"invalid RFC 3339 timestamp {s!r}: {e}") from e
    return parsed.astimezone(timezone.utc)


def human_duration(seconds: float) -> str:
    """A duration with two or three significant figures, exactly as apimachinery's ``HumanDuration``.

    Up to 2 minutes in seconds (``45s``), under 10 minutes as ``5m10s``, under 3 hours in minutes
    (``150m``), under 8 hours as ``3h5m``, under 2 days in hours (``30h``), under 8 days as ``2d3h``,
    under 2 years in days (``400d``), under 8 years as ``3y20d``, then in years (``8y``). Slightly
    negative durations (clock skew, above -2 s) print ``0s``; anything earlier prints ``<invalid>``.
    """
    whole = int(seconds)  # truncates toward zero, as Go's int(d.Seconds()) does
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 2 * _MINUTE:
        return f"{whole}s"
    minutes = whole // _MINUTE
    if minutes < 10:
        return _pair(minutes, "m", whole % _MINUTE, "s")
    if minutes < 3 * 60:
        return f"{minutes}m"
    hours = whole // _HOUR
    if hours < 8:
        return _pair(hours, "h", minutes % 60, "m")
    if hours < 2 * _DAY:
        return f"{hours}h"
    days = hours // _DAY
    if hours < 8 * _DAY:
        return _pair(days, "d", hours % _DAY, "h")
    if hours < 2 * 365 * _DAY:
        return f"{days}d"
    if hours < 8 * 365 * _DAY:
        return _pair(days // 365, "y", days % 365, "d")
    return f"{days // 365}y"


def _pair(major: int, major_unit: str, minor: int, minor_unit: str) -> str:
    return f"{major}{major_unit}" if minor == 0 else f"{major}{major_unit}{minor}{minor_unit}"


def age(ts: str | None, now: datetime) -> str:
    """How long ago ``ts`` was, relative to ``now``, as the AGE column prints it.

    ``<unknown>`` when the timestamp is missing, empty or unreadable (kubectl prints the same
    for a zero time), so one odd object never breaks a whole listing.
    """
    if not ts:
        return "<unknown>"
    try:
        then = parse_rfc3339(ts)
    except ValueError:
        return "<unknown>"
    return human_duration((now - then).total_seconds())
