"""Last-moment suppression from shopper-events: opt-outs, redactions, conversions."""

from __future__ import annotations

import asyncio
import time
import uuid
from urllib.parse import urlencode

import orjson
import pytest
from sender_helpers import having, read_until, touch_data

from bus.kafka import ensure_topics, produce
from bus.topics import TopicNames
from config.policyfile import load_policy
from recovery import checkouts as stage_a
from recovery.ids import shopper_key
from schemas.records import TouchCommand
from senders.outcomes import Outcome
from senders.suppression import SuppressionView
from tests.pipeline.helpers import T0, cart, wire


def consent(channel: str, granted: bool, at: str, **who: str) -> dict:
    return {"type": "consent_changed", "store": "demo", "event_id": f"e-{at}", "occurred_at": at,
            "channel": channel, "granted": granted, "source": "sms_stop", **who}  # fmt: skip


def touch(**overrides) -> TouchCommand:
    return TouchCommand.from_data(touch_data(**overrides))


def abandoned(checkout: str, cycle: int, active: str, at: str = "2026-11-03T12:00:00Z") -> dict:
    """Stage A's record of an abandonment (``at``: the tick's time) of a cart last touched by
    the shopper at ``active``."""
    return {"type": "cart_abandoned", "store": "demo", "shopper": "demo:5f2a9c",
            "checkout": checkout, "cycle": cycle, "abandoned_at": at, "occurred_at": at,
            "cart": {"store": "demo", "checkout": checkout, "occurred_at": active,
                     "total": "310.00", "currency": "USD",
                     "contact": {"email": "fay@example.com"}}}  # fmt: skip


def redaction(at: str, **who: str) -> dict:
    return {"type": "shopper_redacted", "store": "demo", "event_id": f"r-{at}",
            "occurred_at": at, **who}  # fmt: skip


def test_a_redaction_blocks_every_touch_from_activity_before_it():
    """Invariant 6 at the senders: what matters is when the shopper was last active on the
    cart, not when the touch is due nor when a tick abandoned the cart."""
    view = SuppressionView()
    # last active 15:00, redacted 16:30; a lagging worker abandons the cart at 18:00
    assert view.apply(abandoned("chk-high-1", 1, "2026-11-02T15:00:00Z", "2026-11-02T18:00:00Z"))
    assert view.apply(redaction("2026-11-02T16:30:00Z", email="FAY@example.com"))
    first = touch(due_at="2026-11-02T19:00:00Z")
    assert view.awaits_activity(first, "email") is False  # its abandonment is known
    verdict = view.check(first, "email")
    assert verdict is not None and verdict.outcome is Outcome.SUPPRESSED
    assert "after the cart's last activity" in verdict.reason
    # a later step; an SMS carrying only the phone, for the shopper filed under that email
    fay = shopper_key("demo", email="fay@example.com")
    only_phone = {"sms_phone": "+12125550100", "sms_consent": True}
    for later in (touch(touch_id="t_2", step=2, due_at="2026-11-04T18:00:00Z"),
                  touch(touch_id="t_s", channel="sms", template="reminder_sms", shopper=fay,
                        contact=only_phone)):  # fmt: skip
        assert view.check(later, later.channel) is not None
    assert (
        view.check(touch(channel="sms", template="reminder_sms", contact=only_phone), "sms") is None
    )
    # a cart whose abandonment the senders have not read: counted as older than the redaction
    unknown = touch(cart="chk-other", due_at="2026-11-05T10:00:00Z")
    assert view.awaits_activity(unknown, "email") is True
    verdict = view.check(unknown, "email")
    assert verdict is not None and "no activity of the cart known" in verdict.reason
    # the shopper comes back after the redaction: the new cycle's touches go
    view.apply(abandoned("chk-high-1", 2, "2026-11-02T17:00:00Z", "2026-11-02T18:00:00Z"))
    assert view.check(touch(plan_version=2, due_at="2026-11-02T19:00:00Z"), "email") is None
    assert view.check(touch(plan_version=1, due_at="2026-11-02T19:00:00Z"), "email") is not None
    # the redaction's own consequence, leaving the ads audience, is not held back by it
    removal = touch(channel="ads", template="audience_remove", due_at="2026-11-02T16:30:00Z")
    assert view.check(removal, "ads") is None
    assert view.check(touch(channel="ads", template="retarget"), "ads") is not None


def test_a_store_redaction_blocks_every_touch_from_activity_before_it():
    view = SuppressionView()
    view.apply(abandoned("chk-old", 1, "2026-11-02T15:00:00Z"))
    view.apply(abandoned("chk-new", 1, "2026-11-02T17:00:00Z"))
    view.apply({"type": "store_redacted", "store": "demo", "event_id": "s",
                "occurred_at": "2026-11-02T16:00:00Z"})  # fmt: skip
    assert view.check(touch(cart="chk-old", due_at="2026-11-03T10:00:00Z"), "email") is not None
    assert view.check(touch(cart="chk-new", due_at="2026-11-03T10:00:00Z"), "email") is None
    assert view.check(touch(store="other", cart="chk-old"), "email") is None


def test_stop_on_all_stops_sms_and_email_until_start_reopens_sms():
    view = SuppressionView()
    assert view.apply(consent("all", False, "2026-11-02T15:00:00Z", phone="+1 212 555 0100"))
    sms = view.check(touch(channel="sms"), "sms")
    assert sms is not None and sms.outcome is Outcome.SUPPRESSED and "sms_stop" in sms.reason
    assert view.check(touch(), "email") is not None
    other = touch(contact={"email": "x@example.com", "phone": "+14155550100", "sms_consent": True})
    assert view.check(other, "email") is None
    view.apply(consent("sms", True, "2026-11-02T15:30:00Z", phone="+12125550100"))
    assert view.check(touch(channel="sms"), "sms") is None
    assert view.check(touch(), "email") is not None  # START re-opens SMS only
    view.apply(consent("all", False, "2026-11-02T14:00:00Z", phone="+12125550100"))  # older
    assert view.check(touch(channel="sms"), "sms") is None


def test_email_unsubscribe_matches_normalized_email():
    view = SuppressionView()
    view.apply(consent("email", False, "2026-11-02T15:00:00Z", email=" FAY@example.COM"))
    assert view.check(touch(), "email") is not None
    assert view.check(touch(channel="sms"), "sms") is None
    assert view.check(touch(store="other"), "email") is None


def test_redaction_and_conversion():
    view = SuppressionView()
    view.apply({"type": "shopper_redacted", "store": "demo", "event_id": "r",
                "occurred_at": "2026-11-02T17:00:00Z", "customer_id": "c-1"})  # fmt: skip
    redacted = touch(contact={"customer_id": "c-1", "email": "a@b.co"})
    assert view.check(redacted, "email") is not None
    view.apply(abandoned("chk-new", 1, "2026-11-03T09:00:00Z"))
    later = touch(cart="chk-new", contact={"customer_id": "c-1"}, due_at="2026-11-03T10:00:00Z")
    assert view.check(later, "email") is None  # a new cart after the redaction is fine
    view.apply({"type": "cart_converted", "store": "demo", "checkout": "chk-high-1",
                "occurred_at": "2026-11-02T16:30:00Z"})  # fmt: skip
    verdict = view.check(touch(contact={"email": "z@z.co"}), "email")
    assert verdict is not None and "converted" in verdict.reason
    removal = touch(channel="ads", template="audience_remove", contact={"email": "z@z.co"})
    assert view.check(removal, "ads") is None
    view.apply({"type": "store_redacted", "store": "demo", "event_id": "s",
                "occurred_at": "2026-11-02T18:00:00Z"})  # fmt: skip
    assert view.check(removal, "ads") is not None


def test_irrelevant_or_broken_records_are_ignored():
    view = SuppressionView()
    for record in (None, [], {"type": "tick", "now": 5}, {"type": "consent_changed"},
                   consent("all", "no", "2026-11-02T15:00:00Z", phone="+1"),  # type: ignore[arg-type]
                   {"type": "cart_abandoned", "store": "demo", "occurred_at": "bad"}):  # fmt: skip
        assert not view.apply(record)
    assert view.check(touch(), "email") is None


@pytest.mark.broker
async def test_sender_suppresses_after_stop_reply(broker, tmp_path):
    from test_sender_service import start_service

    names = TopicNames("supp-")
    await ensure_topics(broker.bootstrap, [names.shopper_events], 2)
    events = [
        consent("all", False, "2026-11-02T15:00:00Z", phone="+12125550100"),
        {"type": "cart_converted", "store": "demo", "checkout": "chk-paid", "shopper": "demo:o",
         "occurred_at": "2026-11-02T15:10:00Z"},
    ]  # fmt: skip
    await produce(broker.bootstrap, names.shopper_events, [("demo:x", e) for e in events])
    _service, stop, task = await start_service(broker, tmp_path, names)
    other = {"email": "ben@example.com", "phone": "+14155550100", "sms_consent": True}
    touches = {
        "sms": [touch_data(touch_id="t_s1", channel="sms", template="reminder_sms")],
        "email": [
            touch_data(touch_id="t_e1"),
            touch_data(touch_id="t_e2", cart="chk-paid", contact=other),
            touch_data(touch_id="t_e3", contact=other),
        ],
    }
    try:
        for channel, values in touches.items():
            await produce(broker.bootstrap, names.touches(channel),
                          [(v["shopper"], v) for v in values])  # fmt: skip
        wanted = having("touch_id", ["t_s1", "t_e1", "t_e2", "t_e3"])
        results = await read_until(broker.bootstrap, [names.touch_results], wanted, timeout=60)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    outcomes: dict[str, tuple[str, str]] = {}
    for r in results:  # the first answer per touch; a re-read would only add repeats
        outcomes.setdefault(r.value["touch_id"], (r.value["outcome"], r.value["reason"] or ""))
    assert outcomes["t_s1"][0] == "suppressed" and "consent withdrawn" in outcomes["t_s1"][1]
    assert outcomes["t_e1"][0] == "suppressed"
    assert outcomes["t_e2"][0] == "suppressed" and "converted" in outcomes["t_e2"][1]
    assert outcomes["t_e3"][0] == "delivered"


@pytest.mark.broker
async def test_stop_reply_through_the_gateway_stops_sms_and_email(broker, tmp_path):
    """The whole path: Twilio posts the shopper's STOP to the gateway's inbound webhook, the
    gateway produces the consent change, the running sender learns of it from shopper-events
    and sends that shopper no further SMS and no email; another shopper is unaffected."""
    from test_sender_service import start_service

    from gateway.signatures import twilio_signature
    from tests.gateway.helpers import STORE_NUMBER, TWILIO_TOKEN, post, running_gateway
    from tests.gateway.helpers import write_policy as gateway_policy

    names = TopicNames(f"stop-{uuid.uuid4().hex[:8]}-")
    await ensure_topics(broker.bootstrap, [names.shopper_events], 2)
    service, stop, task = await start_service(broker, tmp_path, names)
    shopper = touch_data(store="acme")["contact"]
    try:
        async with running_gateway(
            broker.bootstrap, gateway_policy(tmp_path / "gateway.yaml"), names=names
        ) as gw:
            url = gw.url + "/webhooks/twilio/inbound"
            form = {"MessageSid": "SMstop1", "AccountSid": "AC1", "From": shopper["sms_phone"],
                    "To": STORE_NUMBER, "Body": "Stop"}  # fmt: skip
            signature = twilio_signature(url, form.items(), TWILIO_TOKEN.encode())
            status, _ = await post(
                url,
                urlencode(form).encode(),
                {"Content-Type": "application/x-www-form-urlencoded",
                 "X-Twilio-Signature": signature},
            )  # fmt: skip
        assert status == 200
        probe = touch(store="acme", channel="sms", template="reminder_sms")
        deadline = time.monotonic() + 60
        while service.view.check(probe, "sms") is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)  # the sender follows shopper-events as it runs
        other = {"email": "ben@example.com", "phone": "+14155550100", "sms_consent": True}
        touches = {
            "sms": [touch_data(touch_id="t_s1", store="acme", channel="sms",
                               template="reminder_sms")],
            "email": [touch_data(touch_id="t_e1", store="acme"),
                      touch_data(touch_id="t_e2", store="acme", contact=other)],
        }  # fmt: skip
        for channel, values in touches.items():
            await produce(broker.bootstrap, names.touches(channel),
                          [(v["shopper"], v) for v in values])  # fmt: skip
        wanted = having("touch_id", ["t_s1", "t_e1", "t_e2"])
        results = await read_until(broker.bootstrap, [names.touch_results], wanted, timeout=60)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    outcomes: dict[str, tuple[str, str]] = {}
    for r in results:
        outcomes.setdefault(r.value["touch_id"], (r.value["outcome"], r.value["reason"] or ""))
    assert outcomes["t_s1"][0] == "suppressed" and "sms_stop" in outcomes["t_s1"][1]
    assert (
        outcomes["t_e1"][0] == "suppressed" and "consent withdrawn for all" in outcomes["t_e1"][1]
    )
    assert outcomes["t_e2"][0] == "delivered"
    outbox = tmp_path / "outbox"
    assert not (outbox / "sms.ndjson").exists()
    sent = [orjson.loads(line) for line in (outbox / "email.ndjson").read_bytes().splitlines()]
    assert [line["touch_id"] for line in sent] == ["t_e2"]


@pytest.mark.broker
async def test_sender_blocks_a_redacted_shoppers_touch_from_before_the_redaction(broker, tmp_path):
    """Both touches are due after the redaction; only the one from a cart the shopper used
    after it goes. Its abandonment reaches shopper-events just before the touch reaches the
    sender: the sender reads shopper-events that far before it decides."""
    from test_sender_service import start_service

    names = TopicNames(f"redact-{uuid.uuid4().hex[:8]}-")
    await ensure_topics(broker.bootstrap, [names.shopper_events], 2)
    before = [
        abandoned("chk-old", 1, "2026-11-02T14:00:00Z", "2026-11-02T15:30:00Z"),
        redaction("2026-11-02T15:00:00Z", email="fay@example.com"),
    ]
    await produce(broker.bootstrap, names.shopper_events, [("demo:5f2a9c", e) for e in before])
    _service, stop, task = await start_service(broker, tmp_path, names)
    try:
        old = touch_data(touch_id="t_old", cart="chk-old")
        await produce(broker.bootstrap, names.touches("email"), [("demo:5f2a9c", old)])
        await read_until(broker.bootstrap, [names.touch_results], having("touch_id", ["t_old"]))
        fresh = abandoned("chk-new", 1, "2026-11-02T15:10:00Z", "2026-11-02T15:40:00Z")
        await produce(broker.bootstrap, names.shopper_events, [("demo:5f2a9c", fresh)])
        new = touch_data(touch_id="t_new", cart="chk-new")
        await produce(broker.bootstrap, names.touches("email"), [("demo:5f2a9c", new)])
        wanted = having("touch_id", ["t_old", "t_new"])
        results = await read_until(broker.bootstrap, [names.touch_results], wanted, timeout=60)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    outcomes: dict[str, tuple[str, str]] = {}
    for r in results:
        outcomes.setdefault(r.value["touch_id"], (r.value["outcome"], r.value["reason"] or ""))
    assert outcomes["t_old"][0] == "suppressed" and "redacted" in outcomes["t_old"][1]
    assert outcomes["t_new"] == ("delivered", "")
    sent = [
        orjson.loads(line)
        for line in (tmp_path / "outbox" / "email.ndjson").read_bytes().splitlines()
    ]
    assert [line["touch_id"] for line in sent] == ["t_new"]


@pytest.mark.broker
async def test_follower_sync_returns_once_what_was_written_is_read(broker):
    from senders.follow import ShopperEventsFollower

    names = TopicNames(f"sync-{uuid.uuid4().hex[:8]}-")
    await ensure_topics(broker.bootstrap, [names.shopper_events], 2)
    view = SuppressionView()
    follower = ShopperEventsFollower(broker.bootstrap, names.shopper_events, view)
    await follower.start(timeout=10)
    try:
        for n in range(5):
            record = abandoned(f"chk-{n}", 1, "2026-11-02T15:10:00Z")
            await produce(broker.bootstrap, names.shopper_events, [(f"demo:{n}", record)])
            assert await follower.sync(10)
            assert ("demo", f"chk-{n}", 1) in view.activity
    finally:
        await follower.stop()


@pytest.mark.broker
async def test_follower_reads_the_records_of_a_batch_message(broker):
    """Stage A sends stage B its records of a partition as ``{"batch": [...]}`` messages: the
    follower takes in each record of one, or a redacted shopper's new cart counts as unknown
    and its touches are suppressed (invariant 6: activity after the redaction starts anew)."""
    from senders.follow import ShopperEventsFollower

    names = TopicNames(f"batch-{uuid.uuid4().hex[:8]}-")
    await ensure_topics(broker.bootstrap, [names.shopper_events], 2)
    view = SuppressionView()
    follower = ShopperEventsFollower(broker.bootstrap, names.shopper_events, view)
    await follower.start(timeout=10)
    try:
        batch = {"batch": [
            {"type": "tick", "now": 1793635200.0, "src": 0, "of": 2},
            redaction("2026-11-02T15:00:00Z", email="fay@example.com"),
            abandoned("chk-new", 1, "2026-11-02T15:10:00Z", "2026-11-02T15:40:00Z"),
        ]}  # fmt: skip
        await produce(broker.bootstrap, names.shopper_events, [("demo:5f2a9c", batch)])
        assert await follower.sync(10)
    finally:
        await follower.stop()
    assert ("demo", "chk-new", 1) in view.activity
    assert follower.applied == 2
    new = touch(cart="chk-new", due_at="2026-11-02T19:00:00Z")
    assert view.awaits_activity(new, "email") is False
    assert view.check(new, "email") is None
    assert view.check(touch(cart="chk-old"), "email") is not None  # the redaction was read


def test_a_carts_activity_is_kept_for_the_horizon_after_its_abandonment():
    view = SuppressionView()
    view.apply(abandoned("chk-a", 1, "2026-11-02T15:00:00Z", "2026-11-02T15:05:00Z"))
    view.apply(abandoned("chk-b", 1, "2026-11-02T15:00:00Z", "2026-11-02T15:05:00Z"))
    view.apply(abandoned("chk-b", 1, "2026-11-20T10:00:00Z", "2026-11-20T10:05:00Z"))  # again
    view.apply(abandoned("chk-c", 1, "2026-12-02T16:00:00Z", "2026-12-02T16:00:00Z"))  # +30 d
    assert set(view.activity) == {("demo", "chk-b", 1), ("demo", "chk-c", 1)}
    view.apply(redaction("2026-11-10T00:00:00Z", email="fay@example.com"))
    assert view.awaits_activity(touch(cart="chk-a"), "email")  # forgotten: unknown, blocked
    assert view.check(touch(cart="chk-b"), "email") is None  # active after the redaction


def test_stage_a_s_first_abandonment_is_read_as_it_travels():
    """The cart's first cycle is the struct's default: it is on the wire all the same, so the
    view knows the cart's last activity for its first plan's touches."""
    event = cart("chk-w", "310", T0, store="demo", customer="fay")
    state, _ = stage_a.apply_event(None, event, 0, load_policy().for_store("demo"))
    _, (effect,) = stage_a.apply_tick(state, "demo:chk-w", T0 + 3600)
    view = SuppressionView()
    assert view.apply(wire(effect.record))
    assert view.activity[("demo", "chk-w", 1)] == (T0, T0 + 3600)
