"""How a store's touches are delivered: adapters per channel, sender identity, limits, retries.

Part of a store's policy (``StorePolicy.delivery``). Credentials are never in the file: each
adapter names the *environment variables* that hold them (``api_key_env: BREVO_API_KEY``), and
the sender process reads those variables when it builds the adapter. Pure data and validation,
like the rest of :mod:`recovery`.

```yaml
delivery:
  sender: {from_email: shop@acme.test, from_name: Acme, postal_address: "1 Main St, ...",
           unsubscribe_url: "https://acme.test/unsubscribe"}
  email: {adapter: smtp, host: smtp.acme.test, port: 587, security: starttls,
          username_env: SMTP_USER, password_env: SMTP_PASSWORD}
  sms: {adapter: twilio, from_number: "+15005550006"}
  rate_limits: {twilio: {rate: 1, burst: 5}}
  retry: {max_attempts: 5, base_delay: 1s, max_delay: 1m}
  max_lateness: 6h
  costs: {email: "0.001", sms: "0.0083", human: "3.00"}   # per delivered touch, store currency
```
"""

from __future__ import annotations

import re
import string
from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from recovery.codes_policy import CodesConfig, NoCodes
from recovery.durations import parse_duration

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _env_name(value: str | None) -> str | None:
    if value is not None and not _ENV_NAME.match(value):
        raise ValueError(
            f"{value!r} is not an environment variable name; put the secret in the "
            "environment and name the variable here"
        )
    return value


EnvName = Annotated[str, BeforeValidator(_env_name)]


def not_negative(value: Decimal) -> Decimal:
    """A cost below zero would be income: refuse it (zero is fine)."""
    if value < 0:
        raise ValueError(f"must not be negative, not {value}")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OutboxAdapter(_Strict):
    """Append each rendered message to ``OUTBOX_DIR/<channel>.ndjson`` (no account needed)."""

    adapter: Literal["outbox"] = "outbox"


class SmtpAdapter(_Strict):
    """Any SMTP relay; ``starttls`` upgrades a plain connection, ``ssl`` is implicit TLS."""

    adapter: Literal["smtp"]
    host: str
    port: int = 587
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username_env: EnvName | None = None
    password_env: EnvName | None = None
    ca_file: str | None = None
    """Trust this CA bundle instead of the system's (a private relay's certificate)."""
    timeout: Duration = timedelta(seconds=30)

    @model_validator(mode="after")
    def _both_or_neither(self) -> SmtpAdapter:
        if (self.username_env is None) != (self.password_env is None):
            raise ValueError("give both username_env and password_env, or neither")
        return self


class BrevoAdapter(_Strict):
    """Brevo transactional email API (``POST {base_url}/v3/smtp/email``, ``api-key`` header)."""

    adapter: Literal["brevo"]
    api_key_env: EnvName = "BREVO_API_KEY"
    base_url: str = "https://api.brevo.com"
    timeout: Duration = timedelta(seconds=30)


class TwilioAdapter(_Strict):
    """Twilio Messages API; send from a number or through a Messaging Service."""

    adapter: Literal["twilio"]
    account_sid_env: EnvName = "TWILIO_ACCOUNT_SID"
    auth_token_env: EnvName = "TWILIO_AUTH_TOKEN"
    from_number: str | None = None
    messaging_service_sid: str | None = None
    base_url: str = "https://api.twilio.com"
    timeout: Duration = timedelta(seconds=30)

    @model_validator(mode="after")
    def _one_sender(self) -> TwilioAdapter:
        if (self.from_number is None) == (self.messaging_service_sid is None):
            raise ValueError("give exactly one of from_number and messaging_service_sid")
        return self


class MetaAudienceAdapter(_Strict):
    """Meta custom audience: add hashed identifiers (POST), remove them (DELETE)."""

    adapter: Literal["meta_audience"]
    audience_id: str
    access_token_env: EnvName = "META_ACCESS_TOKEN"
    api_version: str = "v25.0"
    base_url: str = "https://graph.facebook.com"
    timeout: Duration = timedelta(seconds=30)


class GorgiasAdapter(_Strict):
    """Gorgias help desk: one ticket per human touch (basic auth: account email + API key)."""

    adapter: Literal["gorgias"]
    domain: str
    username_env: EnvName = "GORGIAS_USERNAME"
    api_key_env: EnvName = "GORGIAS_API_KEY"
    base_url: str | None = None
    tags: list[str] = Field(default_factory=lambda: ["cart-recovery"])
    timeout: Duration = timedelta(seconds=30)

    @property
    def url(self) -> str:
        return self.base_url or f"https://{self.domain}.gorgias.com"


class SlackAdapter(_Strict):
    """A Slack incoming webhook; its URL is a secret, so it comes from the environment."""

    adapter: Literal["slack"]
    webhook_url_env: EnvName = "SLACK_WEBHOOK_URL"
    timeout: Duration = timedelta(seconds=30)


# What a flow event's name may mention: ``"cartbands {band} step {step}"``.
FLOW_EVENT_FIELDS = ("channel", "band", "segment", "step", "template")
_REVISION = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[A-Za-z0-9]+)?$")
_BREVO_EVENT_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def _flow_event_name(value: str) -> str:
    """A metric/event name template: placeholders from :data:`FLOW_EVENT_FIELDS` only."""
    if not value.strip():
        raise ValueError("the event name must not be empty")
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(value) if field is not None]
    except ValueError as exc:
        raise ValueError(f"bad placeholder in {value!r}: {exc}") from None
    unknown = sorted(set(fields) - set(FLOW_EVENT_FIELDS))
    if unknown or "" in fields:
        raise ValueError(
            f"unknown placeholder(s) {unknown or ['{}']} in {value!r}; known: "
            + ", ".join(f"{{{name}}}" for name in FLOW_EVENT_FIELDS)
        )
    return value


FlowEventName = Annotated[str, BeforeValidator(_flow_event_name)]


class KlaviyoEventsAdapter(_Strict):
    """Klaviyo Events API (``POST {base_url}/api/events``): each touch becomes an event of
    ``metric`` on the merchant's account, and the merchant's flow triggered by that metric sends
    the message. Consented shoppers are subscribed to the channel's marketing first."""

    adapter: Literal["klaviyo_events"]
    api_key_env: EnvName = "KLAVIYO_PRIVATE_API_KEY"
    metric: FlowEventName = Field(default="cartbands touch", max_length=127)
    revision: str = "2026-10-15"
    subscribe: bool = True
    """Subscribe a shopper whose consent we recorded (never one without)."""
    list_id: str | None = None
    """The list subscriptions add the shopper to (its double opt-in setting applies)."""
    base_url: str = "https://a.klaviyo.com"
    timeout: Duration = timedelta(seconds=30)

    @field_validator("revision")
    @classmethod
    def _dated(cls, value: str) -> str:
        if not _REVISION.match(value):
            raise ValueError(f"{value!r} is not a Klaviyo API revision (YYYY-MM-DD)")
        return value


class BrevoEventsAdapter(_Strict):
    """Brevo Events API (``POST {base_url}/v3/events``): each touch becomes an event named
    ``event_name``, which starts the merchant's Brevo automation."""

    adapter: Literal["brevo_events"]
    api_key_env: EnvName = "BREVO_API_KEY"
    event_name: FlowEventName = Field(default="cartbands_touch", max_length=255)
    base_url: str = "https://api.brevo.com"
    timeout: Duration = timedelta(seconds=30)

    @field_validator("event_name")
    @classmethod
    def _brevo_characters(cls, value: str) -> str:
        literal = "".join(text for text, _, _, _ in string.Formatter().parse(value))
        if literal and not _BREVO_EVENT_NAME.match(literal):
            raise ValueError(f"{value!r}: Brevo event names allow letters, digits, - and _ only")
        return value


# Adapters that hand the touch to the merchant's own flow instead of sending a message.
FLOW_EVENT_ADAPTERS = (KlaviyoEventsAdapter, BrevoEventsAdapter)


EmailAdapter = Annotated[
    OutboxAdapter | SmtpAdapter | BrevoAdapter | KlaviyoEventsAdapter | BrevoEventsAdapter,
    Field(discriminator="adapter"),
]
SmsAdapter = Annotated[
    OutboxAdapter | TwilioAdapter | KlaviyoEventsAdapter | BrevoEventsAdapter,
    Field(discriminator="adapter"),
]
AdsAdapter = Annotated[OutboxAdapter | MetaAudienceAdapter, Field(discriminator="adapter")]
HumanAdapter = Annotated[
    OutboxAdapter | GorgiasAdapter | SlackAdapter, Field(discriminator="adapter")
]
AnyAdapter = (
    OutboxAdapter
    | SmtpAdapter
    | BrevoAdapter
    | TwilioAdapter
    | MetaAudienceAdapter
    | GorgiasAdapter
    | SlackAdapter
    | KlaviyoEventsAdapter
    | BrevoEventsAdapter
)


class SenderIdentity(_Strict):
    """Who the messages come from; CAN-SPAM wants a postal address and a working opt-out."""

    from_email: str = "no-reply@example.com"
    from_name: str = "cartbands"
    reply_to: str | None = None
    postal_address: str | None = None
    unsubscribe_url: str | None = None
    sms_sender_name: str | None = None


class RateLimit(_Strict):
    """Token bucket: ``rate`` tokens per second, at most ``burst`` saved up."""

    rate: float = Field(gt=0)
    burst: int = Field(default=1, ge=1)


class RetryPolicy(_Strict):
    """Exponential backoff with full jitter: attempt n waits up to base * 2**(n-1), capped."""

    max_attempts: int = Field(default=5, ge=1, le=50)
    base_delay: Duration = timedelta(seconds=1)
    max_delay: Duration = timedelta(minutes=1)

    @model_validator(mode="after")
    def _ordered(self) -> RetryPolicy:
        if self.max_delay < self.base_delay:
            raise ValueError("max_delay must not be below base_delay")
        return self


PROVIDERS = (
    "outbox",
    "smtp",
    "brevo",
    "twilio",
    "meta_audience",
    "gorgias",
    "slack",
    "klaviyo_events",
    "brevo_events",
)


class DeliveryPolicy(_Strict):
    """Delivery settings of one store (defaults: every channel to the local outbox)."""

    email: EmailAdapter = OutboxAdapter()
    sms: SmsAdapter = OutboxAdapter()
    ads: AdsAdapter = OutboxAdapter()
    human: HumanAdapter = OutboxAdapter()
    # validated even when left out, after the adapters: the CAN-SPAM check below needs both
    sender: SenderIdentity = Field(default=SenderIdentity(), validate_default=True)
    templates_dir: str | None = None
    rate_limits: dict[str, RateLimit] = Field(default_factory=dict)
    retry: RetryPolicy = RetryPolicy()
    max_lateness: Duration = timedelta(hours=6)
    # What one delivered touch costs the store, per channel, in the store's currency (provider
    # fees, a person's time for a human follow-up): the spend side of recovered margin per
    # dollar of recovery spend. A channel left out costs nothing.
    costs: dict[str, Annotated[Decimal, AfterValidator(not_negative)]] = Field(default_factory=dict)
    # Where discount codes are created before a touch carrying one goes out (see
    # recovery.codes_policy); none: only printed in the message.
    codes: CodesConfig = NoCodes()

    @field_validator("costs")
    @classmethod
    def _known_channels(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        unknown = sorted(set(value) - {"email", "sms", "ads", "human"})
        if unknown:
            raise ValueError(f"unknown channel(s) {unknown}; known: email, sms, ads, human")
        return value

    @field_validator("rate_limits")
    @classmethod
    def _known_providers(cls, value: dict[str, RateLimit]) -> dict[str, RateLimit]:
        unknown = sorted(set(value) - set(PROVIDERS))
        if unknown:
            raise ValueError(f"unknown provider(s) {unknown}; known: {list(PROVIDERS)}")
        return value

    @field_validator("sender")
    @classmethod
    def _can_spam(cls, value: SenderIdentity, info: ValidationInfo) -> SenderIdentity:
        # a field validator, not a model one: it still runs when another delivery key is wrong;
        # a flow event carries no message: the ESP's own template has the opt-out and address
        email = info.data.get("email")
        if (
            email is not None
            and not isinstance(email, (OutboxAdapter, *FLOW_EVENT_ADAPTERS))
            and (not value.postal_address or not value.unsubscribe_url)
        ):
            raise ValueError(
                "a real email adapter needs sender.postal_address and sender.unsubscribe_url "
                "(CAN-SPAM: every commercial email carries both)"
            )
        return value

    def adapter_for(self, channel: str) -> AnyAdapter:
        adapter: AnyAdapter = getattr(self, channel)
        return adapter
