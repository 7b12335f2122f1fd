"""Canonical events for pipeline tests."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from bus.kafka import drain
from schemas.codec import dumps, loads

T0 = datetime(2026, 11, 2, 15, 0, tzinfo=UTC).timestamp()  # 10:00 in New York


def recent(seconds_ago: float = 600.0) -> float:
    """An event time for tests of a wall-clock worker (T0 is for ``--clock event``): such a
    worker forgets checkouts older than the retention (30 days) at its first tick, so a fixed
    date stops working a month after it was written. Ten minutes back by default: every touch
    of the fast policy is due by the worker's first tick."""
    return time.time() - seconds_ago


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


def wire(record: Any) -> Any:
    """A record as a consumer of its topic reads it: encoded as it is sent, decoded as JSON."""
    return loads(dumps(record))


def signature(touch: dict[str, Any]) -> tuple[Any, ...]:
    """What must be equal between two copies of one touch command."""
    incentive = touch.get("incentive") or {}
    return (
        touch["touch_id"],
        touch["channel"],
        touch["step"],
        touch["due_at"],
        incentive.get("code"),
    )


def distinct(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One command per touch id, checking that every repeat is the same command.

    Delivery is at-least-once: a rebalance or a restart may re-process a message and emit a
    touch again (tansu reports end offsets short, see ../shared/BROKER.md), always under the
    same touch id, which the senders de-duplicate on. A repeat that differs is a bug.
    """
    first: dict[str, dict[str, Any]] = {}
    for touch in found:
        kept = first.setdefault(touch["touch_id"], touch)
        assert signature(kept) == signature(touch), (kept, touch)
    return list(first.values())


def read_touches(
    bootstrap: str,
    topics: list[str],
    *,
    count: int | None = None,
    idle: float = 3.0,
    timeout: float = 90.0,
) -> list[dict[str, Any]]:
    """The distinct touch commands on ``topics``.

    With ``count``, re-reads until that many distinct touch ids arrived (or ``timeout``), then
    once more after ``idle`` seconds so that extra touches would show; without it, reads until
    ``idle`` seconds pass with nothing new.
    """
    deadline = time.monotonic() + timeout
    found: list[dict[str, Any]] = []
    while True:
        left = max(1.0, deadline - time.monotonic())
        records = asyncio.run(drain(bootstrap, topics, idle=idle, timeout=min(left, 30.0)))
        found = distinct([value for _topic, _key, value in records])
        if count is None or len(found) >= count or time.monotonic() >= deadline:
            return found
