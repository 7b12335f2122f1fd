"""A worker restarted on its RocksDB state (kept, not restored from the changelogs).

tansu reports a changelog's end short (quirk 4 in BROKER.md); the store records a changelog
batch's first offset and a restore caps what it records at the end it read, so that a restart
there is not refused with Faust's ``ConsistencyError``. Apache Kafka reports the real end: this
test shows the worker reopens its files and carries on with the core's decisions. The figure at
100,000 pending carts: ``python -m bench.timers --broker kafka --worker 100000``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bus.kafka import produce
from cartbands.processes import stop
from cartbands.replay import send_ticks
from config.policyfile import DEFAULT_POLICY, load_policy
from recovery.checkouts import epoch
from recovery.ids import checkout_key
from recovery.simulate import simulate
from streams.app import code_secret
from tests.kafka.helpers import wait_caught_up
from tests.pipeline.helpers import T0, cart, read_touches, without_holdout

HOUR = 3600.0
DAY = 86400.0
CARTS = 1_500
TOTALS = ["30", "75", "120", "250", "480", "700", "1200", "90"]


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    return without_holdout(DEFAULT_POLICY, tmp_path / "policy.yaml")


def test_worker_restarted_on_its_rocksdb_state_resumes_every_pending_cart(
    broker: Any, workers: Any, policy: Path
) -> None:
    names = workers.names
    events = [cart(f"r{i}", TOTALS[i % len(TOTALS)], T0 + i) for i in range(CARTS)]
    records = [(checkout_key(e["store"], e["checkout"]), e) for e in events]
    asyncio.run(produce(broker.bootstrap, names.cart_events, records))
    asyncio.run(send_ticks(broker.bootstrap, names.cart_events, [T0 + 2 * HOUR]))
    first = workers.start(policy, "--clock", "event", "--store", "rocksdb://")
    # every cart abandoned and planned, and both stages' offsets committed
    topics = [names.cart_events, names.shopper_events]
    marks = wait_caught_up(broker.bootstrap, workers.app_id, topics, workers.partitions, 180)
    assert all(end == done for per in marks.values() for end, done in per.values()), (
        marks,
        workers.logs(),
    )
    assert stop(first) == 0, workers.logs()
    # While the worker is down, event time passes the SMS touches (due at +25h).
    asyncio.run(send_ticks(broker.bootstrap, names.cart_events, [T0 + 30 * HOUR]))
    again = workers.start(policy, "--clock", "event", "--store", "rocksdb://")
    asyncio.run(send_ticks(broker.bootstrap, names.cart_events, [T0 + 8 * DAY]))
    expected = simulate(
        sorted(((epoch(e["occurred_at"], "t"), e) for e in events), key=lambda p: p[0]),
        load_policy(policy),
        code_secret,
    )
    wanted = {t["touch_id"] for t in expected.touches}
    found = read_touches(broker.bootstrap, names.touch_topics, count=len(wanted), timeout=240)
    assert again.poll() is None, workers.logs()
    assert "ConsistencyError" not in workers.logs()
    assert {t["touch_id"] for t in found} == wanted, workers.logs()
