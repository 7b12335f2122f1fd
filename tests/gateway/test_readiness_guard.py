"""The topic guard's rules, without a broker: an acknowledged request waits for a topic check
that started after it, concurrent requests share a check, and a failed one refuses them."""

from __future__ import annotations

import asyncio

import pytest

from bus.kafka import TopicMismatch, TopicsMissing
from bus.topics import TopicNames
from gateway.output import BrokerUnavailable, Output
from gateway.topicguard import Rounds, TopicGuard


class Checks:
    """A check that runs only when the test lets it finish, recording when each started."""

    def __init__(self) -> None:
        self.started = 0
        self.gates: list[asyncio.Future[None]] = []

    async def __call__(self) -> None:
        self.started += 1
        gate = asyncio.get_running_loop().create_future()
        self.gates.append(gate)
        await gate

    def finish(self, error: Exception | None = None) -> None:
        gate = self.gates[-1]
        if error is None:
            gate.set_result(None)
        else:
            gate.set_exception(error)


async def _turns(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_a_request_waits_for_a_check_that_started_after_it():
    checks = Checks()
    rounds = Rounds(checks)
    early = asyncio.create_task(rounds.after_now())
    await _turns()
    assert checks.started == 1
    late = [asyncio.create_task(rounds.after_now()) for _ in range(3)]  # during the first check
    await _turns()
    checks.finish()
    await asyncio.wait_for(early, 1)
    await _turns()
    # the first check began before the late requests: they wait for one more, and share it
    assert checks.started == 2 and not any(t.done() for t in late)
    checks.finish()
    await asyncio.wait_for(asyncio.gather(*late), 1)
    assert checks.started == 2


async def test_a_failed_check_fails_its_requests_and_the_guard_is_not_ready():
    checks = Checks()
    guard = TopicGuard(checks, checks, on_fatal=lambda _: None)
    guard.verified = True
    waiting = asyncio.create_task(guard.confirm(guard.failures))
    await _turns()
    checks.finish(TopicsMissing("topics missing: t-cart-events"))
    with pytest.raises(TopicsMissing):
        await asyncio.wait_for(waiting, 1)
    assert not guard.verified and "t-cart-events" in guard.reason


async def test_a_mismatch_is_fatal():
    checks = Checks()
    fatal: list[str] = []
    guard = TopicGuard(checks, checks, on_fatal=fatal.append)
    waiting = asyncio.create_task(guard.confirm(guard.failures))
    await _turns()
    checks.finish(TopicMismatch("topic t-cart-events has 4 partitions, not 8"))
    with pytest.raises(TopicMismatch):
        await asyncio.wait_for(waiting, 1)
    assert fatal == ["topic t-cart-events has 4 partitions, not 8"]


async def test_an_unverified_output_refuses_before_producing():
    output = Output("unused:9092", TopicNames("t-"))
    output._producer = object()  # type: ignore[assignment]
    guard = TopicGuard(Checks(), Checks(), on_fatal=lambda _: None)
    guard.reason = "topics missing: t-cart-events"
    output._guard = guard
    with pytest.raises(BrokerUnavailable, match="t-cart-events"):
        await output.send([])


async def test_a_request_in_flight_across_a_failed_check_is_refused_even_if_topics_are_back():
    # records acknowledged into a topic that was gone, then the topic created again before
    # the request's own check: that check passes, the earlier failure still refuses it
    checks = Checks()
    guard = TopicGuard(checks, checks, on_fatal=lambda _: None)
    guard.verified = True
    since = guard.failures
    failing = asyncio.create_task(guard.confirm(guard.failures))  # e.g. a readiness probe
    await _turns()
    checks.finish(TopicsMissing("topics missing: t-cart-events"))
    with pytest.raises(TopicsMissing):
        await asyncio.wait_for(failing, 1)
    waiting = asyncio.create_task(guard.confirm(since))
    await _turns()
    checks.finish()  # the topics exist again
    with pytest.raises(TopicsMissing, match="while in flight"):
        await asyncio.wait_for(waiting, 1)
    assert guard.verified  # the guard itself is ready again
