"""Rendered messages, one kind per channel, as adapters receive them (pure data)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
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


Message = EmailMessage | SmsMessage | AudienceChange | HumanNote


def describe(message: Message) -> dict[str, Any]:
    """The message as a JSON-ready mapping (what the outbox writes; hashed ids only for ads)."""
    if isinstance(message, AudienceChange):
        return {"action": message.action, "schema": list(SCHEMA), "data": [message.row.row]}
    data = asdict(message)
    if isinstance(message, HumanNote):
        data["facts"] = dict(message.facts)
    return data
