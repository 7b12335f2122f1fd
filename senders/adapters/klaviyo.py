"""Klaviyo: each touch becomes an event that triggers the merchant's own Klaviyo flow.

Requests follow Klaviyo's API reference (revision set by the policy, default 2026-10-15):
every call carries ``Authorization: Klaviyo-API-Key <private key>``, a dated ``revision``
header and JSON:API bodies (``application/vnd.api+json``).

- Create Event, ``POST /api/events``: metric by name, the profile by its identifier on the
  touch's channel, ``value``/``value_currency`` the cart's, ``unique_id`` the touch id. Klaviyo
  records only the first event with a given unique id per profile and metric, so a retry
  after a lost answer cannot start the flow twice.
- Consent, per "Collect email and SMS consent via API": subscribing is a separate Bulk
  Subscribe Profiles job (``POST /api/profile-subscription-bulk-create-jobs``), sent only when
  our record says the shopper consented on that channel. That job also lifts an unsubscribe,
  so the profile's current consent is read first (Get Profiles with
  ``additional-fields[profile]=subscriptions``): a shopper who unsubscribed at Klaviyo is
  never subscribed again, and the touch is ``suppressed``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from recovery.delivery_policy import KlaviyoEventsAdapter as KlaviyoConfig
from schemas.records import TouchCommand
from senders.adapters.base import HttpResult, secret
from senders.adapters.flow_events import event_name, json_number, touch_properties
from senders.adapters.http import _expect, _HttpAdapter
from senders.messages import Message, TouchEvent
from senders.outcomes import PermanentError, SuppressedError, classify_status

JSON_API = "application/vnd.api+json"
SUBSCRIBED = "SUBSCRIBED"
UNSUBSCRIBED = "UNSUBSCRIBED"
CUSTOM_SOURCE = "cartbands: consent recorded at checkout"


def _klaviyo_classify(result: HttpResult) -> Exception | None:
    """Klaviyo's first error (``errors[0].code``, ``.detail``) in a permanent failure's reason;
    429 and 5xx stay transient (``Retry-After`` honoured)."""
    if classify_status(result.status).transient:
        return None
    data = result.json()
    errors = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(errors, list) or not errors or not isinstance(errors[0], dict):
        return None
    first = errors[0]
    return PermanentError(
        f"HTTP {result.status}: Klaviyo {first.get('code', '?')}: "
        f"{first.get('detail') or first.get('title') or ''}"
    )


def profile_attributes(event: TouchEvent) -> dict[str, Any]:
    """The profile as the event creates or updates it: the channel's identifier and name."""
    attributes: dict[str, Any] = {}
    if event.email:
        attributes["email"] = event.email
    if event.phone:
        attributes["phone_number"] = event.phone
    if event.first_name:
        attributes["first_name"] = event.first_name
    if event.locale:
        attributes["locale"] = event.locale
    return attributes


def event_body(event: TouchEvent, metric: str) -> dict[str, Any]:
    """The Create Event request body."""
    return {
        "data": {
            "type": "event",
            "attributes": {
                "properties": touch_properties(event),
                "metric": {
                    "data": {"type": "metric", "attributes": {"name": event_name(metric, event)}}
                },
                "profile": {"data": {"type": "profile", "attributes": profile_attributes(event)}},
                "value": json_number(event.cart_total),
                "value_currency": event.currency,
                "unique_id": event.touch_id,
            },
        }
    }


def subscription_body(event: TouchEvent, list_id: str | None) -> dict[str, Any]:
    """The Bulk Subscribe Profiles body for the touch's channel; only for recorded consent."""
    if not event.marketing_consent:
        raise ValueError("no consent on record: the shopper must not be subscribed")
    profile: dict[str, Any]
    if event.channel == "sms":
        profile = {
            "phone_number": event.phone,
            "subscriptions": {"sms": {"marketing": {"consent": SUBSCRIBED}}},
        }
    else:
        profile = {
            "email": event.email,
            "subscriptions": {"email": {"marketing": {"consent": SUBSCRIBED}}},
        }
    data: dict[str, Any] = {
        "type": "profile-subscription-bulk-create-job",
        "attributes": {
            "custom_source": CUSTOM_SOURCE,
            "profiles": {"data": [{"type": "profile", "attributes": profile}]},
        },
    }
    if list_id:
        data["relationships"] = {"list": {"data": {"type": "list", "id": list_id}}}
    return {"data": data}


def profile_filter(event: TouchEvent) -> str:
    """Get Profiles' ``filter`` for the shopper's identifier on the touch's channel."""
    field, value = (
        ("phone_number", event.phone) if event.channel == "sms" else ("email", event.email)
    )
    if not value or '"' in value or "\\" in value:
        raise PermanentError(f"the shopper's {field} cannot be looked up at Klaviyo")
    return f'equals({field},"{value}")'


def marketing_consent(data: Any, channel: str) -> str | None:
    """The first matching profile's marketing consent on ``channel`` (``SUBSCRIBED``,
    ``UNSUBSCRIBED``, ``NEVER_SUBSCRIBED``), or None when Klaviyo has no such profile."""
    profiles = data.get("data") if isinstance(data, dict) else None
    if not isinstance(profiles, list) or not profiles:
        return None
    subscriptions = (profiles[0].get("attributes") or {}).get("subscriptions") or {}
    marketing = (subscriptions.get(channel) or {}).get("marketing") or {}
    consent = marketing.get("consent")
    return str(consent) if consent else None


class KlaviyoEventsAdapter(_HttpAdapter):
    provider = "klaviyo_events"

    def __init__(self, config: KlaviyoConfig, environ: Mapping[str, str] | None = None) -> None:
        super().__init__(config.timeout.total_seconds())
        self.config = config
        self.base = config.base_url.rstrip("/")
        self.api_key = secret(config.api_key_env, environ)

    def headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Klaviyo-API-Key {self.api_key}",
            "revision": self.config.revision,
            "accept": JSON_API,
            "content-type": JSON_API,
        }

    async def _post(self, path: str, body: dict[str, Any]) -> HttpResult:
        return await self.call(
            "POST",
            self.base + path,
            classify=_klaviyo_classify,
            data=orjson.dumps(body),
            headers=self.headers(),
        )

    async def _subscribe(self, event: TouchEvent) -> None:
        """Subscribe a consented shopper unless Klaviyo says they are subscribed already;
        :class:`SuppressedError` when they unsubscribed there."""
        headers = self.headers()
        del headers["content-type"]
        found = await self.call(
            "GET",
            self.base + "/api/profiles",
            classify=_klaviyo_classify,
            params={
                "filter": profile_filter(event),
                "additional-fields[profile]": "subscriptions",
            },
            headers=headers,
        )
        consent = marketing_consent(found.json(), event.channel)
        if consent == UNSUBSCRIBED:
            raise SuppressedError(f"the shopper unsubscribed from {event.channel} at Klaviyo")
        if consent != SUBSCRIBED:
            await self._post(
                "/api/profile-subscription-bulk-create-jobs",
                subscription_body(event, self.config.list_id),
            )

    async def deliver(self, message: Message, touch: TouchCommand) -> str | None:
        _expect(message, TouchEvent, self.provider)
        assert isinstance(message, TouchEvent)
        if self.config.subscribe and message.marketing_consent:
            await self._subscribe(message)
        await self._post("/api/events", event_body(message, self.config.metric))
        return message.touch_id
