"""Driving the merchant's own flows: touches as Klaviyo and Brevo events."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import yaml
from fake_flows import FakeBrevoEvents, FakeKlaviyo
from pydantic import ValidationError

from config.policyfile import DEFAULT_POLICY
from recovery.delivery_policy import BrevoEventsAdapter as BrevoEventsConfig
from recovery.delivery_policy import DeliveryPolicy, RetryPolicy, SenderIdentity
from recovery.delivery_policy import KlaviyoEventsAdapter as KlaviyoConfig
from recovery.policyset import PolicyError, parse_policy
from senders.adapters.base import ConfigError
from senders.adapters.brevo_events import BrevoEventsAdapter
from senders.adapters.brevo_events import event_body as brevo_body
from senders.adapters.flow_events import event_name, json_number
from senders.adapters.klaviyo import KlaviyoEventsAdapter, event_body, subscription_body
from senders.compose import compose, compose_event
from senders.delivery import deliver_with_retries
from senders.messages import TouchEvent
from senders.outcomes import Outcome, PermanentError
from senders.templates import TemplateSource

KEY = "pk_test_123"
EXPIRES = datetime(2026, 11, 4, 16, 0, tzinfo=UTC)
INCENTIVE = {"kind": "percent_off", "value": "12", "code": "BACK12-7Q2X", "expires_at":
             "2026-11-04T16:00:00Z"}  # fmt: skip
RETRY = RetryPolicy(max_attempts=4, base_delay="10ms", max_delay="5s")


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
async def klaviyo():
    fake = await FakeKlaviyo(KEY).start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def brevo():
    fake = await FakeBrevoEvents(KEY).start()
    try:
        yield fake
    finally:
        await fake.stop()


def klaviyo_adapter(url: str, **config: Any) -> KlaviyoEventsAdapter:
    settings = KlaviyoConfig(adapter="klaviyo_events", base_url=url, **config)
    return KlaviyoEventsAdapter(settings, {"KLAVIYO_PRIVATE_API_KEY": KEY})


async def send(adapter, touch, channel="email", sleeps=None):
    message = compose(touch, channel, SenderIdentity(), TemplateSource(), event=True)
    try:
        return await deliver_with_retries(
            adapter, message, touch, RETRY, channel, sleep=sleeps or Sleeps(), draw=lambda: 0.5
        )
    finally:
        await adapter.close()


# --- pure: the facts, names and bodies ---------------------------------------------------------


def test_touch_event_carries_the_touch_facts(make_touch):
    touch = make_touch(
        step=3, band="mid", segment="hesitant", template="offer", incentive=INCENTIVE
    )
    event = compose_event(touch, "email")
    assert isinstance(event, TouchEvent)
    assert (event.email, event.phone) == ("fay@example.com", None)
    assert (event.band, event.segment, event.step) == ("mid", "hesitant", 3)
    assert event.template == "offer"
    assert event.cart_total == Decimal("310.00") and event.currency == "USD"
    assert event.discount_code == "BACK12-7Q2X" and event.incentive_value == Decimal("12")
    assert event.incentive_expires_at == EXPIRES
    assert event.incentive_text is not None and "BACK12-7Q2X" in event.incentive_text
    contact = {"phone": "+1 (212) 555-0100", "sms_consent": True}
    sms = compose_event(make_touch(channel="sms", contact=contact), "sms")
    assert (sms.phone, sms.email, sms.marketing_consent) == ("+12125550100", None, True)


@pytest.mark.parametrize(
    ("channel", "overrides", "reason"),
    [
        ("email", {"contact": {"phone": "+12125550100"}}, "no valid email"),
        ("sms", {"contact": {"email": "a@b.c", "sms_consent": True}}, "no phone number"),
        ("sms", {"contact": {"phone": "555-0100", "sms_consent": True}}, "E.164"),
        ("email", {"recovery_url": None}, "no recovery link"),
        ("ads", {}, "cannot carry a ads touch"),
    ],
)
def test_touch_event_refuses_what_a_flow_cannot_use(make_touch, channel, overrides, reason):
    with pytest.raises(PermanentError, match=reason):
        compose_event(make_touch(channel=channel, **overrides), channel)


def test_klaviyo_event_body_is_json_api_with_the_touch_id_as_unique_id(make_touch):
    item = {"title": "Grinder", "quantity": 2, "price": "155.05", "sku": "G-1"}
    summary = {"total": "310.10", "currency": "USD", "items": [item]}
    touch = make_touch(band="mid", step=2, incentive=INCENTIVE, cart_summary=summary)
    body = event_body(compose_event(touch, "email"), "cartbands {band} touch")
    data = body["data"]
    assert data["type"] == "event"
    attributes = data["attributes"]
    assert attributes["unique_id"] == touch.touch_id
    assert attributes["value"] == 310.1 and attributes["value_currency"] == "USD"
    metric = {"type": "metric", "attributes": {"name": "cartbands mid touch"}}
    assert attributes["metric"] == {"data": metric}
    profile = {"type": "profile", "attributes": {"email": "fay@example.com", "first_name": "Fay"}}
    assert attributes["profile"] == {"data": profile}
    props = attributes["properties"]
    facts = ("band", "segment", "step", "channel", "template")
    assert [props[k] for k in facts] == ["mid", "new", 2, "email", "reminder"]
    assert props["incentive_kind"] == "percent_off" and props["incentive_value"] == 12
    assert props["discount_code"] == "BACK12-7Q2X"
    assert props["incentive_expires_at"] == "2026-11-04T16:00:00+00:00"
    assert props["cart_value"] == 310.1 and props["currency"] == "USD"
    assert props["recovery_url"] == touch.recovery_url
    assert props["items"] == [{"title": "Grinder", "quantity": 2, "price": 155.05, "sku": "G-1"}]
    assert props["item_count"] == 2 and props["marketing_consent"] is True
    assert None not in props.values()


def test_no_incentive_reads_none_and_leaves_the_code_out(make_touch):
    body = event_body(compose_event(make_touch(), "email"), "m")
    props = body["data"]["attributes"]["properties"]
    assert props["incentive_kind"] == "none"
    assert "discount_code" not in props and "incentive_value" not in props


def test_subscription_body_only_with_consent(make_touch):
    sms = compose_event(make_touch(channel="sms"), "sms")
    body = subscription_body(sms, "Y6nRLr")["data"]
    assert body["type"] == "profile-subscription-bulk-create-job"
    (profile,) = body["attributes"]["profiles"]["data"]
    subscribed = {"marketing": {"consent": "SUBSCRIBED"}}
    assert profile == {
        "type": "profile",
        "attributes": {"phone_number": "+12125550100", "subscriptions": {"sms": subscribed}},
    }
    assert body["relationships"] == {"list": {"data": {"type": "list", "id": "Y6nRLr"}}}
    email = compose_event(make_touch(), "email")
    (profile,) = subscription_body(email, None)["data"]["attributes"]["profiles"]["data"]
    assert profile["attributes"]["subscriptions"] == {"email": subscribed}
    refused = make_touch(contact={"email": "a@b.c", "email_consent": False})
    no_consent = compose_event(refused, "email")
    with pytest.raises(ValueError, match="must not be subscribed"):
        subscription_body(no_consent, None)


def test_money_goes_out_as_exact_json_numbers():
    assert json_number(Decimal("310.00")) == 310 and isinstance(json_number(Decimal("310.00")), int)
    assert repr(json_number(Decimal("19.99"))) == "19.99"
    assert repr(json_number(Decimal("1234567.89"))) == "1234567.89"
    with pytest.raises(ValueError, match="more digits"):
        json_number(Decimal("0.12345678901234567890"))


def test_brevo_event_body_and_name(make_touch):
    touch = make_touch(band="very high", step=2, incentive=INCENTIVE)
    body = brevo_body(compose_event(touch, "email"), "cartbands_{band}_{step}")
    assert body["event_name"] == "cartbands_very_high_2"  # Brevo allows letters, digits, - _
    assert body["identifiers"] == {"email_id": "fay@example.com"}
    assert body["contact_properties"] == {"FIRSTNAME": "Fay"}
    assert body["event_properties"]["discount_code"] == "BACK12-7Q2X"
    assert body["event_properties"]["touch_id"] == touch.touch_id
    sms = brevo_body(compose_event(make_touch(channel="sms"), "sms"), "cartbands_touch")
    assert sms["identifiers"] == {"phone_id": "+12125550100"}
    event = compose_event(make_touch(), "email")
    assert event_name("cartbands {channel} {segment} {template}", event) == (
        "cartbands email new reminder"
    )


def test_flow_adapters_are_configured_for_email_and_sms_only():
    policy = DeliveryPolicy.model_validate(
        {"email": {"adapter": "klaviyo_events", "metric": "Cart touch {step}", "list_id": "L1"},
         "sms": {"adapter": "brevo_events"},
         "rate_limits": {"klaviyo_events": {"rate": 5}}}
    )  # fmt: skip
    assert isinstance(policy.email, KlaviyoConfig) and policy.email.revision == "2026-10-15"
    assert policy.email.api_key_env == "KLAVIYO_PRIVATE_API_KEY" and policy.email.subscribe
    assert isinstance(policy.sms, BrevoEventsConfig) and policy.sms.event_name == "cartbands_touch"
    # no CAN-SPAM footer to add: the flow's own template carries the opt-out and address
    assert policy.sender.postal_address is None
    bad = [
        {"ads": {"adapter": "klaviyo_events"}},
        {"email": {"adapter": "klaviyo_events", "metric": "touch {total}"}},
        {"email": {"adapter": "klaviyo_events", "revision": "latest"}},
        {"email": {"adapter": "klaviyo_events", "api_key_env": "pk_live abc"}},
        {"email": {"adapter": "brevo_events", "event_name": "cart touch"}},
    ]
    for delivery in bad:
        with pytest.raises(ValidationError):
            DeliveryPolicy.model_validate(delivery)


def test_policy_file_names_the_bad_flow_setting():
    data = yaml.safe_load(DEFAULT_POLICY.read_text())
    data["defaults"]["delivery"] = {"email": {"adapter": "klaviyo_events", "metric": "x {total}"}}
    with pytest.raises(PolicyError, match=r"delivery\.email.*unknown placeholder"):
        parse_policy(data)


def test_missing_klaviyo_key_stops_the_sender_at_start(tmp_path):
    from senders.registry import Routes

    data = yaml.safe_load(DEFAULT_POLICY.read_text())
    data["defaults"]["delivery"] = {"email": {"adapter": "klaviyo_events"},
                                    "sms": {"adapter": "brevo_events"}}  # fmt: skip
    with pytest.raises(ConfigError) as error:
        Routes(parse_policy(data), ("email", "sms"), tmp_path, {})
    message = str(error.value)
    assert "defaults.delivery.email (klaviyo_events)" in message
    assert "KLAVIYO_PRIVATE_API_KEY is not set" in message
    assert "defaults.delivery.sms (brevo_events)" in message and "BREVO_API_KEY" in message


# --- against a local Klaviyo -------------------------------------------------------------------


async def test_consented_shopper_is_subscribed_then_the_event_sent(klaviyo, make_touch):
    touch = make_touch(incentive=INCENTIVE)
    result = await send(klaviyo_adapter(klaviyo.url, list_id="Y6nRLr"), touch)
    assert result.outcome is Outcome.DELIVERED and result.provider_id == touch.touch_id
    paths = [(r["method"], r["path"]) for r in klaviyo.requests]
    assert paths == [
        ("GET", "/api/profiles"),
        ("POST", "/api/profile-subscription-bulk-create-jobs"),
        ("POST", "/api/events"),
    ]
    for request in klaviyo.requests:
        assert request["headers"]["Authorization"] == f"Klaviyo-API-Key {KEY}"
        assert request["headers"]["revision"] == "2026-10-15"
    assert klaviyo.requests[0]["query"]["filter"] == 'equals(email,"fay@example.com")'
    (job,) = klaviyo.jobs
    assert job["data"]["relationships"]["list"]["data"]["id"] == "Y6nRLr"
    (event,) = klaviyo.events
    assert event["data"]["attributes"]["unique_id"] == touch.touch_id
    assert event["data"]["attributes"]["metric"]["data"]["attributes"]["name"] == "cartbands touch"
    assert event["data"]["attributes"]["properties"]["discount_code"] == "BACK12-7Q2X"


async def test_no_consent_means_no_subscription(klaviyo, make_touch):
    touch = make_touch(contact={"email": "ann@example.com", "email_consent": False})
    result = await send(klaviyo_adapter(klaviyo.url), touch)
    assert result.outcome is Outcome.DELIVERED
    assert [(r["method"], r["path"]) for r in klaviyo.requests] == [("POST", "/api/events")]
    assert klaviyo.jobs == [] and "ann@example.com" not in klaviyo.consent
    (event,) = klaviyo.events
    assert event["data"]["attributes"]["properties"]["marketing_consent"] is False


async def test_subscribe_false_never_subscribes(klaviyo, make_touch):
    result = await send(klaviyo_adapter(klaviyo.url, subscribe=False), make_touch())
    assert result.outcome is Outcome.DELIVERED
    assert klaviyo.jobs == [] and len(klaviyo.events) == 1


async def test_subscribed_profile_gets_no_second_job(klaviyo, make_touch):
    klaviyo.consent["fay@example.com"] = {"email": "SUBSCRIBED"}
    result = await send(klaviyo_adapter(klaviyo.url), make_touch())
    assert result.outcome is Outcome.DELIVERED
    assert klaviyo.jobs == [] and len(klaviyo.events) == 1


async def test_unsubscribed_at_klaviyo_is_never_resubscribed(klaviyo, make_touch):
    klaviyo.consent["fay@example.com"] = {"email": "UNSUBSCRIBED"}
    result = await send(klaviyo_adapter(klaviyo.url), make_touch())
    assert result.outcome is Outcome.SUPPRESSED and "unsubscribed" in (result.reason or "")
    assert klaviyo.jobs == [] and klaviyo.events == []
    assert klaviyo.consent["fay@example.com"] == {"email": "UNSUBSCRIBED"}


async def test_sms_touch_subscribes_the_e164_number_to_sms(klaviyo, make_touch):
    touch = make_touch(channel="sms", template="reminder_sms")
    result = await send(klaviyo_adapter(klaviyo.url), touch, "sms")
    assert result.outcome is Outcome.DELIVERED
    assert klaviyo.requests[0]["query"]["filter"] == 'equals(phone_number,"+12125550100")'
    assert klaviyo.consent["+12125550100"] == {"sms": "SUBSCRIBED"}
    (event,) = klaviyo.events
    profile = event["data"]["attributes"]["profile"]["data"]["attributes"]
    assert profile["phone_number"] == "+12125550100" and "email" not in profile


async def test_429_and_5xx_are_retried_and_klaviyo_keeps_one_event(klaviyo, make_touch):
    throttled = {"errors": [{"id": "1", "code": "throttled", "title": "Throttled",
                             "detail": "Request was throttled."}]}  # fmt: skip
    klaviyo.script = [(429, throttled, {"Retry-After": "3"}), (503, {"errors": []}, {})]
    sleeps = Sleeps()
    touch = make_touch()
    result = await send(klaviyo_adapter(klaviyo.url, subscribe=False), touch, sleeps=sleeps)
    assert result.outcome is Outcome.DELIVERED and result.attempts == 3
    assert sleeps.delays == [3.0, pytest.approx(0.01)]  # Retry-After, then backoff
    posted = [r["body"] for r in klaviyo.requests if r["path"] == "/api/events"]
    assert len(posted) == 3
    assert {b["data"]["attributes"]["unique_id"] for b in posted} == {touch.touch_id}
    # a second delivery of the same touch (a replay the de-dup log missed) adds nothing
    await send(klaviyo_adapter(klaviyo.url, subscribe=False), touch)
    assert len(klaviyo.events) == 1


async def test_a_4xx_dead_letters_with_klaviyo_s_detail(klaviyo, make_touch):
    adapter = KlaviyoEventsAdapter(
        KlaviyoConfig(adapter="klaviyo_events", base_url=klaviyo.url, subscribe=False),
        {"KLAVIYO_PRIVATE_API_KEY": "wrong"},
    )
    result = await send(adapter, make_touch())
    assert result.outcome is Outcome.DEAD_LETTERED and result.attempts == 1
    assert result.reason == "HTTP 401: Klaviyo not_authenticated: bad or missing private key"
    detail = "The phone number provided either does not exist or is ineligible to receive SMS"
    error = {"id": "2", "code": "invalid", "title": "Invalid input.", "detail": detail}
    bad = {"errors": [{**error, "source": {"pointer": "/data"}}]}
    klaviyo.script = [(400, bad, {})]
    result = await send(klaviyo_adapter(klaviyo.url, subscribe=False), make_touch())
    assert result.outcome is Outcome.DEAD_LETTERED
    assert (result.reason or "").startswith("HTTP 400: Klaviyo invalid: The phone number")


# --- against a local Brevo ---------------------------------------------------------------------


async def test_brevo_event_request_and_errors(brevo, make_touch):
    config = BrevoEventsConfig(adapter="brevo_events", base_url=brevo.url)
    touch = make_touch(incentive=INCENTIVE)
    result = await send(BrevoEventsAdapter(config, {"BREVO_API_KEY": KEY}), touch)
    assert result.outcome is Outcome.DELIVERED
    (request,) = brevo.requests
    assert (request["method"], request["path"]) == ("POST", "/v3/events")
    assert request["headers"]["api-key"] == KEY
    (event,) = brevo.events
    assert event["event_name"] == "cartbands_touch"
    assert event["identifiers"] == {"email_id": "fay@example.com"}
    assert event["event_properties"]["touch_id"] == touch.touch_id
    assert event["event_properties"]["recovery_url"] == touch.recovery_url

    brevo.script = [(429, {"code": "too_many_requests", "message": "slow down"},
                     {"Retry-After": "1"})]  # fmt: skip
    sleeps = Sleeps()
    result = await send(BrevoEventsAdapter(config, {"BREVO_API_KEY": KEY}), touch, sleeps=sleeps)
    assert result.outcome is Outcome.DELIVERED and sleeps.delays == [1.0]

    brevo.script = [(400, {"code": "invalid_parameter", "message": "identifiers is invalid"}, {})]
    result = await send(BrevoEventsAdapter(config, {"BREVO_API_KEY": KEY}), touch)
    assert result.outcome is Outcome.DEAD_LETTERED
    assert result.reason == "HTTP 400: Brevo invalid_parameter: identifiers is invalid"


# --- the sender service, through the broker ----------------------------------------------------


@pytest.mark.broker
async def test_a_touch_ends_as_one_klaviyo_event_through_the_sender(broker, tmp_path, klaviyo):
    """A touch on ``touches.email`` becomes one event at Klaviyo; the same touch read again is
    answered ``deduplicated`` from the de-dup log and never reaches Klaviyo a second time."""
    from sender_helpers import answered, having, only_repeats, read_until, touch_data
    from test_sender_service import start_service

    from bus.kafka import produce
    from bus.topics import TopicNames

    data = yaml.safe_load(DEFAULT_POLICY.read_text())
    data["defaults"]["delivery"] = {
        "email": {"adapter": "klaviyo_events", "base_url": klaviyo.url, "metric": "cart {band}"}
    }
    prefix = TopicNames("flows1-")
    environ = {"KLAVIYO_PRIVATE_API_KEY": KEY}
    _service, stop, task = await start_service(
        broker, tmp_path, prefix, parse_policy(data), environ=environ
    )
    touch = touch_data(touch_id="t_flow_1", incentive=INCENTIVE)
    try:
        await produce(broker.bootstrap, prefix.touches("email"), [(touch["shopper"], touch)])
        results = await read_until(
            broker.bootstrap, [prefix.touch_results], having("touch_id", ["t_flow_1"]), 60
        )
        first = next(r.value for r in results if r.value["touch_id"] == "t_flow_1")
        assert first["outcome"] == "delivered", first
        assert (first["provider"], first["provider_id"]) == ("klaviyo_events", "t_flow_1")
        await produce(broker.bootstrap, prefix.touches("email"), [(touch["shopper"], touch)])

        def answered_twice(records):
            return len(answered(records).get("t_flow_1", [])) >= 2

        results = await read_until(broker.bootstrap, [prefix.touch_results], answered_twice, 60)
        assert answered(results)["t_flow_1"][:2] == ["delivered", "deduplicated"]
        assert only_repeats(results)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    (event,) = klaviyo.events
    attributes = event["data"]["attributes"]
    assert attributes["unique_id"] == "t_flow_1"
    assert attributes["metric"]["data"]["attributes"]["name"] == "cart high"
    assert attributes["properties"]["discount_code"] == "BACK12-7Q2X"
    assert [r["path"] for r in klaviyo.requests].count("/api/events") == 1
    assert len(klaviyo.jobs) == 1  # consent on record: subscribed once, before the event
