"""``cartbands run``: the whole pipeline on an embedded broker with a built-in sample.

Every service runs as its own process, as in production: the ingest gateway, a stream worker
and the senders (outbox adapter). The sample enters through the gateway's ``POST /events`` and
is replayed in event time (the worker runs with ``--clock event``), so a week of recovery
sequences under the real default policy plays out in seconds. The same events also go through
the pure core in-process (:mod:`recovery.simulate`); the run fails unless the stream emitted
exactly the touches the core says it should.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import click
import yaml

from bus.kafka import DrainAborted, drain, ensure_topics
from bus.topics import CHANNELS, TopicNames
from cartbands.broker import EmbeddedBroker, free_port
from cartbands.ingest_client import IngestClient, IngestError
from cartbands.processes import running, tail
from cartbands.replay import replay
from cartbands.report_cmd import InputError, fold, read_topics
from cartbands.run_story import ledger_lines, report_lines
from cartbands.sample import SAMPLE_STORE, redemption, sample_events
from config.policyfile import DEFAULT_POLICY, load_policy
from recovery.checkouts import epoch
from recovery.outcomes import CartOutcome
from recovery.policyset import PolicySet
from recovery.response import ResponseModel, parse_response
from recovery.simulate import simulate
from senders.report import collect_results, summary_lines
from streams.app import code_secret


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
    outcomes: list[CartOutcome] = field(default_factory=list)
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


# the replay ticks this long past the last event: the ledger closes there
LEDGER_AFTER = timedelta(days=8)
RUN_TOKEN_ENV = "CARTBANDS_RUN_INGEST_TOKEN"


def _timed(events: list[dict[str, Any]]) -> list[tuple[float, dict[str, Any]]]:
    timed = [(epoch(e["occurred_at"], "occurred_at"), e) for e in events]
    return sorted(timed, key=lambda pair: pair[0])


def recovery_id(value: Any) -> Any:
    """One record of the ``recoveries`` topic, however often it was written: a recovery by its
    order, a plan by its cart and cycle."""
    if not isinstance(value, dict):
        return None
    if value.get("type") == "plan":
        return ("plan", value.get("store"), value.get("checkout"), value.get("cycle"))
    return (value.get("shopper"), value.get("order_id"))


def is_plan(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") == "plan"


def planned_carts(records: list[tuple[str, bytes | None, Any]]) -> int:
    return len({(v.get("store"), v.get("checkout")) for _t, _k, v in records if is_plan(v)})


def is_recovery(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") == "recovery"


def plan_signature(record: dict[str, Any]) -> tuple[Any, ...]:
    """What must be equal between the stream's and the core's copy of one plan record."""
    return tuple(
        str(record.get(name))
        for name in (
            "store", "shopper", "checkout", "cycle", "band", "segment", "group", "value",
            "currency", "abandoned_at", "window_end", "touches", "passed_over",
        )
    )  # fmt: skip


def _money(record: dict[str, Any], name: str) -> Decimal:
    return Decimal(str(record.get(name) or 0))


LISTED = 20  # more orders than this are summed, not listed


def recovery_lines(recoveries: list[dict[str, Any]]) -> list[str]:
    """Orders attributed to a recovery, each with the discount its codes redeemed, and their
    money per experiment group and currency."""
    totals: dict[tuple[str, str], list[Decimal]] = {}
    treated = [r for r in recoveries if not r.get("holdout")]
    # a holdout cart got no touch: its order is the baseline, not a recovery
    lines = [
        "",
        f"recovered orders: {len(treated)}",
        f"holdout orders (no touch; the baseline, not recovered): {len(recoveries) - len(treated)}",
    ]
    for record in sorted(recoveries, key=lambda r: str(r.get("occurred_at"))):
        group = "holdout" if record.get("holdout") else "treated"
        currency = str(record.get("currency"))
        sums = totals.setdefault((group, currency), [Decimal(0)] * 6)
        sums[0] += 1
        names = ("revenue", "margin", "discount", "discount_issued_cost", "other_discount")
        for index, name in enumerate(names, start=1):
            sums[index] += _money(record, name)
        if len(recoveries) > LISTED:
            continue
        codes = ", ".join(record.get("discount_codes_used") or ()) or "no code of ours"
        other = record.get("other_discount_codes") or ()
        lines.append(
            f"  {record.get('order_id')} ({record.get('band')}, {group}): revenue "
            f"{record.get('revenue')} {currency}, discount redeemed {_money(record, 'discount')}"
            f" ({codes}; issued cost {_money(record, 'discount_issued_cost')})"
            + (f", other codes {', '.join(other)} {record.get('other_discount')}" if other else "")
        )
    for (group, currency), sums in sorted(totals.items()):
        count, revenue, margin, discount, issued, other = sums
        lines.append(
            f"  {group:<8} {count:>2} orders  revenue {revenue} {currency}, "
            f"net margin {margin}, discounts redeemed {discount} (issued cost {issued}; "
            f"other codes {other}, not charged)"
        )
    return lines


def recovery_signature(record: dict[str, Any]) -> tuple[Any, ...]:
    """What must be equal between the stream's and the core's copy of one recovery."""
    return tuple(
        str(record.get(name))
        for name in (
            "shopper", "order_id", "checkout", "holdout", "revenue", "margin", "discount",
            "discount_issued_cost", "discount_codes_used", "other_discount",
        )
    )  # fmt: skip


def run_policy(source: Path | None, dest: Path) -> Path:
    """``source`` with the sample store's ``POST /events`` token named and its request rate
    unlimited, written to ``dest``."""
    data = yaml.safe_load((source or DEFAULT_POLICY).read_text(encoding="utf-8")) or {}
    node = data
    for name in ("stores", SAMPLE_STORE, "ingest", "generic"):
        node[name] = node.get(name) or {}  # a key may be present but empty (None)
        node = node[name]
    node["token_env"] = [RUN_TOKEN_ENV]
    # a month replayed in seconds posts far faster than a live store: the store's request
    # rate limit (a guard against one store flooding the gateway) would only slow the replay
    data["stores"][SAMPLE_STORE]["ingest"]["rate_limit"] = {"per_second": 100_000, "burst": 100_000}
    dest.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return dest


def progress(total: int, label: str = "events") -> Callable[[int], None]:
    """A plain-text progress bar on stderr, redrawn in place: call it with the count done."""
    done = 0

    def advance(count: int) -> None:
        nonlocal done
        before = 100 * done // total if total else 100
        done += count
        if 100 * done // total == before and done < total:
            return  # redraw once per percent
        width = 30
        filled = width * done // total if total else width
        bar = "#" * filled + "-" * (width - filled)
        end = "\n" if done >= total else ""
        click.echo(f"\r[{bar}] {done}/{total} {label}", err=True, nl=False)
        if end:
            click.echo(err=True)

    return advance


async def _replay_and_collect(
    bootstrap: str,
    names: TopicNames,
    events: list[tuple[float, dict[str, Any]]],
    expected: int,
    timeout: float,
    worker: subprocess.Popen[bytes],
    gateway_url: str,
    token: str,
) -> list[tuple[str, bytes | None, Any]]:
    """Post the sample to the gateway in event-time order, then read the touches it led to."""
    advance = progress(len(events), "events posted through the gateway")

    async with IngestClient(gateway_url, token) as gateway:
        await gateway.wait_ready()

        async def post(batch: list[dict[str, Any]]) -> None:
            await gateway.post(batch)
            advance(len(batch))

        await replay(bootstrap, names.cart_events, events, deliver=post)

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
        distinct=lambda value: value.get("touch_id") if isinstance(value, dict) else None,
    )


SAMPLES = ("demo", "small")


def demo_response() -> ResponseModel:
    from cartbands.simulate import RESPONSE

    return parse_response(yaml.safe_load(RESPONSE.read_text(encoding="utf-8")))


def sample_timed(sample: str, policies: PolicySet) -> list[tuple[float, dict[str, Any]]]:
    """The run's events in time order: ``demo``, a month of the seed-000 store with its
    shoppers' orders, or ``small``, the built-in handful of carts and orders."""
    if sample == "small":
        carts = sample_events()
        first = simulate(_timed(carts), policies, code_secret)
        return _timed([*carts, redemption(carts, first.touches)])
    if sample != "demo":
        raise click.ClickException(f"unknown sample {sample!r}: one of {', '.join(SAMPLES)}")
    from cartbands.demo import demo_month

    response = demo_response()
    traffic, orders = demo_month(policies, response, code_secret)
    return _timed([event for _at, event in traffic] + orders)


def run_all_in_one(
    policy_path: Path | None = None,
    partitions: int = 4,
    timeout: float = 90.0,
    work_dir: Path | None = None,
    sample: str = "demo",
) -> tuple[RunSummary, PolicySet]:
    base = work_dir or Path(tempfile.mkdtemp(prefix="cartbands-run-"))
    policy_file = run_policy(policy_path, base / "policy.yaml")
    policies = load_policy(policy_file)
    events = sample_timed(sample, policies)
    core = simulate(events, policies, code_secret)
    summary = RunSummary(expected=len(core.touches))
    log_path = base / "worker.log"
    token = secrets.token_urlsafe(24)
    port = free_port()
    names = TopicNames()
    with EmbeddedBroker() as broker:
        asyncio.run(ensure_topics(broker.bootstrap, names.pipeline_topics, partitions))
        args = [
            "worker",
            "--broker", broker.url,
            "--policy", str(policy_file),
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
            "--policy", str(policy_file), "--partitions", str(partitions),
            "--app-id", "cartbands-run", "--outbox-dir", str(outbox), "--outbox-only",
            "--max-lateness", "off",
        ]  # fmt: skip
        gateway_log = base / "gateway.log"
        gateway_args = [
            "gateway", "--broker", broker.url, "--host", "127.0.0.1", "--port", str(port),
            "--policy", str(policy_file), "--partitions", str(partitions),
        ]  # fmt: skip
        with (
            running(gateway_args, gateway_log, {RUN_TOKEN_ENV: token}),
            running(args, log_path) as worker,
            running(sender_args, sender_log) as sender,
        ):
            try:
                received = asyncio.run(
                    _replay_and_collect(
                        broker.bootstrap, names, events, summary.expected, timeout, worker,
                        f"http://127.0.0.1:{port}", token,
                    )
                )  # fmt: skip
                recovered = asyncio.run(
                    drain(
                        broker.bootstrap, [names.recoveries],
                        until=len(core.recoveries) + len(core.plans), timeout=timeout,
                        idle=None if core.recoveries or core.plans else 2.0,
                        distinct=recovery_id,
                    )
                )  # fmt: skip
                outcomes = asyncio.run(
                    collect_results(
                        broker.bootstrap, names, len(received), timeout,
                        abort=lambda: None if sender.poll() is None else "the sender exited",
                    )
                )  # fmt: skip
                records = asyncio.run(
                    read_topics(
                        broker.bootstrap, [names.recoveries, names.touch_results],
                        timeout=timeout, skip_malformed=False,
                    )
                )  # fmt: skip
            except (DrainAborted, IngestError, InputError) as exc:
                logs = (
                    f"{tail(log_path)}\n--- sender log:\n{tail(sender_log)}"
                    f"\n--- gateway log:\n{tail(gateway_log)}"
                )
                raise click.ClickException(f"{exc}:\n{logs}") from None
        summary.extra_lines += [
            "",
            f"events in through the gateway (POST /events, acknowledged): {len(events)}",
            f"carts abandoned (distinct carts in the plan records): {planned_carts(recovered)}",
            *recovery_lines([value for _t, _k, value in recovered if is_recovery(value)]),
            *summary_lines(outbox, outcomes),
        ]
        closed = datetime.fromtimestamp(events[-1][0], UTC) + LEDGER_AFTER if events else None
        summary.outcomes = fold(records, policies, closed or datetime.fromtimestamp(0, UTC))
        bands = [b.name for b in policies.defaults.bands]
        html_path = base / "report.html"
        summary.extra_lines += [
            *ledger_lines(summary.outcomes, bands),
            *report_lines(summary.outcomes, bands, html_path),
            "",
            f"outbox: {outbox}",
            f"HTML report: {html_path}",
        ]
        if sample == "demo":
            from cartbands.demo import comparison_lines

            summary.extra_lines += ["", comparison_lines(policies, demo_response())]
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
    planned = sorted(plan_signature(v) for _t, _k, v in recovered if is_plan(v))
    if planned != sorted(plan_signature(r) for r in core.plans):
        summary.matches_core = False
        raise click.ClickException(
            f"the stream wrote {len(planned)} plan records, the core {len(core.plans)}, and "
            f"they differ; worker log {log_path}:\n{tail(log_path)}"
        )
    attributed = sorted(recovery_signature(v) for _t, _k, v in recovered if is_recovery(v))
    if attributed != sorted(recovery_signature(r) for r in core.recoveries):
        summary.matches_core = False
        raise click.ClickException(
            f"the stream attributed {len(attributed)} recovered orders, the core "
            f"{len(core.recoveries)}, and they differ; worker log {log_path}:\n{tail(log_path)}"
        )
    return summary, policies
