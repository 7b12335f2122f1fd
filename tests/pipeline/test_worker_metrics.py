"""A worker's /metrics shows what its stream did: events in, carts banded, touches emitted."""

from __future__ import annotations

import asyncio
import re
import time
import urllib.request
from pathlib import Path

from bus.kafka import drain, produce, producer
from cartbands.broker import free_port
from recovery.ids import checkout_key
from tests.pipeline.helpers import cart, read_touches, recent, without_holdout

NOT_JSON = b'{"type": "cart_updated", "store": "met", "checkout": "w0"'  # cut short


async def send_raw(bootstrap: str, topic: str, key: bytes, value: bytes) -> None:
    async with producer(bootstrap) as out:
        await out.send_and_wait(topic, key=key, value=value)


def samples(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    found = {}
    for line in text.splitlines():
        match = re.fullmatch(r"(cartbands_[a-z_]+(?:\{[^}]*\})?) (\S+)", line)
        if match:
            found[match.group(1)] = float(match.group(2))
    return found


def test_worker_metrics_follow_the_stream(workers, fast_policy: Path, tmp_path: Path) -> None:
    policy = without_holdout(fast_policy, tmp_path / "policy.yaml")
    port = free_port()
    workers.start(policy, "--metrics-port", str(port))
    names = workers.names
    at = recent()  # the worker runs on the wall clock
    events = [cart("w1", "310", at, store="met"), cart("w2", "42", at, store="met")]
    events.append(events[0])  # a repeated delivery
    records = [(checkout_key(e["store"], e["checkout"]), e) for e in events]
    # a batch whose first record has an unusable type: dead-lettered, and the next one counts
    bad = {**cart("w3", "42", at, store="met"), "type": ["cart_updated"]}
    good = cart("w4", "42", at, store="met")
    records.append((checkout_key("met", "w4"), {"batch": [bad, good]}))
    asyncio.run(send_raw(workers.broker.bootstrap, names.cart_events, b"met:w0", NOT_JSON))
    asyncio.run(produce(workers.broker.bootstrap, names.cart_events, records))
    touches = read_touches(workers.broker.bootstrap, names.touch_topics, count=7, idle=3.0)
    assert len(touches) == 7, workers.logs()
    dead = asyncio.run(drain(workers.broker.bootstrap, [names.cart_events_dlq], until=2))
    by_reason = {value["reason"].split(":")[0]: value for _, _, value in dead}
    assert by_reason["json"]["record"] == NOT_JSON.decode(), by_reason  # kept as it came

    want = {
        'cartbands_events_total{platform="generic",type="cart_updated"}': 4.0,
        'cartbands_events_rejected_total{reason="duplicate"}': 1.0,
        'cartbands_dlq_records_total{dlq="cart_events",reason="type"}': 1.0,
        'cartbands_dlq_records_total{dlq="cart_events",reason="json"}': 1.0,
        'cartbands_carts_abandoned_total{band="high",group="treated",segment="new",store="met"}': 1,
        'cartbands_carts_abandoned_total{band="low",group="treated",segment="new",store="met"}': 2,
        'cartbands_touches_planned_total{band="high",channel="email"}': 2.0,
        'cartbands_touches_emitted_total{band="high",channel="email"}': 2.0,
        'cartbands_touches_emitted_total{band="low",channel="email"}': 2.0,
    }
    deadline = time.monotonic() + 30
    got: dict[str, float] = {}
    while time.monotonic() < deadline:
        got = samples(port)
        if all(got.get(name, 0.0) >= count for name, count in want.items()):
            break
        time.sleep(0.5)
    assert {name: got.get(name) for name in want} == want, workers.logs()
    assert got.get('cartbands_processing_seconds_count{agent="checkouts"}', 0) >= 1
