"""Value bands: which band a cart amount falls in."""

from __future__ import annotations

from decimal import Decimal

from recovery.policy import Band, StorePolicy


def classify(amount: Decimal, policy: StorePolicy) -> Band:
    """The band whose ``[min, next.min)`` range holds ``amount`` (in the store's currency).

    Bands are validated to start at 0 and increase, so a non-negative amount always has one;
    a negative amount (a refund-shaped cart) falls into the first band.
    """
    chosen = policy.bands[0]
    for band in policy.bands[1:]:
        if amount >= band.min:
            chosen = band
        else:
            break
    return chosen


def band_range(policy: StorePolicy, band: Band) -> tuple[Decimal, Decimal | None]:
    """``(min, max)`` of a band, max exclusive, ``None`` for the open top band."""
    index = policy.bands.index(band)
    upper = policy.bands[index + 1].min if index + 1 < len(policy.bands) else None
    return band.min, upper
