"""Brevo: each touch becomes an event that starts the merchant's Brevo automation.

Per Brevo's "Create an event" reference: ``POST /v3/events`` with the ``api-key`` header and a
JSON body of ``event_name`` (letters, digits, ``-``, ``_``), ``identifiers`` (``email_id`` or
``phone_id``), ``contact_properties`` (contact attributes such as ``FIRSTNAME``) and
``event_properties``; Brevo answers 204.

Brevo documents no idempotency key for events, so at-most-once rests on the sender's de-dup
log alone; ``touch_id`` travels in the properties for the merchant's own checks. Brevo has no
subscription call here either: a contact's marketing status stays what the merchant's Brevo
account says (blocklisted contacts get no automation email), and ``marketing_consent`` tells
the workflow what the shopper agreed to at checkout.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from recovery.delivery_policy import BrevoEventsAdapter as BrevoEventsConfig
from schemas.records import TouchCommand
from senders.adapters.base import HttpResult, secret
from senders.adapters.flow_events import event_name, touch_properties
from senders.adapters.http import _expect, _HttpAdapter
from senders.messages import Message, TouchEvent
from senders.outcomes import PermanentError, classify_status


def _brevo_classify(result: HttpResult) -> Exception | None:
    """Brevo's ``code`` and ``message`` in a permanent failure's reason (429/5xx transient)."""
    if classify_status(result.status).transient:
        return None
    data = result.json()
    if not isinstance(data, dict) or not (data.get("code") or data.get("message")):
        return None
    return PermanentError(
        f"HTTP {result.status}: Brevo {data.get('code', '?')}: {data.get('message', '')}"
    )


def event_body(event: TouchEvent, name: str) -> dict[str, Any]:
    """The Create an event request body."""
    identifiers = {"phone_id": event.phone} if event.channel == "sms" else {"email_id": event.email}
    body: dict[str, Any] = {
        "event_name": event_name(name, event, brevo=True),
        "identifiers": identifiers,
        "event_properties": touch_properties(event),
    }
    if event.first_name:
        body["contact_properties"] = {"FIRSTNAME": event.first_name}
    return body


class BrevoEventsAdapter(_HttpAdapter):
    provider = "brevo_events"

    def __init__(self, config: BrevoEventsConfig, environ: Mapping[str, str] | None = None) -> None:
        super().__init__(config.timeout.total_seconds())
        self.config = config
        self.url = config.base_url.rstrip("/") + "/v3/events"
        self.api_key = secret(config.api_key_env, environ)

    async def deliver(self, message: Message, touch: TouchCommand) -> str | None:
        _expect(message, TouchEvent, self.provider)
        assert isinstance(message, TouchEvent)
        await self.call(
            "POST",
            self.url,
            classify=_brevo_classify,
            json=event_body(message, self.config.event_name),
            headers={"api-key": self.api_key, "accept": "application/json"},
        )
        return message.touch_id
