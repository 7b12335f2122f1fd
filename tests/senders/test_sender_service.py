"""The sender service against the real (embedded) broker, with the outbox adapter."""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sender_helpers import (
    DUE,
    answered,
    first_outcomes,
    having,
    only_repeats,
    read_until,
    touch_data,
)

from bus.kafka import ensure_topics, produce, producer
from bus.topics import TopicNames
from config.policyfile import load_policy
from recovery.policyset import PolicySet
from senders.service import SenderConfig, SenderService

pytestmark = pytest.mark.broker
_numbers = itertools.count(1)


def names() -> TopicNames:
    return TopicNames(f"snd{next(_numbers)}-")


async def start_service(
    broker, tmp_path: Path, prefix: TopicNames, policies: PolicySet | None = None, **extra: Any
):
    config = SenderConfig(
        bootstrap=broker.bootstrap,
        names=prefix,
        app_id=f"{prefix.prefix}app",
        partitions=2,
        outbox_dir=tmp_path / "outbox",
        channels=("email", "sms", "ads", "human"),
        clock=lambda: DUE + timedelta(minutes=5),
        **extra,
    )
    # before the test produces: a produce to a missing topic has the broker create it with its
    # own partition count, which the sender refuses (it verifies its topics)
    topics = [*(prefix.touches(c) for c in config.channels), prefix.touch_results]
    await ensure_topics(broker.bootstrap, [*topics, prefix.touches_dlq], config.partitions)
    service = SenderService(config, policies or load_policy(None))
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    return service, stop, task


async def test_outbox_outcomes_and_dedup(broker, tmp_path):
    prefix = names()
    _service, stop, task = await start_service(broker, tmp_path, prefix)
    email = touch_data(touch_id="t_email")
    touches = {
        "email": [
            email,
            touch_data(touch_id="t_stale", due_at="2026-11-02T09:00:00Z"),
            touch_data(touch_id="t_nolink", recovery_url=None),
        ],
        "sms": [
            touch_data(touch_id="t_sms", channel="sms", template="reminder_sms"),
            touch_data(
                touch_id="t_sms_no", channel="sms", template="reminder_sms",
                contact={"phone": "+12125550100", "sms_consent": False},
            ),
        ],
        "ads": [touch_data(touch_id="t_ads", channel="ads", template="retarget")],
        "human": [touch_data(touch_id="t_human", channel="human", template="human_follow_up")],
    }  # fmt: skip
    try:
        for channel, values in touches.items():
            await produce(broker.bootstrap, prefix.touches(channel),
                          [(v["shopper"], v) for v in values])  # fmt: skip
        ids = [v["touch_id"] for values in touches.values() for v in values]
        results = await read_until(
            broker.bootstrap, [prefix.touch_results], having("touch_id", ids), timeout=60
        )
        assert first_outcomes(results) == {
            "t_email": "delivered",
            "t_stale": "expired",
            "t_nolink": "dead_lettered",
            "t_sms": "delivered",
            "t_sms_no": "suppressed",
            "t_ads": "delivered",
            "t_human": "delivered",
        }
        # the same touch again, and records that are not touch commands at all
        await produce(broker.bootstrap, prefix.touches("email"), [(email["shopper"], email)])
        async with producer(broker.bootstrap) as out:
            await out.send_and_wait(prefix.touches("email"), key=b"k", value=b"{not json")
            naive = touch_data(touch_id="t_naive", due_at="2026-11-02T16:00:00")
            await out.send_and_wait(prefix.touches("email"), key=b"k", value=orjson.dumps(naive))

        def answered_again(records):
            return len(answered(records).get("t_email", [])) >= 2

        results = await read_until(
            broker.bootstrap, [prefix.touch_results], answered_again, timeout=60
        )
        # Delivered once; the second command (and any at-least-once re-read) deduplicated.
        assert answered(results)["t_email"][:2] == ["delivered", "deduplicated"]
        assert only_repeats(results), answered(results)

        def dead_letters(records):  # one per source record; a re-read may add repeats
            return {(r.value["source"]["partition"], r.value["source"]["offset"]) for r in records}

        dlq = await read_until(
            broker.bootstrap, [prefix.touches_dlq], lambda r: len(dead_letters(r)) >= 3, 60
        )
        distinct = {
            (r.value["source"]["partition"], r.value["source"]["offset"]): r.value for r in dlq
        }
        reasons = sorted((v["outcome"], v["reason"]) for v in distinct.values())
        assert [outcome for outcome, _ in reasons] == ["dead_lettered", "malformed", "malformed"]
        assert "no recovery link" in reasons[0][1]
        assert any("time zone" in reason for _, reason in reasons[1:])
        assert all(v["touch"] is not None for v in distinct.values())  # the original is kept
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    outbox = tmp_path / "outbox"
    lines = {
        ch: [orjson.loads(x) for x in (outbox / f"{ch}.ndjson").read_bytes().splitlines()]
        for ch in ("email", "sms", "ads", "human")
    }
    assert [r["touch_id"] for r in lines["email"]] == ["t_email"]
    assert "Unsubscribe" in lines["email"][0]["message"]["html"]
    assert lines["sms"][0]["message"]["body"].endswith("Reply STOP to opt out")
    ads = lines["ads"][0]["message"]
    assert ads["action"] == "add" and len(ads["data"][0][0]) == 64
    assert "fay@example.com" not in orjson.dumps(ads).decode().lower()
    assert "Cart follow-up" in lines["human"][0]["message"]["subject"]
