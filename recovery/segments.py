"""Segments: who the shopper is, from their profile and this cart.

Tried in order: ``repeat_vip`` (enough orders or lifetime value), ``hesitant`` (abandoned
enough carts lately, this one included, with no order since), ``returning`` (has ordered),
else ``new``.
"""

from __future__ import annotations

from datetime import datetime

from recovery.durations import format_duration
from recovery.model import Cart, Profile
from recovery.policy import StorePolicy


def recent_abandonments(profile: Profile, cart: Cart, policy: StorePolicy, now: datetime) -> int:
    """Abandonments inside the hesitant window and after the last order, this cart included."""
    since = now - policy.segments.hesitant.within
    if profile.last_order_at is not None and profile.last_order_at > since:
        since = profile.last_order_at
    times = set(profile.abandonments)
    times.add(cart.abandoned_at)
    return sum(1 for at in times if since < at <= now)


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
    if profile.orders_count >= rules.returning.min_orders:
        return "returning", f"segment: returning ({profile.orders_count} orders)"
    return "new", "segment: new (no orders on record)"
