"""The end of a stream scenario: read what the stream emitted and delivered, count against the
core."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from subprocess import Popen
from typing import Any

from recovery.simulate import Simulation
from tests.conftest import Workers
from tests.reliability.harness import Sender, Timed, read_results, read_touches, wait_for
from tests.reliability.tally import (
    Tally,
    after_order,
    after_redaction,
    compare,
    delivered,
    leaks,
)


def worker_logs(pool: Workers) -> str:
    return "\n".join(log.read_text(errors="replace") for _, log in pool.processes)


def running(processes: Iterable[Popen[bytes]]) -> str | None:
    """None while at least one of ``processes`` runs (else why the wait is pointless)."""
    codes = [p.poll() for p in processes]
    return None if any(code is None for code in codes) else f"every process exited: {codes}"


def settle(
    tally: Tally,
    pool: Workers,
    sender: Sender,
    events: Timed,
    core: Simulation,
    workers: list[Popen[bytes]],
    *,
    redactions: Mapping[str, float] | None = None,
    ignore: Iterable[str] = (),
    timeout: float = 120.0,
) -> Tally:
    """Wait for the core's touches (and any extra), then for their deliveries; count. When
    every worker exited meanwhile, count what they emitted (the caller asserts they run)."""
    wanted = {t["touch_id"] for t in core.touches}
    stream = read_touches(pool, wanted, timeout=timeout, alive=lambda: running(workers))
    emitted = {t["touch_id"] for t in stream}
    wait_for(lambda: emitted <= {line["touch_id"] for line in sender.lines()}, 60.0)
    compare(tally, core.touches, stream, ignore=ignore)
    per_id = delivered(tally, sender.lines())
    given = [e for _, e in events]
    after_order(tally, given, stream)
    if redactions:
        # what reached the shopper: the senders' check is part of the promise
        after_redaction(tally, given, sender.lines(), redactions)
    results = read_results(pool, emitted, timeout=30.0)
    first: dict[str, str] = {}
    for result in results:
        first.setdefault(result["touch_id"], result["outcome"])
    # a touch delivered but reported ``deduplicated``: what is measured and billed from the
    # results would miss a delivery
    misreported = sum(1 for t, n in per_id.items() if n and first.get(t) == "deduplicated")
    # a touch in flight at a sender's kill is reported ``unknown`` and never sent again (at
    # most once); any other emitted touch without a delivery is lost
    unknown = {t for t, outcome in first.items() if outcome == "unknown"}
    undelivered = emitted - per_id.keys()
    tally.lost += len(undelivered - unknown)
    tally.notes.update(
        exited=running(workers) or "none",
        copies=len(stream),
        delivered=sum(per_id.values()),
        undelivered=len(undelivered),
        misreported=misreported,
        outcomes=dict(sorted(Counter(first.values()).items())),
    )
    return tally


def contact_values(events: Iterable[Mapping[str, Any]]) -> set[str]:
    """Every email and phone number the input gave (what must never reach a log line)."""
    found: set[str] = set()
    for event in events:
        contact = event.get("contact")
        if isinstance(contact, dict):
            for name in ("email", "phone", "sms_phone"):
                value = contact.get(name)
                if isinstance(value, str):
                    found.add(value)
    return found


def contacts(events: Timed, *logs: str) -> list[tuple[str, str]]:
    texts = {f"log {i}": text for i, text in enumerate(logs)}
    return leaks(texts, contact_values(e for _, e in events))


BROKER_KIND = os.environ.get("CARTBANDS_TEST_BROKER", "tansu")
# tansu answers ListOffsets(latest) short of the end (quirk 4 of ../shared/BROKER.md): a worker
# that gets back a changelog partition it had before finds its persisted offset above that
# "end" and stops with this error. Apache Kafka answers the true end offset.
TANSU_QUIRK_4 = "is higher\nthan the last offset in that topic (highwater)"


# what a worker logs once its tables are recovered and its agents start (cartbands.worker)
STARTED = "INFO cartbands.worker: stages: "


def came_up(process: Popen[bytes], log: Path, timeout: float = 90.0) -> str | None:
    """None once the worker has recovered its tables and started, still running; else why
    not. A worker restarted on its kept state after a kill must get there even when every
    touch was delivered before it started: what comes next would be lost otherwise. On tansu,
    an exit for its quirk 4 is the broker's, as in :func:`died`."""
    wait_for(
        lambda: process.poll() is not None or STARTED in log.read_text(errors="replace"), timeout
    )
    text = log.read_text(errors="replace")
    running = process.poll() is None
    if running and STARTED in text:
        return None
    if not running and not died([process], [log]):  # tansu's quirk 4
        return None
    state = "running" if running else f"exit {process.returncode}"
    return f"{log.name} not started after {timeout:.0f} s ({state}): {text[-1500:]}"


def died(processes: Iterable[Popen[bytes]], logs: Iterable[Path]) -> list[str]:
    """Why each exited process of ``processes`` exited, except tansu's quirk 4 on tansu."""
    out = []
    for process, log in zip(processes, logs, strict=True):
        if process.poll() is None:
            continue
        text = log.read_text(errors="replace")
        if BROKER_KIND == "tansu" and TANSU_QUIRK_4 in text:
            continue
        out.append(f"exit {process.returncode}: {text[-1500:]}")
    return out
