"""A store's abandoned carts, generated from a few parameters (``cartbands simulate``).

The defaults model seed 000's worked example: a store doing about $4.2M a year, average order
$96 with a wide right-skewed spread, 50% gross margin, about 1,900 abandoned carts a month of
which about 640 are under $50 and about 210 over $200. Cart values are log-normal: a median of
$71 and a log-spread of 0.84 put 33.7% of carts under $50 (640 of 1,900) and 11% over $200
(210 of 1,900), with a mean near $100. Shoppers are new, returning (ordered once or twice) or
repeat customers (3+ orders), some with SMS consent, with US numbers across time zones.

Pure and deterministic: ``generate(model, seed, months, start)`` gives the same canonical
``cart_updated`` events (with their epoch times) for the same arguments.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

CENT = Decimal("0.01")
MONTH = 30 * 86400.0
# (area code, state): US numbers across the four mainland zones, Florida's stricter SMS window
AREAS: tuple[tuple[str, str], ...] = (
    ("212", "NY"), ("312", "IL"), ("305", "FL"), ("720", "CO"),
    ("602", "AZ"), ("415", "CA"), ("213", "CA"), ("206", "WA"),
)  # fmt: skip
# relative cart volume per local hour of day: an evening peak, a quiet night
HOURLY = (1, 1, 1, 1, 1, 1, 2, 3, 4, 5, 5, 6, 6, 6, 6, 6, 6, 7, 8, 9, 9, 8, 5, 2)


class StoreModel(BaseModel):
    """The parameters (see policies/store-model.yaml for each one's source)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    store: str = "demo"
    currency: str = "USD"
    annual_revenue: Decimal = Decimal(4_200_000)
    gross_margin: Decimal = Field(default=Decimal("0.50"), ge=0, le=1)
    abandoned_per_month: int = Field(default=1900, ge=1)
    median_cart: Decimal = Field(default=Decimal(71), gt=0)
    log_spread: float = Field(default=0.84, gt=0)
    min_cart: Decimal = Field(default=Decimal(5), gt=0)
    returning_share: float = Field(default=0.25, ge=0, le=1)
    repeat_share: float = Field(default=0.10, ge=0, le=1)
    email_consent: float = Field(default=0.85, ge=0, le=1)
    sms_consent: float = Field(default=0.35, ge=0, le=1)

    def cart_value(self, rng: random.Random) -> Decimal:
        raw = rng.lognormvariate(math.log(float(self.median_cart)), self.log_spread)
        return max(self.min_cart, Decimal(repr(raw)).quantize(CENT, rounding=ROUND_HALF_EVEN))


def parse_store_model(data: object) -> StoreModel:
    """The model from a mapping (a file's ``store:`` section or the whole file)."""
    if isinstance(data, Mapping) and "store_model" in data:
        data = data["store_model"]
    return StoreModel.model_validate(data or {})


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


def _when(rng: random.Random, start: float, months: int) -> float:
    """A time in the period, weighted by local hour (US Eastern, roughly UTC-5)."""
    day = rng.randrange(30 * months)
    hour = rng.choices(range(24), weights=HOURLY)[0]
    return start + day * 86400.0 + ((hour + 5) % 24) * 3600.0 + rng.randrange(3600)


def _customer(model: StoreModel, rng: random.Random) -> dict[str, Any] | None:
    draw = rng.random()
    if draw < model.repeat_share:
        orders = rng.randint(3, 9)
    elif draw < model.repeat_share + model.returning_share:
        orders = rng.randint(1, 2)
    else:
        return None
    spent = (Decimal(orders) * model.cart_value(rng)).quantize(CENT)
    return {"orders_count": orders, "total_spent": str(spent)}


def cart_event(model: StoreModel, rng: random.Random, number: int, at: float) -> dict[str, Any]:
    """One abandoned cart's ``cart_updated``: its last event before it went idle."""
    checkout = f"sim-{number:06d}"
    total = model.cart_value(rng)
    area, state = rng.choice(AREAS)
    sms = rng.random() < model.sms_consent
    phone = f"+1{area}55501{rng.randrange(100):02d}"
    event: dict[str, Any] = {
        "type": "cart_updated",
        "event_id": f"{checkout}-1",
        "store": model.store,
        "checkout": checkout,
        "platform": "generic",
        "occurred_at": _iso(at),
        "currency": model.currency,
        "total": str(total),
        "subtotal": str(total),
        "line_items": [{"title": "Item", "quantity": 1, "price": str(total)}],
        "contact": {
            "email": f"shopper{number}@example.com",
            "phone": phone if sms else None,
            "sms_phone": phone if sms else None,
            "first_name": f"Shopper{number}",
            "email_consent": rng.random() < model.email_consent,
            "sms_consent": sms,
            "customer_id": f"cust-{number:06d}",
        },
        "shipping_address": {"country_code": "US", "province_code": state},
        "recovery_url": f"https://{model.store}.example.com/checkouts/{checkout}/recover",
    }
    customer = _customer(model, rng)
    if customer is not None:
        event["customer"] = customer
    return event


def generate(
    model: StoreModel, seed: int, months: int, start: datetime
) -> list[tuple[float, dict[str, Any]]]:
    """``months`` of abandoned carts from ``start``: ``(epoch time, cart_updated)``, in order."""
    rng = random.Random(f"store:{seed}")
    first = start.timestamp()
    count = model.abandoned_per_month * months
    events = [
        (at, cart_event(model, rng, number, at))
        for number, at in ((n, _when(rng, first, months)) for n in range(count))
    ]
    events.sort(key=lambda pair: (pair[0], pair[1]["checkout"]))
    return events
