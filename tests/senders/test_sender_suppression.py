"""Last-moment suppression from shopper-events: opt-outs, redactions, conversions."""

from __future__ import annotations

import asyncio
import time
import uuid
from urllib.parse import urlencode

import orjson
import pytest
from sender_helpers import having, read_until, touch_data

from cartbands.kafka import ensure_topics, produce
from schemas.records import TouchCommand
from senders.outcomes import Outcome
from senders.suppression import SuppressionView
from streams.topics import TopicNames


def consent(channel: str, granted: bool, at: str, **who: str) -> dict:
    return {"type": "consent_changed", "store": "demo", "event_id": f"e-{at}", "occurred_at": at,
            "channel": channel, "granted": granted, "source": "sms_stop", **who}  # fmt: skip


def touch(**overrides) -> TouchCommand:
    return TouchCommand.from_data(touch_data(**overrides))


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
    later = touch(contact={"customer_id": "c-1"}, due_at="2026-11-03T10:00:00Z")
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
