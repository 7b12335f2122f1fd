"""cartbands.worker: a crash while the worker's topics are gone says which are gone."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest

from agents import register_all
from bus.kafka import TopicMismatch, TopicsMissing
from cartbands import worker
from config.policyfile import load_policy
from streams.app import create_app


def crash_check(monkeypatch: pytest.MonkeyPatch, found: BaseException | None) -> Any:
    """The worker's crash check, its topic check answering ``found`` (raised) or fine."""
    checked: list[tuple[Any, ...]] = []

    async def check_topics(client: Any, wanted: Any, optional: Any = ()) -> None:
        checked.append((dict(wanted), set(optional)))
        if found is not None:
            raise found

    monkeypatch.setattr(worker, "check_topics", check_topics)
    pipeline = register_all(create_app(broker="kafka://127.0.0.1:9", policies=load_policy()))
    # a started worker's producer client; the check above takes it and answers on its own
    monkeypatch.setattr(
        pipeline.app.producer, "_ensure_producer", lambda: SimpleNamespace(client=None)
    )
    worker.watch_topics(pipeline, 8)
    (check,) = pipeline.app.crash_checks
    return check, checked


def worker_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What the worker said: a record another test's leftover task logs meanwhile is not it."""
    return [r.getMessage() for r in caplog.records if r.name == worker.log.name]


@pytest.mark.parametrize(
    ("found", "crash", "line"),
    [
        (
            TopicsMissing("topics missing: t-recoveries"),
            "produced records were not delivered: [Error -1]",
            "topics missing: t-recoveries (was the broker restarted empty?); stopping the worker",
        ),
        (
            TopicMismatch("topic t-cart-events: 4 partitions"),
            "has no partition",
            "topic t-cart-events: 4 partitions; stopping the worker",
        ),
    ],
    ids=["topics gone", "topics changed"],
)
async def test_a_crash_with_topics_gone_or_changed_names_them(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    found: BaseException,
    crash: str,
    line: str,
) -> None:
    check, checked = crash_check(monkeypatch, found)
    with caplog.at_level(logging.CRITICAL, logger="cartbands.worker"):
        await check(RuntimeError(crash))
    assert "cart-events" in checked[0][0] and all(n == 8 for n in checked[0][0].values())
    assert worker_lines(caplog) == [line]


async def test_nothing_is_said_when_the_topics_are_there_or_the_check_stopped_it(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    check, checked = crash_check(monkeypatch, None)
    with caplog.at_level(logging.CRITICAL, logger="cartbands.worker"):
        await check(RuntimeError("an agent's bug"))
        await check(TopicsMissing("topics missing: t-recoveries"))
    assert len(checked) == 1 and not worker_lines(caplog)
