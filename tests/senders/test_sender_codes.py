"""The sender creates a touch's discount code in the (fake) Shopify before delivering it, never
delivers a code that was not created, never creates one twice, and deletes the codes of a
plan that an order or a redaction ended."""

from __future__ import annotations

import asyncio
import itertools
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from fake_platforms import FakeShopify
from sender_helpers import first_outcomes, having, read_until, touch_data

from bus.kafka import ensure_topics, produce
from bus.topics import TopicNames
from config.policyfile import DEFAULT_POLICY, load_policy, parse_policy
from recovery.checkouts import epoch
from recovery.simulate import simulate
from senders.adapters.base import ConfigError
from senders.service import SenderConfig, SenderService
from streams.app import code_secret
from tests.pipeline.helpers import cart, without_holdout

pytestmark = pytest.mark.broker
_numbers = itertools.count(1)
ENV = {"SHOP_TOKEN": "shpat_test"}


def codes_policy(url: str, **codes: Any):
    data = yaml.safe_load(DEFAULT_POLICY.read_text())
    delivery = data["defaults"].setdefault("delivery", {})
    delivery["retry"] = {"max_attempts": 3, "base_delay": "5ms", "max_delay": "20ms"}
    delivery["codes"] = {"platform": "shopify", "shop": "demo.myshopify.com", "base_url": url,
                         "access_token_env": "SHOP_TOKEN", **codes}  # fmt: skip
    return parse_policy(data, "test")


async def start(broker, tmp_path: Path, policies, now: datetime):
    prefix = TopicNames(f"cds{next(_numbers)}-")
    config = SenderConfig(
        bootstrap=broker.bootstrap, names=prefix, app_id=f"{prefix.prefix}app", partitions=2,
        outbox_dir=tmp_path / "outbox", channels=("email", "sms"), environ=ENV,
        clock=lambda: now,
    )  # fmt: skip
    topics = [*(prefix.touches(c) for c in config.channels), prefix.touch_results]
    await ensure_topics(
        broker.bootstrap, [*topics, prefix.touches_dlq, prefix.shopper_events], config.partitions
    )
    service = SenderService(config, policies)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    return prefix, service, stop, task


def offer(touch_id: str, code: str, cart_id: str = "chk-mid-1", **extra: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "touch_id": touch_id, "channel": "sms", "template": "offer_sms", "band": "mid",
        "step": 2, "cart": cart_id,
        "incentive": {"kind": "percent_off", "value": "10", "code": code,
                      "expires_at": "2026-11-04T16:00:00Z"},
    }  # fmt: skip
    args.update(extra)
    return touch_data(**args)


def outbox_lines(tmp_path: Path, channel: str) -> list[dict[str, Any]]:
    path = tmp_path / "outbox" / f"{channel}.ndjson"
    return [orjson.loads(x) for x in path.read_bytes().splitlines()] if path.exists() else []


async def until(check, timeout: float = 30.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


@pytest.fixture
async def shop():
    fake = await FakeShopify().start()
    yield fake
    await fake.stop()


async def test_mid_cart_touch_two_carries_a_code_created_in_shopify(broker, tmp_path, shop):
    """The issue's "done when", sender part: the default policy's mid-band SMS with 10% off."""
    policy = load_policy(without_holdout(DEFAULT_POLICY, Path(tempfile.mkdtemp()) / "p.yaml"))
    event = cart("m1", "120", customer="7001")
    sim = simulate([(epoch(event["occurred_at"], "t"), event)], policy, code_secret)
    touch = next(t for t in sim.touches if t["cart"] == "m1" and t["step"] == 2)
    assert touch["channel"] == "sms" and touch["incentive"]["kind"] == "percent_off"
    code = touch["incentive"]["code"]
    due = datetime.fromisoformat(touch["due_at"].replace("Z", "+00:00"))
    prefix, _service, stop, task = await start(
        broker, tmp_path, codes_policy(shop.url), due + timedelta(minutes=1)
    )
    try:
        await produce(broker.bootstrap, prefix.touches("sms"), [(touch["shopper"], touch)])
        results = await read_until(
            broker.bootstrap, [prefix.touch_results], having("touch_id", [touch["touch_id"]])
        )
        assert first_outcomes(results) == {touch["touch_id"]: "delivered"}
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    made = shop.discounts[code]["input"]
    assert made["usageLimit"] == 1 and made["appliesOncePerCustomer"] is True  # single use
    expires = datetime.fromisoformat(touch["incentive"]["expires_at"].replace("Z", "+00:00"))
    assert datetime.fromisoformat(made["endsAt"].replace("Z", "+00:00")) == expires  # expiring
    assert made["customerGets"]["value"] == {"percentage": 0.1}
    assert made["context"] == {"customers": {"add": ["gid://shopify/Customer/7001"]}}
    assert made["minimumRequirement"]["subtotal"]["greaterThanOrEqualToSubtotal"] == "50.00"
    sms = outbox_lines(tmp_path, "sms")
    assert [line["touch_id"] for line in sms] == [touch["touch_id"]]
    assert code in sms[0]["message"]["body"]


async def test_failed_provisioning_dead_letters_and_nothing_goes_out(broker, tmp_path, shop):
    shop.fail = [(403, {"errors": "needs write_discounts"})] + [(503, {})] * 3
    now = datetime.fromisoformat("2026-11-02T16:05:00+00:00")
    prefix, _service, stop, task = await start(broker, tmp_path, codes_policy(shop.url), now)
    refused, busy = offer("t_refused", "ACE4HJ7KMN9P"), offer("t_busy", "CE4HJ7KMN9PA")
    try:
        await produce(broker.bootstrap, prefix.touches("sms"), [(refused["shopper"], refused)])
        results = await read_until(
            broker.bootstrap, [prefix.touch_results], having("touch_id", ["t_refused"])
        )
        await produce(broker.bootstrap, prefix.touches("sms"), [(busy["shopper"], busy)])
        results = await read_until(
            broker.bootstrap, [prefix.touch_results], having("touch_id", ["t_refused", "t_busy"])
        )
        outcomes = {r.value["touch_id"]: r.value for r in results}
        assert outcomes["t_refused"]["outcome"] == "dead_lettered"
        assert "code provisioning (shopify)" in outcomes["t_refused"]["reason"]
        assert "403" in outcomes["t_refused"]["reason"]
        assert outcomes["t_busy"]["outcome"] == "failed"  # 5xx until the retries ran out
        assert "gave up after 3 attempts" in outcomes["t_busy"]["reason"]
        dlq = await read_until(
            broker.bootstrap, [prefix.touches_dlq], having("touch_id", ["t_refused", "t_busy"])
        )
        assert {r.value["touch_id"] for r in dlq} == {"t_refused", "t_busy"}
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    assert outbox_lines(tmp_path, "sms") == [] and shop.discounts == {}


async def test_a_retry_or_an_earlier_attempt_never_makes_a_second_code(broker, tmp_path, shop):
    shop.fail = [(503, {})]  # the first create attempt fails, the retry succeeds
    # an earlier attempt of t_crashed created its code, then the sender stopped before sending
    shop.discounts["E4HJ7KMN9PAC"] = {
        "id": "gid://shopify/DiscountCodeNode/5", "type": "DiscountCodeBasic",
        "input": {"title": "cartbands t_crashed", "code": "E4HJ7KMN9PAC"},
    }  # fmt: skip
    now = datetime.fromisoformat("2026-11-02T16:05:00+00:00")
    prefix, _service, stop, task = await start(broker, tmp_path, codes_policy(shop.url), now)
    retried, crashed = offer("t_retried", "ACE4HJ7KMN9P"), offer("t_crashed", "E4HJ7KMN9PAC")
    try:
        await produce(broker.bootstrap, prefix.touches("sms"),
                      [(retried["shopper"], retried), (crashed["shopper"], crashed)])  # fmt: skip
        results = await read_until(
            broker.bootstrap, [prefix.touch_results], having("touch_id", ["t_retried", "t_crashed"])
        )
        assert first_outcomes(results) == {"t_retried": "delivered", "t_crashed": "delivered"}
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    assert shop.count("POST", "discountCodeBasicCreate") == 1  # t_retried's, once it succeeded
    assert sorted(shop.discounts) == ["ACE4HJ7KMN9P", "E4HJ7KMN9PAC"]


async def test_an_order_or_a_redaction_deletes_the_unused_codes(broker, tmp_path, shop):
    now = datetime.fromisoformat("2026-11-02T16:05:00+00:00")
    prefix, _service, stop, task = await start(broker, tmp_path, codes_policy(shop.url), now)
    touches = [
        offer("t_unused", "ACE4HJ7KMN9P", "chk-a", shopper="demo:a1"),
        offer("t_used", "CE4HJ7KMN9PA", "chk-b", shopper="demo:b2"),
        offer("t_redacted", "E4HJ7KMN9PAC", "chk-c", shopper="demo:c3",
              contact={"email": "cy@example.com", "customer_id": "c3", "sms_phone": "+12125550101",
                       "sms_consent": True}),
    ]  # fmt: skip
    ids = [t["touch_id"] for t in touches]
    try:
        await produce(broker.bootstrap, prefix.touches("sms"), [(t["shopper"], t) for t in touches])
        results = await read_until(
            broker.bootstrap, [prefix.touch_results], having("touch_id", ids)
        )
        assert set(first_outcomes(results).values()) == {"delivered"}
        assert len(shop.discounts) == 3
        ended = [
            {"type": "cart_converted", "store": "demo", "shopper": "demo:a1", "checkout": "chk-a",
             "occurred_at": "2026-11-02T18:00:00Z", "discount_codes": []},
            {"type": "cart_converted", "store": "demo", "shopper": "demo:b2", "checkout": "chk-b",
             "occurred_at": "2026-11-02T18:00:00Z", "discount_codes": ["CE4HJ7KMN9PA"]},
            {"type": "shopper_redacted", "store": "demo", "event_id": "r1", "customer_id": "c3",
             "occurred_at": "2026-11-02T18:00:00Z", "shopper": "demo:c3"},
        ]  # fmt: skip
        await produce(broker.bootstrap, prefix.shopper_events, [(r["shopper"], r) for r in ended])
        assert await until(lambda: sorted(shop.discounts) == ["CE4HJ7KMN9PA"]), shop.discounts
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    # a restarted sender rebuilds its ledger from the de-dup log and deletes nothing twice
    deletes = shop.count("POST", "discountCodeDelete")
    stop2 = asyncio.Event()
    config = SenderConfig(
        bootstrap=broker.bootstrap, names=prefix, app_id=f"{prefix.prefix}app", partitions=2,
        outbox_dir=tmp_path / "outbox", channels=("sms",), environ=ENV, clock=lambda: now,
    )  # fmt: skip
    again = SenderService(config, codes_policy(shop.url))
    task = asyncio.create_task(again.run(stop2))
    try:
        assert await until(lambda: again.codes is not None and again.codes.ledger.live != {})
        assert set(again.codes.ledger.live) == {"CE4HJ7KMN9PA"}  # the used one, until it expires
        await asyncio.sleep(1.0)
        assert shop.count("POST", "discountCodeDelete") == deletes
    finally:
        stop2.set()
        await asyncio.wait_for(task, 30)


async def test_a_code_whose_touch_is_not_delivered_is_deleted_again(broker, tmp_path, shop):
    now = datetime.fromisoformat("2026-11-02T16:05:00+00:00")
    prefix, _service, stop, task = await start(broker, tmp_path, codes_policy(shop.url), now)
    broken = offer("t_broken", "ACE4HJ7KMN9P", template="no_such_template")
    try:
        await produce(broker.bootstrap, prefix.touches("sms"), [(broken["shopper"], broken)])
        results = await read_until(
            broker.bootstrap, [prefix.touch_results], having("touch_id", ["t_broken"])
        )
        assert first_outcomes(results) == {"t_broken": "dead_lettered"}
        assert shop.count("POST", "discountCodeBasicCreate") == 1
        assert await until(lambda: shop.discounts == {}), shop.discounts
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def test_missing_credentials_stop_the_sender_at_start(tmp_path):
    config = SenderConfig(
        bootstrap="127.0.0.1:1", names=TopicNames("x-"), app_id="x", partitions=1,
        outbox_dir=tmp_path, channels=("sms",), environ={},
    )  # fmt: skip
    with pytest.raises(ConfigError, match=r"defaults\.delivery\.codes \(shopify\).*SHOP_TOKEN"):
        SenderService(config, codes_policy("http://127.0.0.1:1"))
    # the default policy (platform none) needs nothing: codes are only printed
    SenderService(config, load_policy(None))
