"""Segments: who the shopper is, from their profile and this cart.

Tried in order: ``repeat_vip`` (enough orders or lifetime value), ``hesitant`` (abandoned
enough carts lately, this one included, with no order since), ``price_sensitive`` (a signal
that the price holds the shopper back: :func:`price_signals`), ``returning`` (has ordered),
else ``new``. Price sensitivity comes after ``hesitant`` (social proof, not price, is what a
serial abandoner gets) and before ``returning``: the discount-code signal only exists for a
shopper who has ordered.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from recovery.durations import format_duration
from recovery.model import Cart, Profile
from recovery.policy import PriceSensitiveRule, StorePolicy


def recent_abandonments(profile: Profile, cart: Cart, policy: StorePolicy, now: datetime) -> int:
    """Abandonments inside the hesitant window and after the last order, this cart included."""
    since = now - policy.segments.hesitant.within
    if profile.last_order_at is not None and profile.last_order_at > since:
        since = profile.last_order_at
    times = set(profile.abandonments)
    times.add(cart.abandoned_at)
    return sum(1 for at in times if since < at <= now)


def goods_value(total: Decimal, subtotal: Decimal | None, shipping: Decimal | None) -> Decimal:
    """What the items of a cart are worth: its subtotal when the platform sends one, else its
    total less the shipping charge it includes (a shipping line chosen late is no growth)."""
    if subtotal is not None:
        return subtotal
    if shipping is not None and shipping > 0:
        return total - shipping
    return total


def price_signals(profile: Profile, cart: Cart, rule: PriceSensitiveRule) -> list[str]:
    """The signals, each as a phrase, that the price holds this shopper back under ``rule``."""
    found = []
    orders = profile.orders_count
    used = min(profile.discount_orders, orders)
    if (
        rule.min_discount_orders > 0
        and used >= rule.min_discount_orders
        and used >= rule.min_discount_share * orders
    ):
        found.append(f"{used} of {orders} past orders used a discount code")
    if rule.shipping_shown and cart.shipping is not None and cart.shipping > 0:
        found.append(
            f"abandoned after a shipping charge of {cart.shipping} {cart.currency} was shown"
        )
    peak = cart.peak_total
    if rule.min_shrink_share is not None and peak is not None and peak > 0:
        goods = goods_value(cart.total, cart.subtotal, cart.shipping)
        if peak - goods >= rule.min_shrink_share * peak:
            found.append(
                f"the cart shrank from {peak} to {goods}, at least {rule.min_shrink_share} "
                "below its peak"
            )
    return found


def segment_of(profile: Profile, cart: Cart, policy: StorePolicy, now: datetime) -> tuple[str, str]:
    """``(segment, reason)``."""
    rules = policy.segments
    vip = rules.repeat_vip
    if profile.orders_count >= vip.min_orders:
        return (
            "repeat_vip",
            f"segment: repeat_vip ({profile.orders_count} orders >= {vip.min_orders})",
        )
    if profile.lifetime_value >= vip.min_lifetime_value:
        return "repeat_vip", (
            f"segment: repeat_vip (lifetime value {profile.lifetime_value} "
            f">= {vip.min_lifetime_value})"
        )
    hesitant = rules.hesitant
    count = recent_abandonments(profile, cart, policy, now)
    if count >= hesitant.min_abandonments:
        return "hesitant", (
            f"segment: hesitant ({count} abandoned carts without an order in the last "
            f"{format_duration(hesitant.within)} >= {hesitant.min_abandonments})"
        )
    signals = price_signals(profile, cart, rules.price_sensitive)
    if signals:
        return "price_sensitive", f"segment: price_sensitive ({'; '.join(signals)})"
    if profile.orders_count >= rules.returning.min_orders:
        return "returning", f"segment: returning ({profile.orders_count} orders)"
    return "new", "segment: new (no orders on record)"
