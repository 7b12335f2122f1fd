"""At most once across a crash: a real ``cartbands sender`` killed between send and commit."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
import uuid
from pathlib import Path

import aiohttp
import pytest
import yaml
from sender_helpers import first_outcomes, having, only_repeats, read_until, touch_data

from cartbands.kafka import ensure_topics, produce
from cartbands.policyfile import DEFAULT_POLICY
from cartbands.processes import spawn, stop, tail
from streams.topics import TopicNames

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
        # the spend of the one delivery this process made, in the store's currency
        lines.append(
            'cartbands_channel_cost_total{channel="sms",currency="USD",store="demo"} 0.0083'
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
