"""Per-policy lookups computed once: the hot path of planning and deciding reads these.

A :class:`StorePolicy` is frozen, so everything derived from it can be cached for the life of
the object: band tables with holdout thresholds, each step's spec and offset text, the set of
channels that have a send window somewhere, the caps as plain sets and dicts. The cache is
keyed by object identity and holds the policy itself, so an id is never reused while cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from recovery.bands import band_index
from recovery.durations import format_duration
from recovery.policy import SEGMENTS, Band, Incentive, SegmentRule, StorePolicy

HOLDOUT_SCALE = 1 << 64
_CACHE_LIMIT = 1024


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a band's sequence as a segment sees it (template swapped, reason ready)."""

    step: int
    channel: str
    template: str
    offset: timedelta
    incentive: Incentive | None
    why: str


def _steps(band: Band, segment: str, rule: SegmentRule) -> tuple[tuple[Step, ...], list[str]]:
    steps = []
    skipped = []
    for step, spec in enumerate(band.sequence, start=1):
        if spec.channel in rule.skip_channels:
            skipped.append(f"skipped: step {step} {spec.channel} (segment {segment})")
            continue
        template = rule.templates.get(spec.template, spec.template)
        why = f"step {step}: {spec.channel} +{format_duration(spec.offset)} {template}"
        if template != spec.template:
            why += f" (segment {segment} instead of {spec.template})"
        steps.append(Step(step, spec.channel, template, spec.offset, spec.incentive, why))
    return tuple(steps), skipped


@dataclass(frozen=True, slots=True)
class BandTable:
    """A band with its holdout threshold (``share * 2**64``) and its steps per segment."""

    band: Band
    low: bool
    holdout_threshold: int
    steps: dict[str, tuple[Step, ...]]
    skipped: dict[str, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class PolicyTables:
    policy: StorePolicy
    mins: tuple[Decimal, ...]
    bands: tuple[BandTable, ...]
    windowed: frozenset[str]
    gaps: dict[str, timedelta]
    counted: frozenset[str]
    max_touches: int
    cap_window: timedelta
    max_delay: timedelta
    max_delay_text: str
    cap_text: str
    zone_overrides: tuple[tuple[str, str], ...]

    def band_for(self, amount: Decimal) -> BandTable:
        return self.bands[band_index(self.mins, amount)]


_cache: dict[int, PolicyTables] = {}


def compile_policy(policy: StorePolicy) -> PolicyTables:
    found = _cache.get(id(policy))
    if found is not None and found.policy is policy:
        return found
    tables = []
    for index, band in enumerate(policy.bands):
        steps: dict[str, tuple[Step, ...]] = {}
        skipped: dict[str, tuple[str, ...]] = {}
        for segment in SEGMENTS:
            made, dropped = _steps(band, segment, policy.segments.rule(segment))
            steps[segment], skipped[segment] = made, tuple(dropped)
        # the first band never carries an incentive unless it says so (a flat baseline)
        low = index == 0 and not band.allow_incentive
        tables.append(BandTable(band, low, int(band.holdout * HOLDOUT_SCALE), steps, skipped))
    bands = tuple(tables)
    windowed = {ch for ch, window in policy.send_windows.items() if window is not None}
    for rules in policy.regions.values():
        windowed.update(ch for ch, window in rules.windows.items() if window is not None)
    caps = policy.caps
    built = PolicyTables(
        policy=policy,
        mins=tuple(b.min for b in policy.bands),
        bands=bands,
        windowed=frozenset(windowed),
        gaps={str(channel): gap for channel, gap in caps.min_gap.items()},
        counted=frozenset(caps.counted_channels),
        max_touches=caps.max_touches,
        cap_window=caps.window,
        max_delay=caps.max_delay,
        max_delay_text=format_duration(caps.max_delay),
        cap_text=f"{caps.max_touches} touches per {format_duration(caps.window)}",
        zone_overrides=tuple(sorted(policy.region_timezones.items())),
    )
    if len(_cache) >= _CACHE_LIMIT:
        _cache.clear()
    _cache[id(policy)] = built
    return built
