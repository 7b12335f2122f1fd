"""A discount code from the cart to the report, on the embedded stack with a fake Shopify.

A worker (stages A and B, event time) plans a mid cart; its touch 2, the SMS with 10% off,
reaches a sender whose store creates codes in Shopify. The code exists there (single use,
expiring at the offer's end) before the SMS goes out; the order that uses it, typed in lower
case, ends the plan and the recovery record charges what the code took off. A code whose
creation the store refuses never leaves: its touch is dead-lettered and no message names it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from bus.kafka import ensure_topics, produce
from cartbands.replay import send_ticks
from config.policyfile import DEFAULT_POLICY, load_policy
from recovery.ids import checkout_key
from senders.service import SenderConfig, SenderService
from tests.gateway.helpers import Records, having, read_until
from tests.pipeline.helpers import T0, cart, order
from tests.senders.fake_platforms import FakeShopify

pytestmark = pytest.mark.broker
HOUR = 3600.0
DAY = 86400.0
ENV = {"SHOP_TOKEN": "shpat_test"}


def policy_with_codes(url: str, dest: Path) -> Path:
    """The default policy, every cart treated, codes created in the fake Shopify."""
    data = yaml.safe_load(DEFAULT_POLICY.read_text())
    for band in data["defaults"]["bands"]:
        band["holdout"] = 0
    delivery = data["defaults"].setdefault("delivery", {})
    delivery["retry"] = {"max_attempts": 2, "base_delay": "5ms", "max_delay": "20ms"}
    delivery["codes"] = {
        "platform": "shopify",
        "shop": "demo.myshopify.com",
        "base_url": url,
        "access_token_env": "SHOP_TOKEN",
    }
    dest.write_text(yaml.safe_dump(data))
    return dest


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def of_cart(checkout: str, step: int) -> Any:
    def check(records: Records) -> bool:
        return any(r.value.get("cart") == checkout and r.value.get("step") == step for r in records)

    return check


def outbox(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "outbox" / "sms.ndjson"
    return [orjson.loads(x) for x in path.read_bytes().splitlines()] if path.exists() else []


@pytest.fixture
async def shop():
    fake = await FakeShopify().start()
    yield fake
    await fake.stop()


async def test_a_mid_cart_code_is_created_redeemed_and_reported(broker, workers, tmp_path, shop):
    names = workers.names
    # the sender's own topics, before a consumer's metadata request lets Kafka auto-create
    # one with a single partition
    sender_topics = [names.touch_results, names.touches_dlq]
    await ensure_topics(broker.bootstrap, sender_topics, workers.partitions)
    path = policy_with_codes(shop.url, tmp_path / "policy.yaml")
    workers.start(path, "--clock", "event")

    async def send(*events: dict[str, Any]) -> None:
        records = [(checkout_key(e["store"], e["checkout"]), e) for e in events]
        await produce(broker.bootstrap, names.cart_events, records)

    # m1's touch 2 is due at T0+24h; m2's, two hours later, is refused by the store
    await send(cart("m1", "120", customer="7001"), cart("m2", "90", T0 + 2 * HOUR, customer="7002"))
    await send_ticks(broker.bootstrap, names.cart_events, [T0 + 25 * HOUR])
    emitted = await read_until(broker.bootstrap, [names.touches("sms")], of_cart("m1", 2))
    touch = next(r.value for r in emitted if r.value["cart"] == "m1" and r.value["step"] == 2)
    assert touch["incentive"]["kind"] == "percent_off", workers.logs()
    code = touch["incentive"]["code"]

    clock = [at(touch["due_at"]) + timedelta(minutes=1)]
    config = SenderConfig(
        bootstrap=broker.bootstrap, names=names, app_id=workers.app_id,
        partitions=workers.partitions, outbox_dir=tmp_path / "outbox", channels=("sms",),
        environ=ENV, clock=lambda: clock[0],
    )  # fmt: skip
    service = SenderService(config, load_policy(path))
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        results = await read_until(
            broker.bootstrap, [names.touch_results], having("touch_id", [touch["touch_id"]])
        )
        assert {r.value["outcome"] for r in results} == {"delivered"}, results
        made = shop.discounts[code]["input"]
        assert made["usageLimit"] == 1 and made["appliesOncePerCustomer"] is True
        assert at(made["endsAt"]) == at(touch["incentive"]["expires_at"])
        assert made["customerGets"]["value"] == {"percentage": 0.1}
        assert [line["touch_id"] for line in outbox(tmp_path)] == [touch["touch_id"]]
        assert code in outbox(tmp_path)[0]["message"]["body"]

        # the shopper orders with the code, typed in lower case: 12.00 of 120 off
        used = {**order("m1", "108.00", T0 + 26 * HOUR, customer="7001")}
        used["discounts"] = [{"code": code.lower(), "amount": "12.00"}]
        shop.fail = [(403, {"errors": [{"message": "Access denied for discountCodeBasicCreate"}]})]
        clock[0] = datetime.fromtimestamp(T0 + 26 * HOUR + 120, UTC)
        await send(used)
        await send_ticks(broker.bootstrap, names.cart_events, [T0 + 27 * HOUR, T0 + 9 * DAY])

        # the order's recovery record (the cart's plan record is on the topic too)
        recovered = await read_until(
            broker.bootstrap, [names.recoveries], having("order_id", ["o-m1"])
        )
        record = next(r.value for r in recovered if r.value.get("order_id") == "o-m1")
        assert record["discount_codes_used"] == [code], record
        assert record["discount"] == "12.00" and record["revenue"] == "108.00"
        assert record["same_cart"] is True and record["holdout"] is False

        refused = await read_until(broker.bootstrap, [names.touches("sms")], of_cart("m2", 2))
        other = next(r.value for r in refused if r.value["cart"] == "m2" and r.value["step"] == 2)
        answered = await read_until(
            broker.bootstrap, [names.touch_results], having("touch_id", [other["touch_id"]])
        )
        outcome = next(r.value for r in answered if r.value["touch_id"] == other["touch_id"])
        assert outcome["outcome"] == "dead_lettered" and "403" in outcome["reason"], outcome
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    bodies = [line["message"]["body"] for line in outbox(tmp_path)]
    assert other["incentive"]["code"] not in "".join(bodies)
    assert other["incentive"]["code"] not in shop.discounts
    assert code in shop.discounts  # the order used it: kept, not withdrawn
