"""``cartbands sender``: run the sender of one channel, or of all of them, in this process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from datetime import timedelta
from pathlib import Path

import click
from aiokafka import AIOKafkaClient

from bus.kafka import (
    TopicMismatch,
    TopicsMissing,
    check_topics,
    ensure_topics,
    stop_reason,
    until_broker_answers,
)
from bus.topics import CHANNELS, TopicNames
from config.logs import log_format as checked_format
from config.logs import setup_logging
from config.policyfile import PolicyError, load_policy
from config.settings import Settings
from recovery.durations import parse_duration
from senders.adapters.base import ConfigError
from senders.service import SenderConfig, SenderService
from telemetry.readiness import PROCESS

TOPIC_CHECK_INTERVAL = 5.0  # seconds between checks of the topics' presence and partitions
MISSING_CHECKS = 2  # consecutive checks that find topics gone before the sender stops

log = logging.getLogger(__name__)


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
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"], case_sensitive=False),
    default=None,
    help="text (default) or json: one JSON object per line (CARTBANDS_LOG_FORMAT).",
)
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
    log_format: str | None,
) -> None:
    """Deliver touch commands (email, SMS, ads audience, human follow-up) through the adapters
    each store's policy chooses; report every outcome on touch-results.

    Waits for the broker, creates its topics or verifies them (a partition count other than
    --partitions is refused with a one-line error), and exits non-zero when they go away."""
    settings = Settings.from_env(
        broker=broker_url,
        policy=policy,
        outbox_dir=outbox_dir,
        topic_prefix=topic_prefix,
        app_id=app_id,
        partitions=partitions,
        metrics_port=metrics_port,
        metrics_host=metrics_host,
        log_format=log_format,
    )
    try:
        setup_logging(loglevel, checked_format(settings.log_format))
    except ValueError as exc:
        raise click.ClickException(f"CARTBANDS_LOG_FORMAT: {exc}") from None
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
        fatal = asyncio.run(_main(service))
    finally:
        if server is not None:
            server.stop()
    if fatal:
        raise click.ClickException(fatal)


def sender_topics(config: SenderConfig) -> list[str]:
    """The topics a sender reads and writes (its channels', results, DLQ, shopper events)."""
    names = config.names
    return [
        *(names.touches(c) for c in config.channels),
        names.touch_results,
        names.touches_dlq,
        names.shopper_events,
        names.sender_dedup,
    ]


async def prepare_topics(config: SenderConfig) -> None:
    """Wait for the broker; create the missing topics (the de-dup log compacted) and verify
    every one against ``config.partitions``: :class:`TopicMismatch` otherwise."""
    compacted = {config.names.sender_dedup: {"cleanup.policy": "compact"}}

    async def attempt() -> None:
        await ensure_topics(
            config.bootstrap, sender_topics(config), config.partitions, configs=compacted
        )

    await until_broker_answers(attempt, config.bootstrap, what="sender", log=log)


async def check_now(client: AIOKafkaClient, config: SenderConfig) -> None:
    """Raise TopicsMissing or TopicMismatch if the topics are not as the sender made them."""
    await client.bootstrap()
    await check_topics(client, dict.fromkeys(sender_topics(config), config.partitions))


async def watch_topics(config: SenderConfig) -> str:
    """Check the topics every few seconds; return why the sender must stop (mismatched, or
    gone on consecutive checks: the de-dup log went with them)."""
    client = AIOKafkaClient(bootstrap_servers=config.bootstrap)
    missing_runs = 0
    try:
        while True:
            await asyncio.sleep(TOPIC_CHECK_INTERVAL)
            try:
                await check_now(client, config)
            except TopicMismatch as exc:
                PROCESS.set(False, str(exc))
                return stop_reason(exc)
            except TopicsMissing as exc:
                PROCESS.set(False, str(exc))
                missing_runs += 1
                if missing_runs >= MISSING_CHECKS:
                    return stop_reason(exc)
                continue
            except Exception as exc:  # the broker did not answer: not ready, not dead
                PROCESS.set(False, f"broker not reachable: {type(exc).__name__}")
                continue
            missing_runs = 0
            PROCESS.set(True)
    finally:
        await client.close()


async def topics_gone(config: SenderConfig) -> str | None:
    """Why the topics are not as the sender made them, checked once; None if they are (or the
    broker does not answer). A consumer fails on a deleted topic ('Unrecognized partition')
    before the periodic check has seen it gone twice: this names the cause of that crash."""
    client = AIOKafkaClient(bootstrap_servers=config.bootstrap)
    try:
        await check_now(client, config)
    except (TopicMismatch, TopicsMissing) as exc:
        return stop_reason(exc)
    except Exception:  # the broker did not answer: the crash itself is the news
        return None
    finally:
        await client.close()
    return None


async def _main(service: SenderService) -> str | None:
    """Run until SIGTERM/SIGINT (None), or return why the sender cannot go on."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await prepare_topics(service.config)
    except TopicMismatch as exc:
        return str(exc)
    PROCESS.set(True)
    running = asyncio.create_task(service.run(stop), name="sender")
    watching = asyncio.create_task(watch_topics(service.config), name="topic-check")
    await asyncio.wait([running, watching], return_when=asyncio.FIRST_COMPLETED)
    if watching.done() and not running.done():
        reason = watching.result()
        log.critical("%s; stopping the sender", reason)
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(running, timeout=15)
        return reason
    watching.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watching
    error = running.exception()
    if error is not None:
        gone = await topics_gone(service.config)
        if gone is not None:
            log.critical("%s; stopping the sender", gone)
            return gone
        why = f"the sender stopped: {type(error).__name__}: {' '.join(str(error).split())[:300]}"
        log.critical("%s", why)
        return why
    return None
