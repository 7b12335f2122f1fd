"""Run the stream worker (the Faust app) in the foreground of this process.

Before Faust starts, the worker waits for the broker (one line per attempt, with backoff),
creates the topics it reads and writes that do not exist yet and verifies every one of them,
and its tables' changelogs where they exist, against ``--partitions``: a mismatch is refused
with a one-line error (:class:`StartupError`). While it runs it checks them again every few
seconds, and stops with a non-zero exit code when they are mismatched or gone (a broker
restarted without its data), as it does when an agent dies (``streams.supervision``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import faust

from agents import register_all
from bus.kafka import (
    TopicMismatch,
    TopicsMissing,
    check_topics,
    ensure_topics,
    stop_reason,
    until_broker_answers,
)
from bus.topics import group_of
from cartbands.runtime import describe_core, tune_runtime
from config.logs import setup_logging
from config.settings import Settings
from recovery.policyset import PolicySet
from streams.app import Pipeline, create_app
from streams.supervision import stop_app
from telemetry.readiness import PROCESS

LAG_SAMPLE_INTERVAL = 2.0  # seconds between consumer-lag samples (a loop over assigned partitions)
TOPIC_CHECK_INTERVAL = 5.0  # seconds between checks of the topics' presence and partitions
MISSING_CHECKS = 2  # consecutive checks that find topics gone before the worker stops

log = logging.getLogger(__name__)


class StartupError(RuntimeError):
    """The worker cannot start as configured (one line, for an operator)."""


def serve_metrics(pipeline: Pipeline, settings: Settings) -> int:
    """Serve ``/metrics`` and ``/readyz`` on ``settings.metrics_port``; sample consumer lag."""
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


def needed_topics(pipeline: Pipeline) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the topics the worker creates if missing, the changelogs Faust creates: verified only)."""
    changelogs = tuple(
        table.changelog_topic.get_topic_name() for table in pipeline.app.tables.values()
    )
    return pipeline.names.pipeline_topics, changelogs


async def prepare_topics(settings: Settings, pipeline: Pipeline) -> None:
    """Wait for the broker; create and verify the topics (:class:`TopicMismatch`)."""
    created, changelogs = needed_topics(pipeline)

    async def attempt() -> None:
        await ensure_topics(
            settings.bootstrap, created, settings.partitions, verify_only=changelogs
        )

    await until_broker_answers(attempt, settings.bootstrap, what="worker", log=log)


def say_stopping(problem: TopicMismatch | TopicsMissing) -> None:
    """The line an operator reads when the worker stops for its topics."""
    log.critical("%s; stopping the worker", stop_reason(problem))


def watch_topics(pipeline: Pipeline, partitions: int) -> None:
    """Every few seconds: the topics still there with ``partitions`` each, or stop the worker.

    A changelog Faust has not created yet may be missing; once seen, it must stay.
    """
    app = pipeline.app
    created, changelogs = needed_topics(pipeline)
    wanted = dict.fromkeys((*created, *changelogs), partitions)
    seen: set[str] = set()
    missing_runs = 0

    async def check_now() -> None:
        """Raise TopicsMissing or TopicMismatch if the topics are not as the worker made them."""
        client = app.producer._ensure_producer().client  # type: ignore[attr-defined]
        await check_topics(client, wanted, set(changelogs) - seen)

    @app.timer(TOPIC_CHECK_INTERVAL)
    async def check_topics_still_there() -> None:
        nonlocal missing_runs
        try:
            await check_now()
        except TopicMismatch as exc:
            PROCESS.set(False, str(exc))
            say_stopping(exc)
            await stop_app(app, exc)
            return
        except TopicsMissing as exc:
            missing_runs += 1
            PROCESS.set(False, str(exc))
            if missing_runs >= MISSING_CHECKS:
                say_stopping(exc)
                await stop_app(app, exc)
            return
        except Exception as exc:  # the broker did not answer: not ready, not dead
            PROCESS.set(False, f"broker not reachable: {type(exc).__name__}")
            log.warning("topic check: broker not reachable (%s)", type(exc).__name__)
            return
        missing_runs = 0
        seen.update(changelogs)  # every changelog present now (else TopicsMissing above)
        PROCESS.set(True)

    async def name_the_topics_gone(reason: BaseException) -> None:
        """A crash while topics are gone or changed (a ship to a deleted topic can fail before
        the periodic check has seen it twice): say which, as that check would."""
        if isinstance(reason, TopicMismatch | TopicsMissing):
            return  # the periodic check stopped the worker and said so
        try:
            await check_now()
        except (TopicMismatch, TopicsMissing) as exc:
            say_stopping(exc)

    app.crash_checks.append(name_the_topics_gone)


STAGE_NAMES = {"both": "A and B", "a": "A alone", "b": "B alone"}


def run_worker(
    settings: Settings,
    policies: PolicySet,
    loglevel: str = "info",
    log_format: str = "text",
    customize: Callable[[Pipeline], Any] | None = None,
    stage: str = "both",
) -> None:
    """Start the worker and block until SIGINT/SIGTERM; Faust handles both signals.

    ``stage``: the stages it runs (``agents.STAGES``); one stage alone runs as its own group,
    ``<app id>-a`` or ``<app id>-b`` (:func:`bus.topics.group_of`). ``customize`` is called with the
    pipeline before it starts (tests add an agent with it).
    """
    setup_logging(loglevel, log_format)
    tune_runtime()
    pipeline = register_all(
        create_app(
            broker=settings.broker,
            policies=policies,
            app_id=group_of(settings.app_id, stage),
            partitions=settings.partitions,
            store=settings.store,
            state_dir=settings.state_dir,
            topic_prefix=settings.topic_prefix,
            clock="event" if settings.clock == "event" else "wall",
            tick_interval=settings.tick_interval,
        ),
        stage,
    )
    if customize is not None:
        customize(pipeline)
    pipeline.app.crash_listeners.append(
        lambda reason: PROCESS.fail(f"crashed: {type(reason).__name__}: {reason}"[:300])
    )
    settings.state_dir.mkdir(parents=True, exist_ok=True)

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(prepare_topics(settings, pipeline))
    except TopicMismatch as exc:
        raise StartupError(str(exc)) from None
    finally:
        loop.close()
    watch_topics(pipeline, settings.partitions)

    @pipeline.app.task
    async def announce_core() -> None:  # once started
        log.info("recovery core: %s", describe_core())
        log.info("stages: %s, in group %s", STAGE_NAMES[stage], pipeline.app.conf.id)

    if settings.metrics_port:
        serve_metrics(pipeline, settings)
    worker = faust.Worker(
        pipeline.app, loglevel=loglevel, quiet=True, workdir=None, override_logging=False
    )
    worker.spinner = None  # its terminal escapes would break the lines of a JSON log
    worker.execute_from_commandline()
