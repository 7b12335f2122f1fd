"""Human durations such as ``1h``, ``30m``, ``2s``, ``1d12h`` as timedeltas."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|d|h|m|s|w)")
_UNITS = {
    "w": timedelta(weeks=1),
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
    "ms": timedelta(milliseconds=1),
}


def parse_duration(text: object) -> timedelta:
    """Parse ``'1h30m'`` into a timedelta; a bare number is seconds.

    Raises ValueError with what was wrong.
    """
    if isinstance(text, timedelta):
        return text
    if isinstance(text, bool):
        raise ValueError("duration must be text like '1h', '30m' or '2s'")
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError("duration must not be negative")
        return timedelta(seconds=text)
    if not isinstance(text, str):
        raise ValueError("duration must be text like '1h', '30m' or '2s'")
    raw = text.strip().lower().replace(" ", "")
    if not raw:
        raise ValueError("duration is empty")
    pos = 0
    total = timedelta()
    for match in _PART.finditer(raw):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(raw):
        raise ValueError(f"not a duration: {text!r} (use forms like '1h', '30m', '2s', '1d12h')")
    return total


def format_duration(delta: timedelta) -> str:
    """The shortest ``1d2h3m4s`` form of a timedelta (whole seconds, ms if below)."""
    ms = round(delta.total_seconds() * 1000)
    if ms == 0:
        return "0s"
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms >= size:
            parts.append(f"{ms // size}{unit}")
            ms %= size
    if ms:
        parts.append(f"{ms}ms")
    return sign + "".join(parts)
