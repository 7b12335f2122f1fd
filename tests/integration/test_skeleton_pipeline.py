"""Cart events cross a real broker into channel topics as touch commands."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime

from bus.kafka import drain, produce
from recovery.ids import checkout_key
from tests.pipeline.helpers import read_touches, recent

STORE = "it-store"


def cart(checkout: str, total: str, sms: bool = True) -> dict:
    at = datetime.fromtimestamp(recent(), UTC)  # the worker runs on the wall clock
    return {
        "type": "cart_updated",
        "event_id": f"evt-{checkout}",
        "store": STORE,
        "checkout": checkout,
        "occurred_at": at.isoformat(),
        "currency": "USD",
        "total": total,
        "line_items": [{"title": "thing", "quantity": 1, "price": total}],
        "contact": {
            "email": f"{checkout}@example.com",
            "phone": "+12125550100",
            "sms_phone": "+12125550100" if sms else None,
            "email_consent": True,
            "sms_consent": sms,
            "customer_id": f"cust-{checkout}",
        },
        "recovery_url": f"https://shop.example.com/{checkout}/recover",
    }


def test_carts_become_touches_on_channel_topics(broker, workers, fast_policy):
    carts = [cart("c42", "42"), cart("c120", "120"), cart("c310", "310"), cart("c900", "900")]
    workers.start(fast_policy)
    names = workers.names
    records = [(checkout_key(STORE, c["checkout"]), c) for c in carts]
    asyncio.run(produce(broker.bootstrap, names.cart_events, records))
    # low 1 + mid 2 + high 5 + vip 5 touches under the fast policy
    received = read_touches(broker.bootstrap, names.touch_topics, count=13, idle=3.0)
    assert len(received) == 13, workers.logs()
    records = asyncio.run(drain(broker.bootstrap, names.touch_topics, idle=2.0, timeout=30))

    for topic, key, value in records:
        assert topic == names.touches(value["channel"])
        assert key is not None and key.decode() == value["shopper"]
    by_cart: dict[str, list[dict]] = defaultdict(list)
    for value in received:
        by_cart[value["cart"]].append(value)

    bands = {c: {v["band"] for v in items} for c, items in by_cart.items()}
    assert bands == {"c42": {"low"}, "c120": {"mid"}, "c310": {"high"}, "c900": {"vip"}}

    def channels(c: str) -> list[str]:
        return [v["channel"] for v in sorted(by_cart[c], key=lambda v: v["step"])]

    assert channels("c42") == ["email"]
    assert channels("c120") == ["email", "sms"]
    assert channels("c310") == ["email", "ads", "sms", "email", "human"]
    assert channels("c900") == ["email", "human", "sms", "ads", "email"]

    low = [v for v in by_cart["c42"]]
    assert all(v["incentive"] is None for v in low)
    mid_discounts = [v["step"] for v in by_cart["c120"] if v["incentive"]]
    assert mid_discounts == [2]
    high = {v["step"]: v["incentive"] for v in by_cart["c310"]}
    assert high[4]["kind"] == "percent_off" and high[4]["value"] == "12"
    assert [s for s, inc in high.items() if inc] == [4]
    vip = [v["incentive"] for v in by_cart["c900"] if v["incentive"]]
    assert vip and all(i["kind"] == "service" for i in vip)
    assert all(v["contact"]["email"].endswith("@example.com") for v in received)
