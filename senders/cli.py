"""``cartbands sender``: run the sender of one channel, or of all of them, in this process."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import timedelta
from pathlib import Path

import click

from cartbands.policyfile import PolicyError, load_policy
from cartbands.settings import Settings
from recovery.durations import parse_duration
from senders.adapters.base import ConfigError
from senders.service import SenderConfig, SenderService
from streams.topics import CHANNELS, TopicNames

QUIET_LOGGERS = ("aiokafka", "kafka")


def _lateness(text: str | None) -> tuple[bool, timedelta | None]:
    """``--max-lateness``: (check enabled, override)."""
    if text is None:
        return True, None
    if text.strip().lower() in ("off", "none", "no"):
        return False, None
    try:
        return True, parse_duration(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--max-lateness") from None


@click.command("sender")
@click.option(
    "--channel",
    type=click.Choice([*CHANNELS, "all"]),
    required=True,
    help="The channel to deliver, or all four (one consumer per channel).",
)
@click.option("--broker", "broker_url", envvar="CARTBANDS_BROKER", help="kafka://host:port")
@click.option(
    "--policy",
    type=click.Path(dir_okay=False),
    envvar="CARTBANDS_POLICY",
    help="Policy file (YAML) with each store's `delivery` settings.",
)
@click.option(
    "--outbox-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the outbox adapter writes <channel>.ndjson (default var/outbox).",
)
@click.option("--topic-prefix", default=None, help="Prefix of every topic name.")
@click.option("--app-id", default=None, help="Consumer groups are <app-id>-sender-<channel>.")
@click.option("--partitions", type=int, default=None, help="Partitions of created topics.")
@click.option("--metrics-port", type=int, default=None, help="Serve Prometheus /metrics here.")
@click.option("--metrics-host", default=None, help="Address of /metrics (default 127.0.0.1).")
@click.option(
    "--max-lateness",
    default=None,
    help="Override every store's max_lateness (e.g. 2h); 'off' disables the check, for "
    "replays whose due times are in event time.",
)
@click.option(
    "--outbox-only",
    is_flag=True,
    help="Deliver every channel of every store to the outbox, whatever the policy says.",
)
@click.option("--loglevel", default="info", show_default=True)
def sender(
    channel: str,
    broker_url: str | None,
    policy: str | None,
    outbox_dir: Path | None,
    topic_prefix: str | None,
    app_id: str | None,
    partitions: int | None,
    metrics_port: int | None,
    metrics_host: str | None,
    max_lateness: str | None,
    outbox_only: bool,
    loglevel: str,
) -> None:
    """Deliver touch commands (email, SMS, ads audience, human follow-up) through the adapters
    each store's policy chooses; report every outcome on touch-results."""
    settings = Settings.from_env(
        broker=broker_url,
        policy=policy,
        outbox_dir=outbox_dir,
        topic_prefix=topic_prefix,
        app_id=app_id,
        partitions=partitions,
        metrics_port=metrics_port,
        metrics_host=metrics_host,
    )
    logging.basicConfig(
        level=loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        policies = load_policy(settings.policy)
    except PolicyError as exc:
        raise click.ClickException(str(exc)) from None
    check, override = _lateness(max_lateness)
    channels = CHANNELS if channel == "all" else (channel,)
    config = SenderConfig(
        bootstrap=settings.bootstrap,
        names=TopicNames(settings.topic_prefix),
        app_id=settings.app_id,
        partitions=settings.partitions,
        outbox_dir=settings.outbox_dir,
        channels=tuple(channels),
        max_lateness_override=override,
        lateness_check=check,
        outbox_only=outbox_only,
    )
    try:
        service = SenderService(config, policies)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    server = None
    if settings.metrics_port:
        from telemetry.server import serve_metrics

        server = serve_metrics(settings.metrics_port, host=settings.metrics_host)
    try:
        asyncio.run(_main(service))
    finally:
        if server is not None:
            server.stop()


async def _main(service: SenderService) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await service.run(stop)
