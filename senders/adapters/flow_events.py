"""What the flow-event adapters (Klaviyo, Brevo) share: the event's name and properties.

Properties are flat where a flow filters or a template reads them (``band``, ``step``,
``discount_code``, ``recovery_url``): Klaviyo segments and filters on top-level scalar
properties only, and Brevo's workflow conditions read them the same way.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Any

from senders.messages import TouchEvent

_NOT_BREVO = re.compile(r"[^A-Za-z0-9_-]")


def json_number(amount: Decimal) -> int | float:
    """An exact amount as a JSON number (flows compare numbers, not strings).

    A float prints as the shortest text that reads back as itself, so an amount of up to 15
    significant digits (every cart total) goes on the wire with exactly its own digits.
    """
    if amount == amount.to_integral_value():
        return int(amount)
    number = float(amount)
    if Decimal(repr(number)) != amount:
        raise ValueError(f"{amount} has more digits than a JSON number carries exactly")
    return number


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def event_name(template: str, event: TouchEvent, brevo: bool = False) -> str:
    """The configured name with its placeholders filled; for Brevo, characters it refuses in
    a name (anything but letters, digits, ``-`` and ``_``) become ``_``."""
    values = {
        "channel": event.channel,
        "band": event.band,
        "segment": event.segment,
        "step": str(event.step),
        "template": event.template,
    }
    if brevo:
        values = {key: _NOT_BREVO.sub("_", value) for key, value in values.items()}
    return template.format(**values)


def touch_properties(event: TouchEvent) -> dict[str, Any]:
    """The event's properties; absent values are left out (Brevo refuses nulls)."""
    items = [
        {
            key: value
            for key, value in {
                "title": item.title,
                "quantity": item.quantity,
                "price": json_number(item.price),
                "product_id": item.product_id,
                "variant_id": item.variant_id,
                "sku": item.sku,
            }.items()
            if value is not None
        }
        for item in event.items
    ]
    properties: dict[str, Any] = {
        "touch_id": event.touch_id,
        "store": event.store,
        "cart": event.cart,
        "channel": event.channel,
        "step": event.step,
        "band": event.band,
        "segment": event.segment,
        "template": event.template,
        "cart_value": json_number(event.cart_total),
        "currency": event.currency,
        "item_count": sum(item.quantity for item in event.items),
        "items": items,
        "recovery_url": event.recovery_url,
        "marketing_consent": event.marketing_consent,
        "due_at": _iso(event.due_at),
        "incentive_kind": event.incentive_kind or "none",
        "incentive_value": (
            json_number(event.incentive_value) if event.incentive_value is not None else None
        ),
        "discount_code": event.discount_code,
        "incentive_service": event.incentive_service,
        "incentive_expires_at": _iso(event.incentive_expires_at),
        "incentive_text": event.incentive_text,
        "reason": event.reason,
    }
    return {key: value for key, value in properties.items() if value is not None}
