"""Run the stream worker (the Faust app) in the foreground of this process."""

from __future__ import annotations

import logging

import faust

from cartbands.runtime import describe_core, tune_runtime
from cartbands.settings import Settings
from recovery.policyset import PolicySet
from streams.app import Pipeline, create_app

QUIET_LOGGERS = ("aiokafka", "faust", "mode", "kafka")
LAG_SAMPLE_INTERVAL = 2.0  # seconds between consumer-lag samples (a loop over assigned partitions)

log = logging.getLogger(__name__)


def serve_metrics(pipeline: Pipeline, settings: Settings) -> int:
    """Serve ``/metrics`` on ``settings.metrics_port``; sample this worker's consumer lag."""
    from telemetry.lag import LagReporter
    from telemetry.server import start_metrics_server

    try:
        port = start_metrics_server(settings.metrics_port, host=settings.metrics_host)
    except OSError as exc:
        where = f"{settings.metrics_host}:{settings.metrics_port}"
        raise SystemExit(f"cannot serve metrics on {where}: {exc.strerror or exc}") from None
    app = pipeline.app
    reporter = LagReporter(pipeline.names.pipeline_topics)

    @app.timer(LAG_SAMPLE_INTERVAL)
    async def sample_consumer_lag() -> None:
        try:
            reporter.sample(app.consumer, app.monitor)
        except Exception:  # metrics must never stop the worker
            log.exception("consumer lag sample failed")

    return port


def run_worker(settings: Settings, policies: PolicySet, loglevel: str = "info") -> None:
    """Start the worker and block until SIGINT/SIGTERM; Faust handles both signals."""
    tune_runtime()
    pipeline = create_app(
        broker=settings.broker,
        policies=policies,
        app_id=settings.app_id,
        partitions=settings.partitions,
        store=settings.store,
        state_dir=settings.state_dir,
        topic_prefix=settings.topic_prefix,
        clock="event" if settings.clock == "event" else "wall",
        tick_interval=settings.tick_interval,
    )
    settings.state_dir.mkdir(parents=True, exist_ok=True)

    @pipeline.app.task
    async def announce_core() -> None:  # once started, when Faust's logging is set up
        log.info("recovery core: %s", describe_core())

    if settings.metrics_port:
        serve_metrics(pipeline, settings)
    worker = faust.Worker(pipeline.app, loglevel=loglevel, quiet=True, workdir=None)

    # Keep library chatter (and the cost of building its records) out of the hot path.
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    worker.execute_from_commandline()
