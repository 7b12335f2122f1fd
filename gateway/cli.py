"""``cartbands gateway``: run the ingest gateway (registered on the main CLI group)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal

import click
from aiohttp import web

from bus.topics import TopicNames
from config.logs import log_format as checked_format
from config.logs import setup_logging
from config.policyfile import PolicyError, load_policy
from config.settings import Settings
from gateway.app import ONE_MIB, Gateway
from gateway.config import ConfigError, build_config
from gateway.output import ACK_TIMEOUT, Output
from gateway.server import QuietRunner

log = logging.getLogger(__name__)


async def serve(
    gateway: Gateway, host: str, port: int, lingering_time: float = 1.0
) -> web.AppRunner:
    """Start ``gateway`` on ``host:port`` (0: a free port); the caller cleans the runner up."""
    runner = QuietRunner(
        gateway.build(),
        refused=gateway.refused_unparsed,
        access_log=None,
        lingering_time=lingering_time,
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024, reuse_address=True)
    await site.start()
    return runner


def bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        return int(address[1])
    raise RuntimeError("the gateway is not listening")


async def _main(gateway: Gateway, host: str, port: int) -> str | None:
    """Serve until SIGTERM/SIGINT (None) or until the output fails for good (the reason)."""
    runner = await serve(gateway, host, port)
    log.info("gateway listening on http://%s:%d", host, bound_port(runner))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    output = gateway.output
    waits = [
        asyncio.create_task(stop.wait(), name="signal"),
        asyncio.create_task(output.failed.wait(), name="output-failed"),
    ]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()
        await runner.cleanup()
    return output.fatal


@click.command("gateway")
@click.option("--broker", "broker_url", envvar="CARTBANDS_BROKER", help="kafka://host:port")
@click.option("--port", type=int, default=8080, show_default=True, help="HTTP port (0: free).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--policy", type=click.Path(dir_okay=False), envvar="CARTBANDS_POLICY", help="Policy file."
)
@click.option("--topic-prefix", default=None, help="Prefix of every topic name.")
@click.option("--partitions", type=int, default=None, help="Partitions of created topics.")
@click.option("--max-body", type=int, default=ONE_MIB, show_default=True, help="Body limit.")
@click.option(
    "--ack-timeout",
    type=float,
    default=ACK_TIMEOUT,
    show_default=True,
    help="Seconds to wait for the broker's acknowledgement before answering 503.",
)
@click.option(
    "--linger-ms",
    type=int,
    default=0,
    show_default=True,
    help="Wait before sending when no produce request is in flight (batches grow with load).",
)
@click.option(
    "--public-url",
    default=None,
    help="Base URL the platforms call (https://host), for Twilio's URL-based signature.",
)
@click.option("--loglevel", default="info", show_default=True)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"], case_sensitive=False),
    default=None,
    help="text (default) or json: one JSON object per line (CARTBANDS_LOG_FORMAT).",
)
def gateway_command(
    broker_url: str | None,
    port: int,
    host: str,
    policy: str | None,
    topic_prefix: str | None,
    partitions: int | None,
    max_body: int,
    ack_timeout: float,
    linger_ms: int,
    public_url: str | None,
    loglevel: str,
    log_format: str | None,
) -> None:
    """Run the ingest gateway: verified webhooks in, canonical events on cart-events.

    Creates its topics or verifies them (a partition count other than --partitions is refused
    with a one-line error); answers 2xx only for records acknowledged into verified topics.
    """
    settings = Settings.from_env(
        broker=broker_url,
        policy=policy,
        topic_prefix=topic_prefix,
        partitions=partitions,
        log_format=log_format,
    )
    try:
        setup_logging(loglevel, checked_format(settings.log_format))
    except ValueError as exc:
        raise click.ClickException(f"CARTBANDS_LOG_FORMAT: {exc}") from None
    try:
        policies = load_policy(settings.policy)
        config = build_config(policies, os.environ)
    except (PolicyError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from None
    for warning in config.warnings:
        log.warning("%s", warning)
    output = Output(
        settings.bootstrap,
        TopicNames(settings.topic_prefix),
        partitions=settings.partitions,
        ack_timeout=ack_timeout,
        linger_ms=linger_ms,
    )
    gateway = Gateway(config, output, max_body=max_body, public_url=public_url)
    # The app and its config live as long as the process: out of the collector's way, and a
    # higher young-generation threshold (every request allocates its parsed JSON).
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency
        pass
    fatal = asyncio.run(_main(gateway, host, port))
    if fatal:
        raise click.ClickException(fatal)
