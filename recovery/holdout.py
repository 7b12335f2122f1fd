"""Holdout: a deterministic share of carts kept as a control group (no touches, tracked)."""

from __future__ import annotations

import hashlib
from decimal import Decimal

SCALE = 1 << 64


def holdout_number(store: str, shopper: str, cart: str) -> int:
    """A uniform integer in ``[0, 2**64)`` fixed by (store, shopper, cart)."""
    joined = "\x1f".join(("holdout", store, shopper, cart)).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(joined, digest_size=8).digest(), "big")


def holdout_bucket(store: str, shopper: str, cart: str) -> Decimal:
    """The same number as a uniform Decimal in ``[0, 1)``."""
    return Decimal(holdout_number(store, shopper, cart)) / SCALE


def in_holdout(
    store: str, shopper: str, cart: str, share: Decimal, threshold: int | None = None
) -> tuple[bool, str]:
    """``(held out?, reason)``: held out when the bucket falls below the band's share.

    ``threshold`` is ``int(share * 2**64)`` when the caller has it precomputed.
    """
    if share <= 0:
        return False, "holdout: none for this band"
    limit = int(share * SCALE) if threshold is None else threshold
    number = holdout_number(store, shopper, cart)
    shown = f"{number / SCALE:.4f}"  # display only; the decision compares integers
    if number < limit:
        return True, f"holdout: control group (bucket {shown} < share {share})"
    return False, f"holdout: treated (bucket {shown} >= share {share})"
