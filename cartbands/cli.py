"""The ``cartbands`` command line."""

from __future__ import annotations

import signal
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import click
import yaml

from bus.topics import STAGES
from config.policyfile import DEFAULT_POLICY, PolicyError, check_policy, load_policy
from config.settings import Settings
from recovery.bands import band_range
from recovery.durations import format_duration
from recovery.policy import StorePolicy

POLICY_HELP = "Policy file (YAML); default: the shipped policies/default.yaml."
LOG_FORMAT_HELP = "text (default) or json: one JSON object per line (CARTBANDS_LOG_FORMAT)."


def log_format_option(fun: Any) -> Any:
    """``--log-format text|json`` (else ``CARTBANDS_LOG_FORMAT``, else text)."""
    return click.option(
        "--log-format",
        type=click.Choice(["text", "json"], case_sensitive=False),
        default=None,
        help=LOG_FORMAT_HELP,
    )(fun)


def checked_log_format(settings: Settings) -> str:
    from config.logs import log_format

    try:
        return log_format(settings.log_format)
    except ValueError as exc:
        raise click.ClickException(f"CARTBANDS_LOG_FORMAT: {exc}") from None


def _load(path: str | None) -> Any:
    try:
        return load_policy(path)
    except PolicyError as exc:
        raise click.ClickException(str(exc)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cartbands")
def cli() -> None:
    """cartbands: recover abandoned carts by value band.

    Cart events flow through Kafka into stream workers that band each abandoned cart and emit
    touch commands (email, SMS, ads audience, human follow-up) onto channel topics.
    """


@cli.command()
@click.option("--port", type=int, default=None, help="Loopback port (default: a free one).")
@click.option(
    "--kafka",
    "kind",
    flag_value="kafka",
    help="Apache Kafka (KRaft, one node; needs java and mvn) instead of the embedded tansu.",
)
@click.option("--tansu", "kind", flag_value="tansu", default=True, help="Embedded tansu (default).")
def broker(port: int | None, kind: str) -> None:
    """Run a local broker in the foreground: embedded tansu (in memory) or Apache Kafka."""
    from cartbands.broker import BrokerError, make_broker

    try:
        local = make_broker(kind, port)
        local.start()
    except BrokerError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{kind} broker ready at {local.url}; Ctrl-C stops it")
    click.echo(f"export CARTBANDS_BROKER={local.url}")
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        while not stopping and local.running:
            time.sleep(0.2)
    finally:
        local.close()
    if not stopping:
        raise click.ClickException("the broker exited unexpectedly")
    click.echo("broker stopped")


@cli.command()
@click.option("--broker", "broker_url", envvar="CARTBANDS_BROKER", help="kafka://host:port")
@click.option(
    "--policy", type=click.Path(dir_okay=False), envvar="CARTBANDS_POLICY", help=POLICY_HELP
)
@click.option("--partitions", type=int, default=None, help="Partitions of created topics.")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--store", "table_store", default=None, help="Table store: memory:// or rocksdb://")
@click.option("--app-id", default=None, help="Consumer group / app id.")
@click.option("--topic-prefix", default=None, help="Prefix of every topic name.")
@click.option("--metrics-port", type=int, default=None, help="Serve Prometheus /metrics here.")
@click.option("--metrics-host", default=None, help="Address of /metrics (default 127.0.0.1).")
@click.option(
    "--clock",
    type=click.Choice(["wall", "event"]),
    default=None,
    help="wall: tick from the wall clock (live); event: time comes only from ticks in the "
    "input (replay).",
)
@click.option("--tick-interval", type=float, default=None, help="Seconds between wall ticks.")
@click.option(
    "--stage",
    type=click.Choice(STAGES),
    default="both",
    show_default=True,
    envvar="CARTBANDS_STAGE",
    help="a: cart events to shopper events (stage A); b: shopper events to touches (stage B). "
    "The workers of one stage form their own group, <app-id>-a or <app-id>-b, with its own "
    "tables.",
)
@click.option("--loglevel", default="info", show_default=True)
@log_format_option
def worker(
    broker_url: str | None,
    policy: str | None,
    partitions: int | None,
    state_dir: Path | None,
    table_store: str | None,
    app_id: str | None,
    topic_prefix: str | None,
    metrics_port: int | None,
    metrics_host: str | None,
    clock: str | None,
    tick_interval: float | None,
    stage: str,
    loglevel: str,
    log_format: str | None,
) -> None:
    """Run a stream worker: cart events in, touch commands out.

    Waits for the broker, creates its topics or verifies them (a partition count other than
    --partitions is refused), and exits non-zero when an agent dies or its topics go away.
    """
    from cartbands.worker import StartupError, run_worker

    settings = Settings.from_env(
        broker=broker_url,
        policy=policy,
        partitions=partitions,
        state_dir=state_dir,
        store=table_store,
        app_id=app_id,
        topic_prefix=topic_prefix,
        metrics_port=metrics_port,
        metrics_host=metrics_host,
        clock=clock,
        tick_interval=tick_interval,
        log_format=log_format,
    )
    fmt = checked_log_format(settings)
    policies = _load(settings.policy)
    sys.argv = [sys.argv[0]]  # Faust's worker reads argv; ours are already parsed.
    try:
        run_worker(settings, policies, loglevel=loglevel, log_format=fmt, stage=stage)
    except StartupError as exc:
        raise click.ClickException(str(exc)) from None


@cli.command()
@click.option("--policy", type=click.Path(dir_okay=False), default=None, help=POLICY_HELP)
@click.option("--partitions", type=int, default=4, show_default=True)
@click.option("--timeout", type=float, default=90.0, show_default=True)
@click.option(
    "--sample",
    type=click.Choice(["demo", "small"]),
    default="demo",
    show_default=True,
    help="demo: a month of the seed-000 store; small: a handful of hand-made carts.",
)
def run(policy: str | None, partitions: int, timeout: float, sample: str) -> None:
    """All-in-one: embedded broker + worker, feed a built-in sample, print a summary."""
    from cartbands.runner import run_all_in_one

    path = Path(policy) if policy else None
    summary, policies = run_all_in_one(path, partitions=partitions, timeout=timeout, sample=sample)
    click.echo(summary.render([b.name for b in policies.defaults.bands]))


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--broker", "broker_url", envvar="CARTBANDS_BROKER", required=True)
@click.option("--topic-prefix", default="", envvar="CARTBANDS_TOPIC_PREFIX")
@click.option("--speed", default="max", show_default=True, help="max, or a factor like 60x.")
@click.option(
    "--tick",
    "tick_step",
    default="5m",
    show_default=True,
    help="Event time between ticks while events flow.",
)
@click.option(
    "--drain",
    default="8d",
    show_default=True,
    help="Event time to advance past the last event so sequences run out.",
)
def replay(
    file: Path, broker_url: str, topic_prefix: str, speed: str, tick_step: str, drain: str
) -> None:
    """Replay canonical events from FILE.ndjson with their own timestamps.

    Run the worker with --clock event: time then advances only with the replayed ticks, so
    the same file always gives the same touches, ids and times.
    """
    import asyncio

    from bus.topics import TopicNames
    from cartbands.replay import ReplayError, parse_speed, read_ndjson
    from cartbands.replay import replay as run_replay
    from recovery.durations import parse_duration

    try:
        events = read_ndjson(file)
        factor = parse_speed(speed)
        step, horizon = parse_duration(tick_step), parse_duration(drain)
    except (ReplayError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    bootstrap = Settings.from_env(broker=broker_url).bootstrap
    topic = TopicNames(topic_prefix).cart_events
    stats = asyncio.run(
        run_replay(bootstrap, topic, events, tick_step=step, drain=horizon, speed=factor)
    )
    click.echo(
        f"replayed {stats.events} events in {stats.messages} messages "
        f"({stats.ticks} tick rounds) in {stats.seconds:.2f}s; event time advanced to "
        f"{stats.watermark:.0f}"
    )


@cli.group()
def policy() -> None:
    """Check and show policy files."""


@policy.command("check")
@click.argument("file", type=click.Path(dir_okay=False), required=False)
def policy_check(file: str | None) -> None:
    """Validate FILE (default: the shipped policy); exit 1 with every problem found.

    Besides the policy itself, every template a sequence or segment names must exist for its
    channel in the store's templates_dir or the shipped templates.
    """
    try:
        policies = check_policy(file)
    except PolicyError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{policies.source}: ok ({len(policies.stores)} store override(s))")
    named = [("defaults", policies.defaults), *sorted(policies.stores.items())]
    for where, store_policy in named:
        for warning in store_policy.warnings():
            click.echo(f"  warning: {where}: {warning}")


@policy.command("show")
@click.argument("file", type=click.Path(dir_okay=False), required=False)
@click.option("--store", default=None, help="Show only this store's effective policy.")
@click.option(
    "--format",
    "output",
    type=click.Choice(["text", "yaml"]),
    default="text",
    show_default=True,
    help="text: a summary to read; yaml: every effective setting of each store.",
)
def policy_show(file: str | None, store: str | None, output: str) -> None:
    """Print the effective per-store policy of FILE."""
    from cartbands.explain import DEFAULTS, store_policy

    policies = _load(file)
    if store is not None:
        effective = {store: store_policy(policies, store)}
    else:
        named = {name: policies.stores[name] for name in sorted(policies.stores)}
        effective = {DEFAULTS: policies.defaults, **named}
    if output == "yaml":
        dumped = {name: _plain(policy.model_dump()) for name, policy in effective.items()}
        click.echo(yaml.safe_dump(dumped, sort_keys=False, allow_unicode=True), nl=False)
        return
    for name, policy in effective.items():
        click.echo("\n".join(_policy_lines(name, policy)))
        click.echo("")


def _plain(value: Any) -> Any:
    """Durations as ``1h``/``2d``, money as decimal strings: the policy file's own notation."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, Decimal):
        return str(value)
    return value


def _policy_lines(name: str, policy: StorePolicy) -> list[str]:
    lines = [
        f"store {name}: currency {policy.currency}, zone {policy.timezone}",
        f"  abandon after {format_duration(policy.abandonment_window)}, "
        f"band on {policy.amount_basis}, forget after {format_duration(policy.retention)}",
    ]
    for band in policy.bands:
        low, upper = band_range(policy, band)
        span = f"{low} .. {upper}" if upper is not None else f">= {low}"
        lines.append(
            f"  band {band.name:<5} {span} {policy.currency}, "
            f"holdout {(band.holdout * 100).normalize():f}%"
        )
        for step, touch in enumerate(band.sequence, start=1):
            offer = ""
            if touch.incentive is not None:
                inc = touch.incentive
                what = inc.service if inc.kind == "service" else f"{inc.kind} {inc.value}"
                offer = f"  incentive {what}, valid {format_duration(inc.validity)}"
            lines.append(
                f"    {step}. +{format_duration(touch.offset):<6} {touch.channel:<5} "
                f"{touch.template}{offer}"
            )
    margin, caps = policy.margin, policy.caps
    gaps = ", ".join(f"{ch} {format_duration(gap)}" for ch, gap in sorted(caps.min_gap.items()))
    lines += [
        f"  margin: gross {margin.gross_margin}; an incentive may cost at most "
        f"{margin.max_discount_share_of_margin} of the cart's margin",
        f"  caps: {caps.max_touches} touches per {format_duration(caps.window)} "
        f"({', '.join(caps.counted_channels)}); gaps {gaps}; a new cart: {caps.on_new_cart}",
        f"  segments: {', '.join(policy.segments.model_dump())}",
        "  send windows: "
        + ", ".join(
            f"{ch} {_minutes(w.start)}-{_minutes(w.end)}"
            for ch, w in sorted(policy.send_windows.items())
            if w is not None
        )
        + (f" (region overrides: {', '.join(sorted(policy.regions))})" if policy.regions else ""),
    ]
    return lines


def _minutes(value: int) -> str:
    return f"{value // 60:02d}:{value % 60:02d}"


from cartbands.explain import explain as _explain  # noqa: E402

policy.add_command(_explain)


from cartbands.advise import advise_command as _advise  # noqa: E402

cli.add_command(_advise)


from gateway.cli import gateway_command as _gateway  # noqa: E402

cli.add_command(_gateway)


from senders.cli import sender as _sender  # noqa: E402

cli.add_command(_sender)


from cartbands.export import export_command as _export  # noqa: E402

cli.add_command(_export)


from cartbands.report_cmd import report as _report  # noqa: E402

cli.add_command(_report)


from cartbands.simulate import simulate as _simulate  # noqa: E402

cli.add_command(_simulate)


def main() -> None:
    cli(prog_name="cartbands")


__all__ = ["DEFAULT_POLICY", "cli", "main"]
