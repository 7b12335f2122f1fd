"""CartOutcome rows for the report's tests: carts of one band and group, with their money."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from recovery.outcomes import CartOutcome

AT = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def cart(
    n: int,
    band: str,
    group: str,
    outcome: str = "not_recovered",
    *,
    margin: str = "0",
    discount: str = "0",
    email: str = "0",
    sms: str = "0",
    store: str = "s1",
    currency: str = "USD",
    value: str = "80",
) -> CartOutcome:
    recovered = outcome == "recovered"
    return CartOutcome(
        store=store,
        checkout=f"c{n}",
        band=band,
        segment="new",
        group=group,  # type: ignore[arg-type]
        currency=currency,
        value=Decimal(value),
        abandoned_at=AT,
        outcome=outcome,  # type: ignore[arg-type]
        revenue=Decimal(value) if recovered else Decimal(0),
        margin=Decimal(margin) if recovered else Decimal(0),
        discount=Decimal(discount) if recovered else Decimal(0),
        costs={k: Decimal(v) for k, v in (("email", email), ("sms", sms)) if v != "0"},
    )


def band_rows(
    band: str, treated: int, t_rec: int, holdout: int, h_rec: int, start: int, **money: str
) -> list[CartOutcome]:
    """``treated`` carts of which ``t_rec`` recovered, ``holdout`` of which ``h_rec``."""
    rows = []
    for i in range(treated):
        outcome = "recovered" if i < t_rec else "not_recovered"
        rows.append(cart(start + i, band, "treated", outcome, **money))
    for i in range(holdout):
        outcome = "recovered" if i < h_rec else ("ordered_later" if i % 2 else "not_recovered")
        rows.append(cart(start + treated + i, band, "holdout", outcome, margin=money["margin"]))
    return rows
