"""Canonical events for pipeline tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

T0 = datetime(2026, 11, 2, 15, 0, tzinfo=UTC).timestamp()  # 10:00 in New York


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def cart(
    checkout: str,
    total: str,
    at: float = T0,
    *,
    store: str = "pipe",
    customer: str | None = None,
    email: str | None = None,
    sms: bool = True,
    event_id: str | None = None,
) -> dict[str, Any]:
    who = customer or f"cust-{checkout}"
    return {
        "type": "cart_updated",
        "event_id": event_id or f"evt-{checkout}-{at}",
        "store": store,
        "checkout": checkout,
        "occurred_at": iso(at),
        "currency": "USD",
        "total": total,
        "line_items": [{"title": "thing", "quantity": 1, "price": total}],
        "contact": {
            "email": email or f"{who}@example.com",
            "phone": "+12125550100",
            "sms_phone": "+12125550100" if sms else None,
            "email_consent": True,
            "sms_consent": sms,
            "customer_id": who,
        },
        "shipping_address": {"country_code": "US", "province_code": "NY"},
        "recovery_url": f"https://shop.example.com/{checkout}/recover",
    }


def order(
    checkout: str, total: str, at: float, *, store: str = "pipe", customer: str | None = None
) -> dict[str, Any]:
    who = customer or f"cust-{checkout}"
    return {
        "type": "cart_completed",
        "event_id": f"order-{checkout}-{at}",
        "store": store,
        "checkout": checkout,
        "occurred_at": iso(at),
        "currency": "USD",
        "total": total,
        "order_id": f"o-{checkout}",
        "contact": {"email": f"{who}@example.com", "customer_id": who},
    }


def without_holdout(source: Path, dest: Path) -> Path:
    """A copy of a policy file whose bands keep no control group (every cart is treated)."""
    data = yaml.safe_load(source.read_text())
    for band in data["defaults"]["bands"]:
        band["holdout"] = 0
    dest.write_text(yaml.safe_dump(data))
    return dest
