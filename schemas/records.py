"""The canonical records that flow between cartbands' stages.

``cart-events`` (key ``store:checkout``): :class:`CartUpdated`, :class:`CartCompleted`.
``touches.<channel>`` (key ``store:shopper``): :class:`TouchCommand`.
The ``type`` field names the record so one topic can carry several kinds.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import faust

from schemas.codec import register_codec

# the records name their serializer: registered before any of them is encoded or decoded
register_codec()
RECORD_OPTIONS = {"include_metadata": False, "coerce": True, "serializer": "orjson"}


class LineItem(faust.Record, **RECORD_OPTIONS):
    """One line of a cart; ``price`` is the unit price, ``cost`` the unit cost when known."""

    title: str
    quantity: int
    price: Decimal
    product_id: str | None = None
    variant_id: str | None = None
    sku: str | None = None
    cost: Decimal | None = None


class Address(faust.Record, **RECORD_OPTIONS):
    """Enough of an address to find a time zone; no street lines are kept."""

    country_code: str | None = None
    province_code: str | None = None
    zip: str | None = None


class Contact(faust.Record, **RECORD_OPTIONS):
    """How to reach the shopper and what they agreed to."""

    email: str | None = None
    phone: str | None = None
    sms_phone: str | None = None
    customer_id: str | None = None
    first_name: str | None = None
    email_consent: bool = False
    sms_consent: bool = False
    locale: str | None = None


class CustomerHistory(faust.Record, **RECORD_OPTIONS):
    """What the platform says of the shopper's past orders (in the store currency)."""

    orders_count: int = 0
    total_spent: Decimal = Decimal("0")


class CartUpdated(faust.Record, **RECORD_OPTIONS):
    """A checkout was created or changed (the latest full snapshot of it)."""

    store: str
    checkout: str
    event_id: str
    occurred_at: datetime
    currency: str
    total: Decimal
    type: str = "cart_updated"
    platform: str = "generic"
    subtotal: Decimal | None = None
    shipping: Decimal | None = None  # the shipping charge included in ``total``, when known
    presentment_currency: str | None = None
    presentment_total: Decimal | None = None
    line_items: list[LineItem] = []
    contact: Contact | None = None
    customer: CustomerHistory | None = None
    shipping_address: Address | None = None
    billing_address: Address | None = None
    recovery_url: str | None = None
    completed_at: datetime | None = None


class Discount(faust.Record, **RECORD_OPTIONS):
    """A discount code an order used and what it took off, in the order's currency (the
    currency of its ``total``); ``amount`` absent when the platform does not say."""

    code: str
    amount: Decimal | None = None


class CartCompleted(faust.Record, **RECORD_OPTIONS):
    """A checkout was completed, or an order carrying its checkout token was placed.

    ``discounts`` are the codes the order used with the amount each took off (the gateway
    writes this form, codes upper-cased); ``discount_codes`` is the older form, codes only,
    still accepted: a code listed there and not in ``discounts`` was used for an unknown
    amount.
    """

    store: str
    checkout: str
    event_id: str
    occurred_at: datetime
    currency: str
    total: Decimal
    type: str = "cart_completed"
    platform: str = "generic"
    order_id: str | None = None
    contact: Contact | None = None
    discounts: list[Discount] = []
    discount_codes: list[str] = []


class ConsentChanged(faust.Record, **RECORD_OPTIONS):
    """A shopper granted or withdrew consent on a channel (``all`` for every channel).

    Produced to ``shopper-events`` (key ``store:shopper``): e.g. an SMS STOP reply, an
    unsubscribe click, or a platform consent update. The email/phone say *which* contact it
    concerns, so a suppression holds whatever shopper key a later cart arrives under.
    """

    store: str
    event_id: str
    occurred_at: datetime
    channel: str
    granted: bool
    type: str = "consent_changed"
    source: str = "platform"
    customer_id: str | None = None
    email: str | None = None
    phone: str | None = None


class ShopperRedacted(faust.Record, **RECORD_OPTIONS):
    """Erase this shopper's personal data (e.g. Shopify ``customers/redact``)."""

    store: str
    event_id: str
    occurred_at: datetime
    type: str = "shopper_redacted"
    customer_id: str | None = None
    email: str | None = None
    phone: str | None = None


class StoreRedacted(faust.Record, **RECORD_OPTIONS):
    """Erase every shopper's personal data of a store (e.g. Shopify ``shop/redact``).

    Store-wide, so the gateway sends one copy to every partition of ``cart-events`` and
    ``shopper-events`` (key ``store``): each partition's owner forgets that store's entries.
    """

    store: str
    event_id: str
    occurred_at: datetime
    type: str = "store_redacted"


class Incentive(faust.Record, **RECORD_OPTIONS):
    """The incentive a touch carries: a price discount with its code, or a service perk."""

    kind: str
    value: Decimal | None = None
    code: str | None = None
    service: str | None = None
    expires_at: datetime | None = None


class CartSummary(faust.Record, **RECORD_OPTIONS):
    total: Decimal
    currency: str
    items: list[LineItem] = []


class TouchCommand(faust.Record, **RECORD_OPTIONS):
    """An order to a sender: reach this shopper on this channel about this cart."""

    touch_id: str
    store: str
    shopper: str
    cart: str
    band: str
    step: int
    channel: str
    due_at: datetime
    contact: Contact
    cart_summary: CartSummary
    type: str = "touch"
    segment: str = "new"
    template: str = "reminder"
    plan_version: int = 1
    incentive: Incentive | None = None
    recovery_url: str | None = None
    reason: str | None = None


class TouchResult(faust.Record, **RECORD_OPTIONS):
    """What a sender did with a touch, on ``touch-results`` (key ``store:shopper``).

    ``outcome``: delivered, deduplicated, unknown, failed, dead_lettered, suppressed, expired.
    """

    touch_id: str
    store: str
    shopper: str
    cart: str
    channel: str
    step: int
    band: str
    outcome: str
    at: datetime
    type: str = "touch_result"
    template: str | None = None
    reason: str | None = None
    provider: str | None = None
    provider_id: str | None = None
    attempts: int = 0


CART_EVENT_TYPES: dict[str, type[faust.Record]] = {
    "cart_updated": CartUpdated,
    "cart_completed": CartCompleted,
}

SHOPPER_EVENT_TYPES: dict[str, type[faust.Record]] = {
    "consent_changed": ConsentChanged,
    "shopper_redacted": ShopperRedacted,
    "store_redacted": StoreRedacted,
}

EXPORTED: tuple[type[faust.Record], ...] = (
    CartUpdated,
    CartCompleted,
    TouchCommand,
    ConsentChanged,
    ShopperRedacted,
    StoreRedacted,
    TouchResult,
)
