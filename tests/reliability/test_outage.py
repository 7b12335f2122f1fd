"""The broker goes away and comes back, under a running ``cartbands gateway`` process.

While the broker is away, every event must be refused with 503 (not stored: the platform
delivers it again), never acknowledged with 200 and never answered 500; once it is back,
every event acknowledged must be in ``cart-events``, and ``/readyz`` must say ready only when
the gateway can persist.

The broker here is the embedded tansu broker of its own (stopping the session's would take
every other test's topics with it). tansu keeps everything in memory: it comes back empty,
topics included, so the events stored before the outage are gone with it, by the broker's doing
(not counted here: Apache Kafka keeps them). What is counted is what the gateway promised.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bus.kafka import ensure_topics
from bus.topics import TopicNames
from cartbands.broker import EmbeddedBroker, free_port
from cartbands.processes import running, tail
from tests.gateway.helpers import ENV, GENERIC_TOKEN, having, read_until, write_policy
from tests.reliability.tally import Tally, leaks

pytestmark = pytest.mark.broker

PER_PHASE = 30
AUTH = {"Content-Type": "application/json", "Authorization": f"Bearer {GENERIC_TOKEN}"}


def event(phase: str, n: int) -> dict[str, Any]:
    return {
        "type": "cart_updated",
        "store": "acme",
        "checkout": f"{phase}-{n}",
        "event_id": f"{phase}-{n}",
        "occurred_at": "2026-11-02T15:00:00Z",
        "currency": "USD",
        "total": "64.00",
        "contact": {"email": f"{phase}.{n}@example.org", "email_consent": True},
    }


async def post_all(url: str, phase: str) -> list[tuple[str, int]]:
    """(event id, status) of one POST per event, all at once (as a platform's retries come)."""
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def one(body: dict[str, Any]) -> tuple[str, int]:
            async with session.post(f"{url}/events", json=body, headers=AUTH) as response:
                await response.read()
                return body["event_id"], response.status

        return list(await asyncio.gather(*(one(event(phase, n)) for n in range(PER_PHASE))))


async def ready(url: str) -> int:
    timeout = aiohttp.ClientTimeout(total=10)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(f"{url}/readyz") as response,
    ):
        return response.status


async def wait_ready(url: str, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if await ready(url) == 200:
                return True
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.3)
    return False


def test_broker_outage_and_return_under_the_gateway(tmp_path: Path) -> None:
    port = free_port()
    names = TopicNames("outage-")
    policy = write_policy(tmp_path / "policy.yaml")
    http = free_port()
    url = f"http://127.0.0.1:{http}"
    broker = EmbeddedBroker(port).start()
    log = tmp_path / "gateway.log"
    args = [
        "gateway", "--broker", broker.url, "--port", str(http), "--policy", str(policy),
        "--topic-prefix", names.prefix, "--partitions", "2", "--ack-timeout", "2",
    ]  # fmt: skip
    try:
        asyncio.run(ensure_topics(broker.bootstrap, names.pipeline_topics, 2))
        with running(args, log, ENV) as gateway:
            assert asyncio.run(wait_ready(url)), tail(log)
            before = asyncio.run(post_all(url, "before"))
            broker.stop()
            during = asyncio.run(post_all(url, "during"))
            ready_during = asyncio.run(ready(url))
            broker.start()  # tansu: empty, its topics gone
            time.sleep(2.0)
            ready_after = asyncio.run(ready(url))
            after = asyncio.run(post_all(url, "after"))
            stored = [event_id for event_id, status in after if status == 200]
            records = asyncio.run(
                read_until(broker.bootstrap, [names.cart_events], having("event_id", stored), 10)
            )
            alive = gateway.poll() is None
    finally:
        broker.stop()
    found = {r.value.get("event_id") for r in records if isinstance(r.value, dict)}
    tally = Tally("broker outage and return")
    tally.expected = 3 * PER_PHASE
    tally.emitted = sum(1 for _, status in [*before, *during, *after] if status == 200)
    tally.lost = sum(1 for _, status in during if status == 200) + len(set(stored) - found)
    tally.server_errors = sum(
        1 for _, status in [*before, *during, *after] if status >= 500 and status != 503
    )
    text = log.read_text(errors="replace")
    emails = {e["contact"]["email"] for p in ("before", "during", "after") for e in
              (event(p, n) for n in range(PER_PHASE))}  # fmt: skip
    tally.leaks = len(leaks({"gateway log": text}, {*ENV.values(), *emails}))
    # ready while it could not persist: during the outage, or after it with no topics
    tally.notes.update(
        {
            "broker": "tansu (comes back empty)",
            "200 before/during/after": [
                sum(1 for _, s in phase if s == 200) for phase in (before, during, after)
            ],
            "acknowledged after the return but not stored": len(set(stored) - found),
            "/readyz during, after": [ready_during, ready_after],
            "gateway alive": alive,
        }
    )
    tally.record()
    assert alive, tail(log)
    assert all(status == 200 for _, status in before), before
    assert ready_during == 503
    assert tally.failures() == {}, tail(log)
    # after the return, ready means the topics are there to take the events
    assert ready_after != 200 or not (set(stored) - found)
