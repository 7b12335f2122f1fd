"""A cart's value and margin in the store's currency, without ever mixing currencies.

The banded amount is the cart's total before shipping (or subtotal, per store) when the cart
is in the store's currency; else the platform's shop-currency amount when it sent one; else a
conversion with the policy's ``fx_rates``; else no value (the plan is rejected with the reason).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from recovery.model import Cart
from recovery.policy import StorePolicy

CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Valuation:
    """``value`` in ``currency`` (the store's), ``factor`` store units per cart unit."""

    value: Decimal
    currency: str
    factor: Decimal
    reason: str


class CurrencyMismatch(ValueError):
    """A cart whose amount cannot be expressed in the store's currency."""


def _basis(cart: Cart, basis: str) -> tuple[Decimal, str, Decimal]:
    """``(amount in the cart's currency, what it is, shipping taken off)``."""
    if basis == "subtotal" and cart.subtotal is not None:
        return cart.subtotal, "subtotal", Decimal(0)
    if cart.shipping is not None and 0 < cart.shipping <= cart.total:
        return cart.total - cart.shipping, "total before shipping", cart.shipping
    return cart.total, "total", Decimal(0)


def valuate(cart: Cart, policy: StorePolicy) -> Valuation:
    """The banded amount in the store's currency, and how it was found.

    ``total`` (the default basis) is the total before shipping when the cart reports its
    shipping charge; ``subtotal`` falls back to that when the cart has no subtotal.
    """
    own, used, shipping = _basis(cart, policy.amount_basis)
    less = f" ({cart.total} - shipping {shipping})" if shipping else ""
    if cart.currency == policy.currency:
        return Valuation(
            own, cart.currency, Decimal(1), f"value: {used} {own} {cart.currency}{less}"
        )
    if cart.shop_currency == policy.currency and cart.shop_total is not None:
        factor = cart.shop_total / cart.total if cart.total else Decimal(1)
        if used == "total":
            shop = cart.shop_total
        elif used == "subtotal" and cart.shop_subtotal is not None:
            shop = cart.shop_subtotal
        else:  # a subtotal or shipping the platform gave only in the cart's currency
            shop = (cart.shop_total * own / cart.total if cart.total else own).quantize(
                CENT, rounding=ROUND_HALF_EVEN
            )
        return Valuation(
            shop,
            policy.currency,
            factor,
            f"value: shop-currency {used} {shop} {policy.currency} "
            f"(cart in {cart.currency} {own}{less})",
        )
    rate = policy.fx_rates.get(cart.currency)
    if rate is not None:
        value = (own * rate).quantize(CENT, rounding=ROUND_HALF_EVEN)
        return Valuation(
            value,
            policy.currency,
            rate,
            f"value: {used} {own} {cart.currency}{less} x {rate} = {value} {policy.currency}",
        )
    raise CurrencyMismatch(
        f"currency: cart in {cart.currency}, store in {policy.currency}, no shop-currency "
        f"amount and no fx_rates entry for {cart.currency}"
    )


def margin(cart: Cart, valuation: Valuation, policy: StorePolicy) -> tuple[Decimal, str]:
    """The cart's margin in the store's currency, and where it came from."""
    items = cart.items
    if items and all(item.cost is not None for item in items):
        own = sum(
            ((item.price - (item.cost or Decimal(0))) * item.quantity for item in items),
            Decimal(0),
        )
        value = (own * valuation.factor).quantize(CENT, rounding=ROUND_HALF_EVEN)
        return max(value, Decimal(0)), f"line-item costs {value}"
    share = policy.margin.gross_margin
    value = (valuation.value * share).quantize(CENT, rounding=ROUND_HALF_EVEN)
    return max(value, Decimal(0)), f"gross margin {share} x {valuation.value} = {value}"
