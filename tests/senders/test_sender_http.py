"""Each HTTP adapter against a local server that checks the provider's documented format."""

from __future__ import annotations

import base64
import hashlib
import uuid
from urllib.parse import parse_qs

import orjson
import pytest

from recovery.delivery_policy import (
    BrevoAdapter as BrevoConfig,
)
from recovery.delivery_policy import (
    GorgiasAdapter as GorgiasConfig,
)
from recovery.delivery_policy import (
    MetaAudienceAdapter as MetaConfig,
)
from recovery.delivery_policy import (
    RetryPolicy,
    SenderIdentity,
)
from recovery.delivery_policy import (
    SlackAdapter as SlackConfig,
)
from recovery.delivery_policy import (
    TwilioAdapter as TwilioConfig,
)
from senders.adapters.base import ConfigError
from senders.adapters.http import (
    BrevoAdapter,
    GorgiasAdapter,
    MetaAudienceAdapter,
    SlackAdapter,
    TwilioAdapter,
    brevo_idempotency_key,
)
from senders.compose import compose
from senders.delivery import deliver_with_retries
from senders.outcomes import Outcome
from senders.templates import TemplateSource

IDENTITY = SenderIdentity(
    from_email="shop@acme.test",
    from_name="Acme",
    postal_address="1 Main Street, Springfield, IL 62701",
    unsubscribe_url="https://acme.test/u",
)
KEY = {"BREVO_API_KEY": "k"}
RETRY = RetryPolicy(max_attempts=4, base_delay="10ms", max_delay="5s")


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


async def send(adapter, touch, channel, sleeps=None):
    message = compose(touch, channel, IDENTITY, TemplateSource())
    try:
        return await deliver_with_retries(
            adapter, message, touch, RETRY, channel, sleep=sleeps or Sleeps(), draw=lambda: 0.5
        )
    finally:
        await adapter.close()


async def test_brevo_request_format(provider, make_touch):
    provider.default = (201, {"messageId": "<abc@smtp-relay.brevo.com>"}, {})
    adapter = BrevoAdapter(BrevoConfig(adapter="brevo", base_url=provider.url),
                           {"BREVO_API_KEY": "xkeysib-123"})  # fmt: skip
    result = await send(adapter, make_touch(), "email")
    assert result.outcome is Outcome.DELIVERED
    assert result.provider_id == "<abc@smtp-relay.brevo.com>"
    (request,) = provider.requests
    assert (request["method"], request["path"]) == ("POST", "/v3/smtp/email")
    assert request["headers"]["api-key"] == "xkeysib-123"
    assert request["headers"]["Content-Type"].startswith("application/json")
    body = orjson.loads(request["body"])
    assert body["sender"] == {"name": "Acme", "email": "shop@acme.test"}
    assert body["to"] == [{"email": "Fay@Example.com", "name": "Fay"}]
    assert body["subject"] == "Fay, you left something in your cart"
    assert "1 Main Street" in body["htmlContent"] and "1 Main Street" in body["textContent"]
    key = body["headers"]["idempotencyKey"]
    assert uuid.UUID(key).version == 5  # Brevo asks for a UUID
    assert key == brevo_idempotency_key(make_touch().touch_id)
    assert key != brevo_idempotency_key(make_touch(touch_id="t_other").touch_id)
    assert body["headers"]["List-Unsubscribe"].startswith("<https://acme.test/u?")
    assert body["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


async def test_twilio_request_format_and_retries(provider, make_touch):
    provider.script = [
        (429, {"code": 20429, "message": "Too Many Requests"}, {"Retry-After": "2"}),
        (503, {"code": 20503, "message": "Service Unavailable"}, {}),
    ]
    provider.default = (201, {"sid": "SM123", "status": "queued"}, {})
    config = TwilioConfig(adapter="twilio", from_number="+15005550006", base_url=provider.url)
    env = {"TWILIO_ACCOUNT_SID": "AC42", "TWILIO_AUTH_TOKEN": "tok"}
    sleeps = Sleeps()
    touch = make_touch(channel="sms", template="reminder_sms")
    result = await send(TwilioAdapter(config, env), touch, "sms", sleeps)
    assert result.outcome is Outcome.DELIVERED and result.provider_id == "SM123"
    assert result.attempts == 3
    assert sleeps.delays == [2.0, pytest.approx(0.01)]  # Retry-After, then backoff (jittered)
    for request in provider.requests:
        assert (request["method"], request["path"]) == (
            "POST",
            "/2010-04-01/Accounts/AC42/Messages.json",
        )
        assert request["headers"]["Authorization"] == basic("AC42", "tok")
        assert request["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
        form = parse_qs(request["body"].decode())
        assert form["To"] == ["+12125550100"] and form["From"] == ["+15005550006"]
        assert form["Body"][0].endswith("Reply STOP to opt out")


async def test_twilio_messaging_service_400_and_opt_out(provider, make_touch):
    config = TwilioConfig(adapter="twilio", messaging_service_sid="MG9", base_url=provider.url)
    env = {"TWILIO_ACCOUNT_SID": "AC42", "TWILIO_AUTH_TOKEN": "tok"}
    touch = make_touch(channel="sms", template="reminder_sms")
    provider.default = (400, {"code": 21211, "message": "Invalid 'To' Phone Number"}, {})
    result = await send(TwilioAdapter(config, env), touch, "sms")
    assert result.outcome is Outcome.DEAD_LETTERED and result.attempts == 1
    assert "21211" in (result.reason or "")
    form = parse_qs(provider.requests[0]["body"].decode())
    assert form["MessagingServiceSid"] == ["MG9"] and "From" not in form
    provider.default = (400, {"code": 21610, "message": "Attempt to send to unsubscribed"}, {})
    result = await send(TwilioAdapter(config, env), touch, "sms")
    assert result.outcome is Outcome.SUPPRESSED


async def test_meta_add_and_remove(provider, make_touch):
    provider.default = (200, {"audience_id": "6001", "session_id": "77", "num_received": 1,
                              "num_invalid_entries": 0}, {})  # fmt: skip
    config = MetaConfig(adapter="meta_audience", audience_id="6001", base_url=provider.url)
    env = {"META_ACCESS_TOKEN": "EAAB"}
    add = await send(MetaAudienceAdapter(config, env), make_touch(channel="ads"), "ads")
    assert add.outcome is Outcome.DELIVERED and add.provider_id == "77"
    remove_touch = make_touch(channel="ads", template="audience_remove")
    remove = await send(MetaAudienceAdapter(config, env), remove_touch, "ads")
    assert remove.outcome is Outcome.DELIVERED
    methods = [(r["method"], r["path"]) for r in provider.requests]
    assert methods == [("POST", "/v25.0/6001/users"), ("DELETE", "/v25.0/6001/users")]
    for request in provider.requests:
        form = parse_qs(request["body"].decode())
        assert form["access_token"] == ["EAAB"]
        payload = orjson.loads(form["payload"][0])
        assert payload == {
            "schema": ["EMAIL", "PHONE"],
            "data": [[hashlib.sha256(b"fay@example.com").hexdigest(),
                      hashlib.sha256(b"12125550100").hexdigest()]],
        }  # fmt: skip
        assert b"fay" not in request["body"].lower()


async def test_meta_throttling_is_transient(provider, make_touch):
    provider.script = [(400, {"error": {"code": 17, "message": "User request limit reached"}}, {})]
    provider.default = (200, {"audience_id": "6001", "num_invalid_entries": 0}, {})
    config = MetaConfig(adapter="meta_audience", audience_id="6001", base_url=provider.url)
    adapter = MetaAudienceAdapter(config, {"META_ACCESS_TOKEN": "EAAB"})
    result = await send(adapter, make_touch(channel="ads"), "ads")
    assert result.outcome is Outcome.DELIVERED and result.attempts == 2


async def test_gorgias_ticket(provider, make_touch):
    provider.default = (201, {"id": 4242}, {})
    config = GorgiasConfig(adapter="gorgias", domain="acme", base_url=provider.url)
    env = {"GORGIAS_USERNAME": "ops@acme.test", "GORGIAS_API_KEY": "k1"}
    adapter = GorgiasAdapter(config, "shop@acme.test", env)
    touch = make_touch(channel="human", template="human_follow_up")
    result = await send(adapter, touch, "human")
    assert result.outcome is Outcome.DELIVERED and result.provider_id == "4242"
    (request,) = provider.requests
    assert (request["method"], request["path"]) == ("POST", "/api/tickets")
    assert request["headers"]["Authorization"] == basic("ops@acme.test", "k1")
    body = orjson.loads(request["body"])
    assert (body["channel"], body["via"], body["from_agent"]) == ("api", "api", False)
    assert body["external_id"] == touch.touch_id
    assert body["customer"]["email"] == "Fay@Example.com"
    (message,) = body["messages"]
    assert (message["channel"], message["via"], message["from_agent"]) == ("api", "api", False)
    assert message["sender"] == {"email": "Fay@Example.com"}
    assert "310.00 USD" in message["body_text"] and "/recover" in message["body_text"]
    assert GorgiasConfig(adapter="gorgias", domain="acme").url == "https://acme.gorgias.com"


async def test_slack_webhook(provider, make_touch):
    provider.default = (200, "ok", {})
    adapter = SlackAdapter(SlackConfig(adapter="slack"),
                           {"SLACK_WEBHOOK_URL": provider.url + "/services/T0/B0/x"})  # fmt: skip
    touch = make_touch(channel="human", template="human_concierge", band="vip")
    result = await send(adapter, touch, "human")
    assert result.outcome is Outcome.DELIVERED
    (request,) = provider.requests
    assert (request["method"], request["path"]) == ("POST", "/services/T0/B0/x")
    body = orjson.loads(request["body"])
    assert body["text"].startswith("Concierge follow-up: 310.00 USD (vip band)")
    fields = {
        f["text"].split("\n")[0]: f["text"].split("\n")[1] for f in body["blocks"][2]["fields"]
    }
    assert fields["*Cart value*"] == "310.00 USD" and fields["*Band*"] == "vip"
    assert "/recover" in fields["*Recovery link*"]


async def test_retries_exhausted_fail_and_404_dead_letters(provider, make_touch):
    provider.default = (503, {"message": "down"}, {})
    adapter = BrevoAdapter(
        BrevoConfig(adapter="brevo", base_url=provider.url), {"BREVO_API_KEY": "k"}
    )
    sleeps = Sleeps()
    result = await send(adapter, make_touch(), "email", sleeps)
    assert result.outcome is Outcome.FAILED and result.attempts == RETRY.max_attempts
    assert len(sleeps.delays) == RETRY.max_attempts - 1
    assert sleeps.delays == sorted(sleeps.delays)  # backoff grows
    provider.requests.clear()
    provider.default = (400, {"code": "invalid_parameter", "message": "email is not valid"}, {})
    adapter = BrevoAdapter(
        BrevoConfig(adapter="brevo", base_url=provider.url), {"BREVO_API_KEY": "k"}
    )
    result = await send(adapter, make_touch(), "email")
    assert result.outcome is Outcome.DEAD_LETTERED and len(provider.requests) == 1
    assert "email is not valid" in (result.reason or "")


async def test_network_failure_is_transient(make_touch):
    config = BrevoConfig(adapter="brevo", base_url="http://127.0.0.1:9", timeout="2s")
    result = await send(BrevoAdapter(config, {"BREVO_API_KEY": "k"}), make_touch(), "email")
    assert result.outcome is Outcome.FAILED and "ClientConnectorError" in (result.reason or "")


def test_missing_credentials_fail_at_build():
    with pytest.raises(ConfigError, match="TWILIO_AUTH_TOKEN"):
        TwilioAdapter(
            TwilioConfig(adapter="twilio", from_number="+1"), {"TWILIO_ACCOUNT_SID": "AC"}
        )
