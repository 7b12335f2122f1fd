"""``cartbands run``: the whole pipeline on an embedded broker with a built-in sample.

The sample is replayed in event time (the worker runs with ``--clock event``), so a week of
recovery sequences under the real default policy plays out in seconds. The same events also go
through the pure core in-process (:mod:`recovery.simulate`); the run fails unless the stream
emitted exactly the touches the core says it should.
"""

from __future__ import annotations

import asyncio
import subprocess
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from cartbands.broker import EmbeddedBroker
from cartbands.kafka import DrainAborted, drain, ensure_topics
from cartbands.policyfile import DEFAULT_POLICY, load_policy
from cartbands.processes import running, tail
from cartbands.replay import replay
from cartbands.sample import sample_events
from recovery.checkouts import epoch
from recovery.policyset import PolicySet
from recovery.simulate import simulate
from senders.report import collect_results, summary_lines
from streams.app import code_secret
from streams.topics import CHANNELS, TopicNames


def touch_signature(command: dict[str, Any]) -> tuple[str, str, str, str | None]:
    incentive = command.get("incentive") or {}
    return command["touch_id"], command["channel"], command["due_at"], incentive.get("code")


@dataclass
class RunSummary:
    carts_by_band: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    segments: Counter[str] = field(default_factory=Counter)
    touches_by_channel: Counter[str] = field(default_factory=Counter)
    discounts_by_band: Counter[str] = field(default_factory=Counter)
    expected: int = 0
    matches_core: bool = False
    extra_lines: list[str] = field(default_factory=list)

    @property
    def touches(self) -> int:
        return sum(self.touches_by_channel.values())

    def add(self, command: dict[str, Any]) -> None:
        if command["cart"] not in self.carts_by_band[command["band"]]:
            self.segments[command.get("segment") or "?"] += 1
        self.carts_by_band[command["band"]].add(command["cart"])
        self.touches_by_channel[command["channel"]] += 1
        incentive = command.get("incentive")
        if incentive and incentive.get("kind") in ("percent_off", "fixed_off"):
            self.discounts_by_band[command["band"]] += 1

    def render(self, band_order: list[str]) -> str:
        lines = ["cartbands run: summary", "", "carts per band (carts that received touches)"]
        for band in band_order:
            carts = self.carts_by_band.get(band, set())
            discounted = self.discounts_by_band[band]
            lines.append(f"  {band:<6} {len(carts):>3} carts  {discounted:>2} discounted touches")
        lines += ["", "touches per channel"]
        for channel in CHANNELS:
            lines.append(f"  {channel:<6} {self.touches_by_channel[channel]:>3}")
        segments = ", ".join(f"{name} {count}" for name, count in sorted(self.segments.items()))
        verdict = "yes" if self.matches_core else "NO"
        lines += [
            "",
            f"segments: {segments}",
            f"touches emitted: {self.touches} (the core planned {self.expected}; "
            f"stream matches core: {verdict})",
            *self.extra_lines,
        ]
        return "\n".join(lines)


async def _replay_and_collect(
    bootstrap: str,
    names: TopicNames,
    events: list[tuple[float, dict[str, Any]]],
    expected: int,
    timeout: float,
    worker: subprocess.Popen[bytes],
) -> list[tuple[str, bytes | None, Any]]:
    await replay(bootstrap, names.cart_events, events)

    def worker_died() -> str | None:
        code = worker.poll()
        return None if code is None else f"the worker exited with code {code}"

    return await drain(
        bootstrap,
        names.touch_topics,
        until=expected,
        timeout=timeout,
        idle=None if expected else 5.0,
        abort=worker_died,
    )


def run_all_in_one(
    policy_path: Path | None = None,
    partitions: int = 4,
    timeout: float = 90.0,
    work_dir: Path | None = None,
) -> tuple[RunSummary, PolicySet]:
    policies = load_policy(policy_path)
    events = [(epoch(e["occurred_at"], "occurred_at"), e) for e in sample_events()]
    core = simulate(events, policies, code_secret)
    summary = RunSummary(expected=len(core.touches))
    base = work_dir or Path(tempfile.mkdtemp(prefix="cartbands-run-"))
    log_path = base / "worker.log"
    names = TopicNames()
    with EmbeddedBroker() as broker:
        asyncio.run(ensure_topics(broker.bootstrap, names.pipeline_topics, partitions))
        args = [
            "worker",
            "--broker", broker.url,
            "--policy", str(policy_path or DEFAULT_POLICY),
            "--partitions", str(partitions),
            "--state-dir", str(base / "state"),
            "--app-id", "cartbands-run",
            "--clock", "event",
        ]  # fmt: skip
        # The senders deliver every touch to the outbox; the sample replays in event time, so
        # its due times are long past on the wall clock: the lateness check is off here.
        outbox, sender_log = base / "outbox", base / "sender.log"
        sender_args = [
            "sender", "--channel", "all", "--broker", broker.url,
            "--policy", str(policy_path or DEFAULT_POLICY), "--partitions", str(partitions),
            "--app-id", "cartbands-run", "--outbox-dir", str(outbox), "--outbox-only",
            "--max-lateness", "off",
        ]  # fmt: skip
        with running(args, log_path) as worker, running(sender_args, sender_log) as sender:
            try:
                received = asyncio.run(
                    _replay_and_collect(
                        broker.bootstrap, names, events, summary.expected, timeout, worker
                    )
                )
                outcomes = asyncio.run(
                    collect_results(
                        broker.bootstrap, names, len(received), timeout,
                        abort=lambda: None if sender.poll() is None else "the sender exited",
                    )
                )  # fmt: skip
            except DrainAborted as exc:
                logs = f"{tail(log_path)}\n--- sender log:\n{tail(sender_log)}"
                raise click.ClickException(f"{exc}:\n{logs}") from None
        summary.extra_lines += summary_lines(outbox, outcomes)
    commands = [value for _topic, _key, value in received]
    for command in commands:
        summary.add(command)
    streamed = sorted(touch_signature(c) for c in commands)
    summary.matches_core = streamed == sorted(touch_signature(c) for c in core.touches)
    if not summary.matches_core:
        raise click.ClickException(
            f"the stream emitted {len(streamed)} touches, the core planned {summary.expected}, "
            f"and they differ; worker log {log_path}:\n{tail(log_path)}"
        )
    return summary, policies
