"""Value bands: which band a cart amount falls in (the one rule every band table, the
simulator's response model, the what-if's reference bands and the advisor's drift use)."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the rule itself needs no policy: the simulator and the advisor use it too
    from recovery.policy import Band, StorePolicy


def band_index(mins: Sequence[Decimal], amount: Decimal) -> int:
    """The index of the band whose ``[min, next min)`` range holds ``amount``, ``mins``
    ascending (policies and models validate them so, from 0). An amount below the first
    minimum (a refund-shaped cart) falls into the first band."""
    return max(bisect_right(mins, amount) - 1, 0)


def classify(amount: Decimal, policy: StorePolicy) -> Band:
    """The policy's band of ``amount`` (in the store's currency): :func:`band_index`."""
    return policy.bands[band_index([band.min for band in policy.bands], amount)]


def band_range(policy: StorePolicy, band: Band) -> tuple[Decimal, Decimal | None]:
    """``(min, max)`` of a band, max exclusive, ``None`` for the open top band."""
    index = policy.bands.index(band)
    upper = policy.bands[index + 1].min if index + 1 < len(policy.bands) else None
    return band.min, upper
