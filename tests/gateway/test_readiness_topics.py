"""Readiness means "can persist": the gateway acknowledges only records that landed in topics it
verified, and refuses to start on topics with another partition count (invariant 10)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid

import aiohttp
import pytest

from bus.kafka import ensure_topics
from bus.topics import TopicNames
from cartbands.broker import EmbeddedBroker, free_port
from cartbands.processes import spawn, stop, tail
from tests.gateway.helpers import (
    ENV,
    fixture_bytes,
    having,
    post,
    read_until,
    running_gateway,
    shopify_headers,
    write_policy,
)

pytestmark = pytest.mark.broker


async def _readyz(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url + "/readyz") as response:
        return response.status, await response.text()


async def test_broker_restarted_empty_gets_no_acknowledgement_into_nothing(tmp_path):
    policy = write_policy(tmp_path / "policy.yaml")
    body = fixture_bytes("shopify_checkout.json")
    port = free_port()
    first = EmbeddedBroker(port)
    await asyncio.to_thread(first.start)
    second = EmbeddedBroker(port)
    try:
        async with running_gateway(first.bootstrap, policy, ack_timeout=5.0) as gw:
            topic = gw.names.cart_events
            status, _ = await post(
                gw.url + "/webhooks/shopify", body, shopify_headers(body, "checkouts/update", "r0")
            )
            assert status == 200
            assert (await _readyz(gw.url))[0] == 200
            # the broker comes back on the same address without its topics (memory storage)
            await asyncio.to_thread(first.stop)
            await asyncio.to_thread(second.start)
            answers: dict[str, int] = {}
            deadline = time.monotonic() + 20
            ready_again = False
            index = 0
            while time.monotonic() < deadline and not ready_again:
                index += 1
                webhook = f"r{index}"
                headers = shopify_headers(body, "checkouts/update", webhook)
                answers[webhook], _ = await post(gw.url + "/webhooks/shopify", body, headers)
                ready_again = answers[webhook] == 200 and (await _readyz(gw.url))[0] == 200
                await asyncio.sleep(0.1)
            assert ready_again, answers
            acknowledged = [w for w, status in answers.items() if status == 200]
            assert set(answers.values()) <= {200, 503}, answers
            # every acknowledged delivery is on the broker: none was answered 200 into a topic
            # that did not exist (tansu acknowledges those and stores nothing)
            records = await read_until(
                second.bootstrap, [topic], having("event_id", acknowledged), 15
            )
            stored = {r.value.get("event_id") for r in records if isinstance(r.value, dict)}
            assert set(acknowledged) <= stored, (answers, sorted(stored))
            assert 503 in answers.values(), answers  # the restart was noticed, not missed
    finally:
        await asyncio.to_thread(second.stop)
        await asyncio.to_thread(first.stop)


async def test_readyz_says_not_ready_while_the_topics_are_gone(tmp_path):
    policy = write_policy(tmp_path / "policy.yaml")
    port = free_port()
    first = EmbeddedBroker(port)
    await asyncio.to_thread(first.start)
    second = EmbeddedBroker(port)
    try:
        async with running_gateway(first.bootstrap, policy, ack_timeout=5.0) as gw:
            assert (await _readyz(gw.url))[0] == 200
            await asyncio.to_thread(first.stop)
            await asyncio.to_thread(second.start)
            seen: list[tuple[int, str]] = []
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                seen.append(await _readyz(gw.url))
                if seen[-1][0] == 503 and "missing" in seen[-1][1]:
                    break
                await asyncio.sleep(0.05)
            assert any(s == 503 and "missing" in text for s, text in seen), seen[-5:]
            # the gateway creates its topics again, checks them, and is ready
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and (await _readyz(gw.url))[0] != 200:
                await asyncio.sleep(0.2)
            assert (await _readyz(gw.url))[0] == 200
    finally:
        await asyncio.to_thread(second.stop)
        await asyncio.to_thread(first.stop)


def test_gateway_refuses_topics_with_another_partition_count(broker, tmp_path):
    policy = write_policy(tmp_path / "policy.yaml")
    names = TopicNames(f"gwp-{uuid.uuid4().hex[:8]}-")
    topics = [names.cart_events, names.shopper_events, names.ingest_dlq]
    asyncio.run(ensure_topics(broker.bootstrap, topics, 4))
    log = tmp_path / "gateway.log"
    args = ["gateway", "--broker", broker.url, "--port", str(free_port()), "--policy",
            str(policy), "--topic-prefix", names.prefix, "--partitions", "2"]  # fmt: skip
    process = spawn(args, log, env=ENV)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        pass
    finally:
        code = stop(process)
    assert code not in (None, 0), tail(log)
    lines = [line for line in tail(log).splitlines() if line.strip()]
    assert f"{names.cart_events} has 4 partitions, not 2" in lines[-1], tail(log)
    assert "Traceback" not in tail(log, 50_000)


def test_gateway_waits_for_the_broker_not_ready_and_without_a_traceback(tmp_path):
    policy = write_policy(tmp_path / "policy.yaml")
    broker_port, port = free_port(), free_port()
    log = tmp_path / "gateway.log"
    args = ["gateway", "--broker", f"kafka://127.0.0.1:{broker_port}", "--port", str(port),
            "--policy", str(policy), "--topic-prefix", "gww-", "--partitions", "2",
            "--log-format", "json"]  # fmt: skip
    process = spawn(args, log, env=ENV)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        answer: tuple[int, str] = (0, "")
        while time.monotonic() < deadline and answer[0] != 503:
            try:
                answer = asyncio.run(_readyz(url))
            except OSError:
                time.sleep(0.2)
        assert answer[0] == 503 and "not connected" in answer[1], (answer, tail(log))
        time.sleep(3)
        lines = [json.loads(line) for line in tail(log, 20_000).splitlines() if line.strip()]
        waiting = [e for e in lines if "not reachable yet" in e["message"]]
        assert len(waiting) >= 2 and all("error" not in e for e in waiting), tail(log)
        with EmbeddedBroker(broker_port):
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and asyncio.run(_readyz(url))[0] != 200:
                time.sleep(0.3)
            assert asyncio.run(_readyz(url))[0] == 200, tail(log)
    finally:
        stop(process)
    assert "Traceback" not in tail(log, 50_000)
