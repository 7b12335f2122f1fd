"""Frozen inputs and outputs of the core: carts, profiles, plans, planned touches, decisions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal


@dataclass(frozen=True, slots=True)
class Item:
    title: str
    quantity: int
    price: Decimal
    cost: Decimal | None = None
    product_id: str | None = None
    variant_id: str | None = None
    sku: str | None = None


@dataclass(frozen=True, slots=True)
class ContactInfo:
    email: str | None = None
    phone: str | None = None
    sms_phone: str | None = None
    customer_id: str | None = None
    first_name: str | None = None
    email_consent: bool = False
    sms_consent: bool = False
    locale: str | None = None
    country_code: str | None = None
    province_code: str | None = None


@dataclass(frozen=True, slots=True)
class Cart:
    """An abandoned (or open) checkout as the core sees it; amounts in ``currency``.

    When the platform also reports the amounts in the shop's currency (a multi-currency
    storefront), ``shop_currency``/``shop_total``/``shop_subtotal`` carry them and banding
    uses them instead of a conversion. ``shipping`` is the shipping charge included in
    ``total`` when the platform reports it: the default ``total`` basis bands the total
    before shipping. ``peak_total`` is the highest goods value (:func:`goods_value`) the
    checkout had before it shrank to this one, when it did (stage A tracks it).
    """

    store: str
    checkout: str
    currency: str
    total: Decimal
    abandoned_at: datetime
    subtotal: Decimal | None = None
    presentment_currency: str | None = None
    items: tuple[Item, ...] = ()
    contact: ContactInfo = field(default_factory=ContactInfo)
    recovery_url: str | None = None
    cycle: int = 1
    shop_currency: str | None = None
    shop_total: Decimal | None = None
    shop_subtotal: Decimal | None = None
    shipping: Decimal | None = None
    peak_total: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Profile:
    """What stage B knows about a shopper across carts.

    Consents of ``None`` are unknown: the cart contact's flags decide. ``suppressed`` holds
    channels (``email``, ``sms``, ``ads``, ``human``) or ``all``; ``suppressed_numbers`` holds
    phone numbers (best in E.164, as :func:`recovery.ids.phone_e164` writes them) that must
    never get an SMS, whoever's cart they appear on. ``abandonments`` are recent
    abandonment times (for ``hesitant``), ``sends`` the recent touches as (channel, sent_at)
    (for caps and per-channel gaps). ``discount_orders`` counts the shopper's orders that used
    a discount code (for ``price_sensitive``).
    """

    orders_count: int = 0
    lifetime_value: Decimal = Decimal(0)
    last_order_at: datetime | None = None
    email_consent: bool | None = None
    sms_consent: bool | None = None
    suppressed: frozenset[str] = frozenset()
    abandonments: tuple[datetime, ...] = ()
    sends: tuple[tuple[str, datetime], ...] = ()
    suppressed_numbers: frozenset[str] = frozenset()
    discount_orders: int = 0


@dataclass(frozen=True, slots=True)
class PlannedTouch:
    """One touch of a plan. ``reason`` says why it is there and in this form; an incentive
    the guard (or the segment) held back keeps ``incentive_kind`` ``None`` and records
    ``incentive_withheld_reason``. Human touches carry ``summary`` for the person following up.
    """

    touch_id: str
    step: int
    channel: str
    template: str
    due_at: datetime
    incentive_kind: str | None = None
    incentive_value: Decimal | None = None
    incentive_service: str | None = None
    incentive_validity_s: int | None = None
    incentive_withheld_reason: str | None = None
    incentive_cost: Decimal | None = None
    reason: str = ""
    summary: str | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """What will be done for one abandoned cart, and why.

    ``value``/``currency`` are the banded amount in the store's currency. A ``holdout`` plan
    has no touches (control group, tracked for lift); a ``rejected`` plan could not be made
    (e.g. a currency without rate) and has no touches; ``ended`` is set when an exit
    (order, emptied cart, unsubscribe, redaction) stops it.
    """

    store: str
    shopper: str
    cart: str
    band: str
    segment: str
    version: int
    touches: tuple[PlannedTouch, ...]
    reasons: tuple[str, ...] = ()
    holdout: bool = False
    rejected: str | None = None
    value: Decimal = Decimal(0)
    currency: str = ""
    abandoned_at: datetime | None = None
    ended: str | None = None

    @property
    def active(self) -> bool:
        return self.rejected is None and self.ended is None and not self.holdout


Action = Literal["send", "defer", "skip"]


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with a due touch now, and why.

    ``send``: emit now (``code`` is the discount code of a price incentive, ``expires_at``
    its end). ``defer``: check again at ``at`` (quiet hours, gap, cap, not yet due).
    ``skip``: this touch never goes. ``reason`` starts with a countable key (``quiet_hours:``).
    """

    action: Action
    reason: str
    at: datetime | None = None
    code: str | None = None
    expires_at: datetime | None = None

    @property
    def key(self) -> str:
        return self.reason.split(":", 1)[0]
