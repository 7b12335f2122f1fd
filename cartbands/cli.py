"""The ``cartbands`` command line."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Any

import click

from cartbands.policyfile import DEFAULT_POLICY, PolicyError, load_policy
from cartbands.settings import Settings
from recovery.durations import format_duration

POLICY_HELP = "Policy file (YAML); default: the shipped policies/default.yaml."


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
def broker(port: int | None) -> None:
    """Run the embedded Kafka-protocol broker (tansu, in memory) in the foreground."""
    from cartbands.broker import BrokerError, EmbeddedBroker

    try:
        embedded = EmbeddedBroker(port).start()
    except BrokerError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"broker ready at {embedded.url} (bootstrap {embedded.bootstrap}); Ctrl-C stops it")
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        while not stopping and embedded.running:
            time.sleep(0.2)
    finally:
        embedded.stop()
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
@click.option("--loglevel", default="info", show_default=True)
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
    loglevel: str,
) -> None:
    """Run a stream worker: cart events in, touch commands out."""
    from cartbands.worker import run_worker

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
    )
    policies = _load(settings.policy)
    sys.argv = [sys.argv[0]]  # Faust's worker reads argv; ours are already parsed.
    run_worker(settings, policies, loglevel=loglevel)


@cli.command()
@click.option("--policy", type=click.Path(dir_okay=False), default=None, help=POLICY_HELP)
@click.option("--partitions", type=int, default=4, show_default=True)
@click.option("--timeout", type=float, default=90.0, show_default=True)
def run(policy: str | None, partitions: int, timeout: float) -> None:
    """All-in-one: embedded broker + worker, feed a built-in sample, print a summary."""
    from cartbands.runner import run_all_in_one

    path = Path(policy) if policy else None
    summary, policies = run_all_in_one(path, partitions=partitions, timeout=timeout)
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

    from cartbands.replay import ReplayError, parse_speed, read_ndjson
    from cartbands.replay import replay as run_replay
    from recovery.durations import parse_duration
    from streams.topics import TopicNames

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
    """Validate FILE (default: the shipped policy); exit 1 with every problem found."""
    policies = _load(file)
    click.echo(f"{policies.source}: ok ({len(policies.stores)} store override(s))")


@policy.command("show")
@click.argument("file", type=click.Path(dir_okay=False), required=False)
@click.option("--store", default=None, help="Show only this store's effective policy.")
def policy_show(file: str | None, store: str | None) -> None:
    """Print the effective per-store policy of FILE."""
    policies = _load(file)
    names = [store] if store else ["(defaults)", *sorted(policies.stores)]
    for name in names:
        effective = policies.defaults if name == "(defaults)" else policies.for_store(name)
        click.echo(f"store {name}: currency {effective.currency}, zone {effective.timezone}")
        click.echo(
            f"  abandon after {format_duration(effective.abandonment_window)}, "
            f"band on {effective.amount_basis}, forget after {format_duration(effective.retention)}"
        )
        bands = effective.bands
        for index, band in enumerate(bands):
            upper = bands[index + 1].min if index + 1 < len(bands) else None
            span = f"{band.min} .. {upper}" if upper is not None else f">= {band.min}"
            click.echo(f"  band {band.name:<5} {span} {effective.currency}")
            for step, touch in enumerate(band.sequence, start=1):
                offer = ""
                if touch.incentive is not None:
                    inc = touch.incentive
                    what = inc.service if inc.kind == "service" else f"{inc.kind} {inc.value}"
                    offer = f"  incentive {what}, valid {format_duration(inc.validity)}"
                click.echo(
                    f"    {step}. +{format_duration(touch.offset):<6} {touch.channel:<5} "
                    f"{touch.template}{offer}"
                )
        click.echo("")


from cartbands.explain import explain as _explain  # noqa: E402

policy.add_command(_explain)


from gateway.cli import gateway_command as _gateway  # noqa: E402

cli.add_command(_gateway)


from senders.cli import sender as _sender  # noqa: E402

cli.add_command(_sender)


def main() -> None:
    cli(prog_name="cartbands")


__all__ = ["DEFAULT_POLICY", "cli", "main"]
