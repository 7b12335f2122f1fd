"""What discount code to create in the store for a touch (pure: no I/O, no clock).

A touch that carries a code (``incentive.code``) gets that code created in the shopper's store
before it is delivered. The code is made as tight as the platform allows, so that it is worth
exactly what the plan decided and nothing more:

- **kind and value**: ``percent_off`` -> a percentage of the order's items, ``fixed_off`` -> a
  fixed amount off the order (store currency), ``free_shipping`` -> free shipping; a service
  incentive that a platform can express as a code (``free_expedited_shipping``: free shipping
  on any rate, expedited included) -> free shipping. Other services (a concierge call) need no
  code.
- **single use**: one redemption in all, once per customer.
- **expiry**: the touch's incentive expiry (``expires_at``); a code without one is refused, so
  that no code lives for ever.
- **restricted to the shopper** where the platform allows it: the customer id (Shopify) or the
  e-mail address (WooCommerce); BigCommerce promotions cannot name one customer.
- **minimum subtotal** (``min_subtotal: band``, the default): the lower bound of the band whose
  plan carried the incentive. The margin guard sized the incentive against a cart of that band;
  a shopper who empties the cart below it would otherwise get a discount the lower band never
  carries (the low band never carries one at all). ``min_subtotal: none`` sets no minimum.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

CodeKind = Literal["percent_off", "fixed_off", "free_shipping"]
PRICE_CODE_KINDS: frozenset[str] = frozenset({"percent_off", "fixed_off", "free_shipping"})
# Service incentives a store can honour with a code, and the code kind that does it.
SERVICE_CODE_KINDS: dict[str, CodeKind] = {"free_expedited_shipping": "free_shipping"}
TITLE_PREFIX = "cartbands"


def code_kind(kind: str | None, service: str | None) -> CodeKind | None:
    """The kind of store code an incentive needs, or None when it needs none."""
    if kind in PRICE_CODE_KINDS:
        return kind  # type: ignore[return-value]
    if kind == "service" and service is not None:
        return SERVICE_CODE_KINDS.get(service)
    return None


@dataclass(frozen=True, slots=True)
class CodeSpec:
    """One code to create. ``title`` names the touch, so a code found in the store can be told
    ours (same code, same touch) from someone else's."""

    code: str
    kind: CodeKind
    value: Decimal | None
    currency: str
    starts_at: datetime
    expires_at: datetime
    title: str
    touch_id: str
    store: str
    shopper: str
    cart: str
    min_subtotal: Decimal | None = None
    customer_id: str | None = None
    email: str | None = None

    @property
    def percentage(self) -> Decimal:
        """``value`` as a share of 1 (10 -> 0.1), as Shopify takes it."""
        if self.kind != "percent_off" or self.value is None:
            raise ValueError(f"a {self.kind} code has no percentage")
        return self.value / 100


class CodeSpecError(ValueError):
    """A touch's code cannot be made as the rules above require (a permanent problem)."""


def title_for(touch_id: str) -> str:
    return f"{TITLE_PREFIX} {touch_id}"


def code_spec(
    *,
    code: str | None,
    kind: str | None,
    value: Decimal | None,
    service: str | None,
    expires_at: datetime | None,
    starts_at: datetime,
    currency: str,
    touch_id: str,
    store: str,
    shopper: str,
    cart: str,
    band_min: Decimal | None,
    min_subtotal: Literal["band", "none"] = "band",
    restrict_to_shopper: bool = True,
    customer_id: str | None = None,
    email: str | None = None,
) -> CodeSpec | None:
    """The code to create for a touch's incentive; None when the touch carries no code."""
    if not code:
        return None
    which = code_kind(kind, service)
    if which is None:
        raise CodeSpecError(f"a {kind} incentive ({service or 'no service'}) cannot be a code")
    if which in ("percent_off", "fixed_off") and (value is None or value <= 0):
        raise CodeSpecError(f"a {which} code needs a positive value")
    if which == "percent_off" and value is not None and value > 100:
        raise CodeSpecError("a percentage code is at most 100%")
    if expires_at is None:
        raise CodeSpecError("a code without an expiry is not created (it would never end)")
    if expires_at <= starts_at:
        raise CodeSpecError(f"the code expired at {expires_at.isoformat()} before it started")
    minimum = band_min if min_subtotal == "band" and band_min is not None and band_min > 0 else None
    return CodeSpec(
        code=code,
        kind=which,
        value=value if which != "free_shipping" else None,
        currency=currency,
        starts_at=starts_at,
        expires_at=expires_at,
        title=title_for(touch_id),
        touch_id=touch_id,
        store=store,
        shopper=shopper,
        cart=cart,
        min_subtotal=minimum,
        customer_id=(customer_id or None) if restrict_to_shopper else None,
        email=(email.strip() or None) if restrict_to_shopper and email else None,
    )
