"""At most once across a crash, and the outcome reported as it happened: a real ``cartbands
sender`` killed between send and commit; a sender stopped between ``done`` and its result."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
import uuid
from pathlib import Path

import aiohttp
import orjson
import pytest
import yaml
from aiokafka.structs import ConsumerRecord
from sender_helpers import answered, first_outcomes, having, only_repeats, read_until, touch_data

from bus.kafka import ensure_topics, produce, producer
from bus.topics import TopicNames
from cartbands.processes import spawn, stop, tail
from config.policyfile import DEFAULT_POLICY, load_policy
from senders.dedup import DedupLog
from senders.registry import Routes
from senders.service import ChannelSender, SenderConfig, ensure_compacted

pytestmark = pytest.mark.broker


def twilio_policy(tmp_path: Path, base_url: str) -> Path:
    data = yaml.safe_load(DEFAULT_POLICY.read_text())
    data["defaults"]["delivery"] = {
        "sms": {"adapter": "twilio", "from_number": "+15005550006", "base_url": base_url},
        "sender": {"from_name": "Acme"},
        "retry": {"max_attempts": 2, "base_delay": "50ms", "max_delay": "100ms"},
        "costs": {"sms": "0.0083", "human": "3.00"},
    }
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


async def metrics_having(url: str, lines: list[str], timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    exposition = ""
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            async with session.get(url) as response:
                exposition = await response.text()
            if all(line in exposition for line in lines):
                break
            await asyncio.sleep(0.2)
    return exposition


async def test_killed_between_send_and_commit_is_not_resent(broker, provider, tmp_path):
    names = TopicNames(f"crash-{uuid.uuid4().hex[:8]}-")
    await ensure_topics(broker.bootstrap, [names.touches("sms")], 2)
    provider.default = (201, {"sid": "SM1", "status": "queued"}, {})
    provider.arrived = asyncio.Event()
    provider.hold = asyncio.Event()  # the provider takes the message but does not answer yet
    policy = twilio_policy(tmp_path, provider.url)
    args = [
        "sender", "--channel", "sms", "--broker", broker.url, "--policy", str(policy),
        "--topic-prefix", names.prefix, "--app-id", names.prefix + "app", "--partitions", "2",
        "--max-lateness", "off",
    ]  # fmt: skip
    env = {"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "tok"}
    first = spawn(args, tmp_path / "sender-1.log", env)
    second = None
    try:
        first_touch = touch_data(touch_id="t_crash", channel="sms", template="reminder_sms")
        await produce(broker.bootstrap, names.touches("sms"), [("demo:s1", first_touch)])
        try:
            await asyncio.wait_for(provider.arrived.wait(), 60)
        except TimeoutError:
            pytest.fail("the sender never called the provider:\n" + tail(tmp_path / "sender-1.log"))
        os.kill(first.pid, signal.SIGKILL)  # after the send, before outcome and commit
        first.wait(10)
        provider.hold.set()
        provider.hold = None
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        second = spawn([*args, "--metrics-port", str(port)], tmp_path / "sender-2.log", env)
        later = touch_data(touch_id="t_later", channel="sms", template="reminder_sms")
        await produce(broker.bootstrap, names.touches("sms"), [("demo:s1", later)])
        wanted = having("touch_id", ["t_crash", "t_later"])
        results = await read_until(broker.bootstrap, [names.touch_results], wanted, timeout=90)
        assert first_outcomes(results) == {"t_crash": "unknown", "t_later": "delivered"}, tail(
            tmp_path / "sender-2.log"
        )
        assert only_repeats(results)
        lines = [
            f'cartbands_deliveries_total{{channel="sms",outcome="{outcome}"}} 1.0'
            for outcome in ("unknown", "delivered")
        ]
        # the spend of the one delivery this process made, in the store's currency and band
        lines.append(
            'cartbands_channel_cost_total{band="high",channel="sms",currency="USD",store="demo"}'
            " 0.0083"
        )
        # The counter moves right after the result is acknowledged: poll, do not race it.
        exposition = await metrics_having(f"http://127.0.0.1:{port}/metrics", lines)
        for line in lines:
            assert line in exposition
    finally:
        for process in (first, second):
            if process is not None:
                stop(process)
    bodies = [r["body"].decode() for r in provider.requests]
    assert len(bodies) == 2, bodies  # one per touch: the crashed one was not sent again
    assert all("Reply+STOP+to+opt+out" in body for body in bodies)


class StopsBeforeTheResult:
    """The sender's producer, in a process that dies while publishing a touch's result: every
    other write goes through (acknowledged); the result never leaves."""

    def __init__(self, producer, results_topic: str) -> None:
        self.producer = producer
        self.results_topic = results_topic
        self.reached = asyncio.Event()
        self.unsent: dict | None = None

    async def send_and_wait(self, topic, **kwargs):
        if topic == self.results_topic:
            self.unsent = orjson.loads(kwargs["value"])
            self.reached.set()
            await asyncio.Event().wait()  # the process is killed here
        return await self.producer.send_and_wait(topic, **kwargs)

    async def send(self, topic, **kwargs):
        return await self.producer.send(topic, **kwargs)


async def test_killed_between_done_and_result_reports_what_happened(broker, tmp_path):
    names = TopicNames(f"done-{uuid.uuid4().hex[:8]}-")
    await ensure_compacted(broker.bootstrap, names.sender_dedup, 2)
    await ensure_topics(broker.bootstrap, [names.touches("email"), names.touch_results], 2)
    config = SenderConfig(
        bootstrap=broker.bootstrap, names=names, app_id=names.prefix + "app", partitions=2,
        outbox_dir=tmp_path / "outbox", channels=("email",), lateness_check=False,
    )  # fmt: skip
    routes = Routes(load_policy(None), config.channels, config.outbox_dir)
    value = orjson.dumps(touch_data(touch_id="t_done"))
    record = ConsumerRecord(names.touches("email"), 0, 0, 0, 0, b"demo:s1", value, None, 7,
                            len(value), [])  # fmt: skip

    async def sender_process(out) -> tuple[ChannelSender, DedupLog]:
        dedup = DedupLog(broker.bootstrap, names.sender_dedup, out)
        await dedup.start()
        return ChannelSender("email", config, routes, dedup, out), dedup

    first_out = producer(broker.bootstrap)
    await first_out.start()
    dying = StopsBeforeTheResult(first_out, names.touch_results)
    first, first_log = await sender_process(dying)
    handling = asyncio.create_task(first.handle(record))
    await asyncio.wait_for(dying.reached.wait(), 30)
    handling.cancel()  # delivered and recorded `done`; the result was never published
    await first_log.stop()
    await first_out.stop()
    assert dying.unsent is not None and dying.unsent["outcome"] == "delivered"

    out = producer(broker.bootstrap)
    await out.start()
    second, second_log = await sender_process(out)
    try:
        assert await second.handle(record) == "delivered"  # the redelivered touch
        assert await second.handle(record) == "deduplicated"  # read again once reported
    finally:
        await second_log.stop()
        await out.stop()
        await routes.close()
    wanted = lambda records: len(answered(records).get("t_done", [])) >= 2  # noqa: E731
    results = await read_until(broker.bootstrap, [names.touch_results], wanted, timeout=30)
    assert answered(results) == {"t_done": ["delivered", "deduplicated"]}
    # the very result the killed process was publishing: same time, provider and id
    assert results[0].value == dying.unsent
    lines = (tmp_path / "outbox" / "email.ndjson").read_bytes().splitlines()
    assert len(lines) == 1  # delivered once, by the process that was killed
