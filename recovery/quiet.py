"""Quiet hours: may a channel reach a recipient now, and if not, from which minute on.

Send windows are local to the recipient (see :mod:`recovery.regions`); a region's override
(``US-FL``, then ``US``) beats the store's per-channel window. A recipient with several
candidate zones must be inside the window in every one of them; when no minute satisfies
all of them, :func:`next_allowed` raises :class:`NoAllowedMinute` (the touch is skipped with
that reason, never sent in anyone's quiet hours).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from zoneinfo import ZoneInfo

from recovery.policy import StorePolicy, Window

_SUNDAY = 6
_DAYS_AHEAD = 9


class NoAllowedMinute(ValueError):
    """No minute within the look-ahead is inside the window in every candidate zone."""


def window_for(policy: StorePolicy, channel: str, regions: Sequence[str]) -> Window | None:
    """The window ruling ``channel`` for a recipient in ``regions``.

    Every subdivision rule that names the channel applies (a number from one state and an
    address in another: the window is the intersection, so neither state's hours are broken;
    ``null`` lifts nothing while another subdivision restricts). Without one, the country's
    rule; without that, the store's window. ``None``: no window.
    """
    found: list[Window] = []
    matched = False
    for region in regions:
        if "-" in region:
            rules = policy.regions.get(region)
            if rules is not None and channel in rules.windows:
                matched = True
                window = rules.windows[channel]
                if window is not None:
                    found.append(window)
    if not matched:
        for region in regions:
            rules = policy.regions.get(region)
            if "-" not in region and rules is not None and channel in rules.windows:
                return rules.windows[channel]
        return policy.send_windows.get(channel)  # type: ignore[call-overload]
    if len(found) <= 1:
        return found[0] if found else None
    start, end = max(w.start for w in found), min(w.end for w in found)
    # May be empty (start >= end): then no minute is allowed and next_allowed says so.
    return Window.model_construct(start=start, end=end, sundays=all(w.sundays for w in found))


def allowed_at(moment: datetime, window: Window, zone: ZoneInfo) -> bool:
    local = moment.astimezone(zone)
    if not window.sundays and local.weekday() == _SUNDAY:
        return False
    minute = local.hour * 60 + local.minute
    return window.start <= minute < window.end


def next_allowed(now: datetime, window: Window, zones: Sequence[ZoneInfo]) -> datetime:
    """``now`` when every zone is inside ``window``, else the earliest minute that is.

    The answer is a window start in one of the zones (computed per local day, so DST
    changes move it correctly; a start inside a spring-forward gap maps to the first real
    minute after it).
    """
    if all(allowed_at(now, window, z) for z in zones):
        return now
    start = clock_time(window.start // 60, window.start % 60)  # start < end <= 24:00
    if len(zones) == 1:
        only = zones[0]
        today = now.astimezone(only).date()
        for ahead in range(_DAYS_AHEAD):
            at = datetime.combine(today + timedelta(days=ahead), start, tzinfo=only).astimezone(UTC)
            if at > now and allowed_at(at, window, only):
                return at
        raise NoAllowedMinute(f"no allowed minute within {_DAYS_AHEAD} days for window {window}")
    candidates: list[datetime] = []
    for zone in zones:
        today = now.astimezone(zone).date()
        for ahead in range(_DAYS_AHEAD):
            local = datetime.combine(today + timedelta(days=ahead), start, tzinfo=zone)
            at = local.astimezone(UTC)
            if at > now:
                candidates.append(at)
    for at in sorted(candidates):
        if all(allowed_at(at, window, z) for z in zones):
            return at
    raise NoAllowedMinute(f"no allowed minute within {_DAYS_AHEAD} days for window {window}")
