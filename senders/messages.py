"""Rendered messages, one kind per channel, as adapters receive them (pure data)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from senders.audience import SCHEMA, AudienceRow


@dataclass(frozen=True)
class EmailMessage:
    to_email: str
    to_name: str | None
    from_email: str
    from_name: str
    reply_to: str | None
    subject: str
    text: str
    html: str
    message_id: str
    unsubscribe_url: str
    list_unsubscribe: str
    one_click: bool
    """True when ``unsubscribe_url`` is https: RFC 8058 one-click unsubscribe applies."""


@dataclass(frozen=True)
class SmsMessage:
    to: str
    body: str


@dataclass(frozen=True)
class AudienceChange:
    action: str
    """``add`` to the retargeting audience, or ``remove`` (the shopper converted)."""
    row: AudienceRow


@dataclass(frozen=True)
class HumanNote:
    subject: str
    text: str
    customer_email: str | None
    customer_phone: str | None
    customer_name: str | None
    facts: tuple[tuple[str, str], ...]
    """Label/value pairs for a person: cart value, band, segment, link, reason."""


@dataclass(frozen=True)
class EventItem:
    title: str
    quantity: int
    price: Decimal
    product_id: str | None
    variant_id: str | None
    sku: str | None


@dataclass(frozen=True)
class TouchEvent:
    """The facts of one touch, for the merchant's own flow (Klaviyo, Brevo) to send.

    Nothing is rendered: the ESP's template does that from these facts. ``email`` or ``phone``
    (E.164) identifies the shopper on the touch's channel; ``marketing_consent`` is what we
    recorded for that channel.
    """

    touch_id: str
    store: str
    cart: str
    channel: str
    step: int
    band: str
    segment: str
    template: str
    email: str | None
    phone: str | None
    first_name: str | None
    locale: str | None
    marketing_consent: bool
    cart_total: Decimal
    currency: str
    items: tuple[EventItem, ...]
    recovery_url: str
    due_at: datetime
    incentive_kind: str | None = None
    incentive_value: Decimal | None = None
    discount_code: str | None = None
    incentive_service: str | None = None
    incentive_expires_at: datetime | None = None
    incentive_text: str | None = None
    """The offer in words (``Use code X at checkout for 12% off. Offer ends ...``)."""
    reason: str | None = None


Message = EmailMessage | SmsMessage | AudienceChange | HumanNote | TouchEvent


def describe(message: Message) -> dict[str, Any]:
    """The message as a JSON-ready mapping (what the outbox writes; hashed ids only for ads)."""
    if isinstance(message, AudienceChange):
        return {"action": message.action, "schema": list(SCHEMA), "data": [message.row.row]}
    data = asdict(message)
    if isinstance(message, HumanNote):
        data["facts"] = dict(message.facts)
    return data
