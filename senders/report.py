"""What the senders did, for ``cartbands run``'s summary: outcomes and the outbox's contents."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

from bus.kafka import drain
from bus.topics import CHANNELS, TopicNames


async def collect_results(
    bootstrap: str,
    names: TopicNames,
    expected: int,
    timeout: float,
    abort: Callable[[], str | None] | None = None,
) -> Counter[tuple[str, str]]:
    """(channel, outcome) counts of the first result of ``expected`` distinct touches."""
    results = await drain(
        bootstrap,
        [names.touch_results],
        until=expected,
        timeout=timeout,
        abort=abort,
        distinct=lambda value: value.get("touch_id") if isinstance(value, dict) else None,
    )
    return Counter((value["channel"], value["outcome"]) for _, _, value in results)


def outbox_counts(outbox_dir: Path) -> dict[str, int]:
    """Messages per channel in the outbox files."""
    counts = {}
    for channel in CHANNELS:
        path = outbox_dir / f"{channel}.ndjson"
        counts[channel] = len(path.read_bytes().splitlines()) if path.exists() else 0
    return counts


def summary_lines(outbox_dir: Path, outcomes: Counter[tuple[str, str]]) -> list[str]:
    counts = outbox_counts(outbox_dir)
    lines = ["", f"outbox: {outbox_dir}", "delivered to the outbox per channel"]
    for channel in CHANNELS:
        others = ", ".join(
            f"{outcome} {n}"
            for (ch, outcome), n in sorted(outcomes.items())
            if ch == channel and outcome != "delivered"
        )
        lines.append(f"  {channel:<6} {counts[channel]:>3}" + (f"  ({others})" if others else ""))
    return lines
