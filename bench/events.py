"""A realistic, deterministic stream of canonical cart events for benchmarks and replays.

Many stores (a few big ones, a long tail), many checkouts: each checkout gets 1-5
``cart_updated`` snapshots a few minutes apart (the cart grows, the shopper's contact often
appears after the first step), then either a ``cart_completed`` order event (most of them) or
nothing (abandoned, ~15% by default). Totals follow a log-normal spread across the default
bands (low < 50 <= mid < 200 <= high < 600 <= vip). Shoppers come back: several checkouts of a
store may belong to one shopper. The same seed gives the same events, ids and times.

Events are dicts in the shape of ``schemas.records.CartUpdated`` / ``CartCompleted`` (as
``cartbands/sample.py`` produces), sorted by ``occurred_at``. ``python -m bench.events`` writes
them as NDJSON for ``cartbands replay``.
"""

from __future__ import annotations

import argparse
import math
import random
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import orjson

from recovery.ids import checkout_key

CENT = Decimal("0.01")
DEFAULT_START = datetime(2026, 11, 2, tzinfo=UTC)

_FIRST = (
    "Ada",
    "Ben",
    "Cleo",
    "Dev",
    "Eli",
    "Fay",
    "Gus",
    "Hana",
    "Ivo",
    "Jun",
    "Kai",
    "Lea",
    "Mo",
    "Nia",
    "Oli",
    "Pia",
    "Raj",
    "Sol",
    "Tess",
    "Uma",
    "Vic",
    "Wen",
    "Yara",
    "Zed",
)
_LAST = (
    "Park",
    "Silva",
    "Okafor",
    "Novak",
    "Haddad",
    "Kim",
    "Rossi",
    "Meyer",
    "Dubois",
    "Sato",
    "Lopez",
    "Nguyen",
    "Berg",
    "Costa",
    "Ivanova",
    "Quinn",
)
_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com")
_PROVINCES = ("NY", "CA", "TX", "FL", "WA", "IL", "MA", "CO", "GA", "OR")
_PLATFORMS = ("shopify", "shopify", "shopify", "bigcommerce", "woocommerce", "generic")
_PRODUCTS = (
    "Enamel mug",
    "Tea sampler",
    "Linen apron",
    "Chef knife",
    "Dutch oven",
    "Espresso grinder",
    "Stand mixer",
    "Cast iron pan",
    "Pour-over kettle",
    "Oak board",
    "Wool throw",
    "Ceramic vase",
    "Desk lamp",
    "Rain jacket",
    "Trail shoes",
    "Backpack",
    "Espresso machine",
    "Range hood",
    "Sofa cushion",
    "Rug",
)


@dataclass(frozen=True)
class Mix:
    """The shape of the generated traffic."""

    stores: int = 50
    abandon_rate: float = 0.15
    max_updates: int = 5
    start: datetime = DEFAULT_START
    span: timedelta = timedelta(days=1)
    median_total: float = 85.0
    total_spread: float = 0.95  # sigma of the log-normal
    repeat_shoppers: float = 0.25  # share of checkouts by a shopper seen before in that store
    no_contact_rate: float = 0.05  # guests who never typed an email or phone
    duplicate_rate: float = 0.0  # webhook redeliveries (same event id, a few seconds later)

    def __post_init__(self) -> None:
        if self.stores < 1:
            raise ValueError("stores must be >= 1")
        if not 0.0 <= self.abandon_rate <= 1.0:
            raise ValueError("abandon_rate must be within [0, 1]")
        if self.max_updates < 1:
            raise ValueError("max_updates must be >= 1")


def _money(value: Decimal | float) -> Decimal:
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Shopper:
    """A person at one store, derived only from (seed, store, number)."""

    def __init__(self, seed: int, store: str, number: int) -> None:
        rng = random.Random(f"{seed}:{store}:{number}")
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        has_phone = rng.random() < 0.6
        phone = f"+1{rng.choice(('212', '415', '312', '617', '303'))}555{rng.randrange(10000):04d}"
        self.logged_in = rng.random() < 0.55
        self.orders = rng.choice((0, 0, 1, 1, 2, 3, 5, 8, 13)) if self.logged_in else 0
        spent = sum(rng.lognormvariate(math.log(80), 0.7) for _ in range(self.orders))
        self.spent = _money(spent)
        self.contact: dict[str, Any] = {
            "email": f"{first.lower()}.{last.lower()}{number}@{rng.choice(_DOMAINS)}",
            "phone": phone if has_phone else None,
            "sms_phone": phone if has_phone and rng.random() < 0.8 else None,
            "customer_id": f"cust-{store}-{number}" if self.logged_in else None,
            "first_name": first,
            "email_consent": rng.random() < 0.85,
            "sms_consent": has_phone and rng.random() < 0.5,
            "locale": "en-US",
        }
        self.address = {"country_code": "US", "province_code": rng.choice(_PROVINCES)}


class EventGenerator:
    """Checkouts one after another (``checkouts()``), each a list of its events in time order."""

    def __init__(self, seed: int = 7, mix: Mix | None = None, expected_checkouts: int = 10_000):
        self.seed = seed
        self.mix = mix or Mix()
        self.rng = random.Random(seed)
        # A few big stores and a long tail (Zipf-like weights).
        weights = [1.0 / (index + 1) ** 0.8 for index in range(self.mix.stores)]
        total = sum(weights)
        running, self._store_cum = 0.0, []
        for weight in weights:
            running += weight / total
            self._store_cum.append(running)
        self._stores = [f"store-{index:03d}" for index in range(self.mix.stores)]
        self._platforms = {s: _PLATFORMS[i % len(_PLATFORMS)] for i, s in enumerate(self._stores)}
        self._seen: dict[str, int] = Counter()  # shoppers created per store
        self._shoppers: dict[tuple[str, int], _Shopper] = {}
        self._sequence = 0
        self.expected_checkouts = max(1, expected_checkouts)

    def _shopper(self, store: str) -> _Shopper:
        seen = self._seen[store]
        if seen and self.rng.random() < self.mix.repeat_shoppers:
            number = self.rng.randrange(seen)
        else:
            number = seen
            self._seen[store] = seen + 1
        key = (store, number)
        shopper = self._shoppers.get(key)
        if shopper is None:
            shopper = self._shoppers[key] = _Shopper(self.seed, store, number)
        return shopper

    def _items(self, target: float) -> list[dict[str, Any]]:
        rng = self.rng
        count = rng.choice((1, 1, 1, 2, 2, 3, 4))
        shares = [rng.random() + 0.2 for _ in range(count)]
        scale = target / sum(shares)
        items = []
        for index, share in enumerate(shares):
            quantity = rng.choice((1, 1, 1, 1, 2, 3))
            price = max(_money(share * scale / quantity), Decimal("0.50"))
            product = rng.randrange(len(_PRODUCTS))
            variant = rng.randrange(1, 5)
            items.append(
                {
                    "title": _PRODUCTS[product],
                    "quantity": quantity,
                    "price": str(price),
                    "product_id": f"prod-{product:03d}",
                    "variant_id": f"var-{product:03d}-{variant}",
                    "sku": f"SKU-{product:03d}-{variant}-{index}",
                }
            )
        return items

    def checkout(self) -> list[tuple[str, dict[str, Any]]]:
        """``(delivered_at, event)`` of one new checkout, in delivery order."""
        rng, mix = self.rng, self.mix
        self._sequence += 1
        store = self._stores[_bisect(self._store_cum, rng.random())]
        platform = self._platforms[store]
        checkout = f"chk-{self._sequence:08d}-{rng.getrandbits(24):06x}"
        shopper = None if rng.random() < mix.no_contact_rate else self._shopper(store)
        target = min(
            max(rng.lognormvariate(math.log(mix.median_total), mix.total_spread), 3.0), 8000.0
        )
        items = self._items(target)
        updates = rng.randint(1, mix.max_updates)
        contact_from = 1 if updates > 1 and rng.random() < 0.3 else 0
        at = mix.start + timedelta(seconds=rng.random() * mix.span.total_seconds())
        url = f"https://{store}.example.com/checkouts/{checkout}/recover"
        events: list[dict[str, Any]] = []
        subtotal = total = Decimal(0)
        contact: dict[str, Any] | None = None
        for step in range(updates):
            if step:
                at += timedelta(seconds=min(rng.expovariate(1 / 150.0), 3600.0) + 5.0)
            shown = items[: max(1, math.ceil((step + 1) * len(items) / updates))]
            subtotal = sum((Decimal(i["price"]) * i["quantity"] for i in shown), Decimal(0))
            shipping = Decimal(0) if subtotal >= 75 else Decimal("6.95")
            total = subtotal + shipping
            contact = shopper.contact if shopper is not None and step >= contact_from else None
            event: dict[str, Any] = {
                "type": "cart_updated",
                "event_id": f"{platform}-{checkout}-u{step + 1}",
                "store": store,
                "checkout": checkout,
                "platform": platform,
                "occurred_at": _iso(at),
                "currency": "USD",
                "total": str(total),
                "subtotal": str(subtotal),
                "line_items": shown,
                "contact": contact,
                "shipping_address": shopper.address if shopper is not None else None,
                "recovery_url": url,
            }
            if shopper is not None and shopper.logged_in:
                event["customer"] = {
                    "orders_count": shopper.orders,
                    "total_spent": str(shopper.spent),
                }
            events.append(event)
        if rng.random() >= mix.abandon_rate:
            at += timedelta(seconds=rng.uniform(60.0, 1200.0))
            events.append(
                {
                    "type": "cart_completed",
                    "event_id": f"{platform}-{checkout}-order",
                    "store": store,
                    "checkout": checkout,
                    "platform": platform,
                    "occurred_at": _iso(at),
                    "currency": "USD",
                    "total": str(total),
                    "order_id": f"ord-{self._sequence:08d}",
                    "contact": contact,
                    "discount_codes": ["WELCOME10"] if rng.random() < 0.05 else [],
                }
            )
        deliveries = [(event["occurred_at"], event) for event in events]
        if mix.duplicate_rate:
            for event in events:
                if rng.random() < mix.duplicate_rate:
                    # The same payload again, delivered a few seconds later.
                    late = datetime.fromisoformat(event["occurred_at"]) + timedelta(seconds=3)
                    deliveries.append((_iso(late), event))
            deliveries.sort(key=lambda pair: pair[0])
        return deliveries

    def checkouts(self) -> Iterator[list[tuple[str, dict[str, Any]]]]:
        while True:
            yield self.checkout()


def _bisect(cumulative: list[float], point: float) -> int:
    low, high = 0, len(cumulative) - 1
    while low < high:
        middle = (low + high) // 2
        if cumulative[middle] < point:
            low = middle + 1
        else:
            high = middle
    return low


def generate(count: int, seed: int = 7, mix: Mix | None = None) -> list[dict[str, Any]]:
    """Exactly ``count`` events in delivery order (by event time; a redelivery comes later).

    The last checkout may be cut short to hit ``count`` exactly.
    """
    if count < 0:
        raise ValueError("count must be >= 0")
    mix = mix or Mix()
    generator = EventGenerator(seed, mix, expected_checkouts=count // 3)
    deliveries: list[tuple[str, dict[str, Any]]] = []
    for checkout in generator.checkouts():
        if len(deliveries) >= count:
            break
        deliveries.extend(checkout[: count - len(deliveries)])
    deliveries.sort(key=lambda pair: pair[0])  # stable: a checkout's events keep their order
    return [event for _, event in deliveries]


def keyed(events: Iterable[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(store:checkout, event)``: the key of ``cart-events``."""
    for event in events:
        yield checkout_key(event["store"], event["checkout"]), event


def write_ndjson(events: Iterable[dict[str, Any]], path: Path) -> int:
    """One JSON object per line; returns the number written."""
    count = 0
    with path.open("wb") as out:
        for event in events:
            out.write(orjson.dumps(event))
            out.write(b"\n")
            count += 1
    return count


def read_ndjson(path: Path) -> list[dict[str, Any]]:
    with path.open("rb") as handle:
        return [orjson.loads(line) for line in handle if line.strip()]


@dataclass(frozen=True)
class Summary:
    events: int
    updates: int
    orders: int
    checkouts: int
    abandoned: int
    stores: int
    with_contact: int
    bands: dict[str, int]
    mean_bytes: float
    first: str
    last: str

    def render(self) -> str:
        share = self.abandoned / self.checkouts if self.checkouts else 0.0
        bands = ", ".join(f"{name} {count}" for name, count in self.bands.items())
        return "\n".join(
            [
                f"events      {self.events} ({self.updates} cart_updated, {self.orders} orders)",
                f"checkouts   {self.checkouts} in {self.stores} stores, "
                f"{self.abandoned} abandoned ({share:.1%}), {self.with_contact} reachable",
                f"bands       {bands} (final totals, default thresholds)",
                f"event size  {self.mean_bytes:.0f} bytes of JSON on average",
                f"time range  {self.first} .. {self.last}",
            ]
        )


BAND_LIMITS = (
    ("low", Decimal(0)),
    ("mid", Decimal(50)),
    ("high", Decimal(200)),
    ("vip", Decimal(600)),
)


def _band(total: Decimal) -> str:
    chosen = BAND_LIMITS[0][0]
    for name, minimum in BAND_LIMITS:
        if total >= minimum:
            chosen = name
    return chosen


def summarize(events: list[dict[str, Any]]) -> Summary:
    final: dict[tuple[str, str], dict[str, Any]] = {}
    completed: set[tuple[str, str]] = set()
    reachable: set[tuple[str, str]] = set()
    kinds: Counter[str] = Counter()
    size = 0
    for event in events:
        key = (event["store"], event["checkout"])
        kinds[event["type"]] += 1
        size += len(orjson.dumps(event))
        if event["type"] == "cart_completed":
            completed.add(key)
        else:
            final[key] = event
            if event.get("contact"):
                reachable.add(key)
    bands: Counter[str] = Counter(_band(Decimal(e["total"])) for e in final.values())
    checkouts = set(final) | completed
    return Summary(
        events=len(events),
        updates=kinds["cart_updated"],
        orders=kinds["cart_completed"],
        checkouts=len(checkouts),
        abandoned=len(checkouts - completed),
        stores=len({store for store, _ in checkouts}),
        with_contact=len(reachable),
        bands={name: bands[name] for name, _ in BAND_LIMITS},
        mean_bytes=size / len(events) if events else 0.0,
        first=events[0]["occurred_at"] if events else "-",
        last=events[-1]["occurred_at"] if events else "-",
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.events", description="Write realistic cart events as NDJSON."
    )
    parser.add_argument("--events", type=int, default=10_000, help="how many events")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--stores", type=int, default=Mix.stores)
    parser.add_argument("--abandon-rate", type=float, default=Mix.abandon_rate)
    parser.add_argument("--days", type=float, default=1.0, help="time range of the events")
    parser.add_argument("--start", default=_iso(DEFAULT_START), help="ISO time of the range start")
    parser.add_argument("--duplicates", type=float, default=0.0, help="redelivery rate")
    parser.add_argument("--out", type=Path, help="NDJSON file to write (default: summary only)")
    args = parser.parse_args(argv)
    start = datetime.fromisoformat(args.start.replace("Z", "+00:00"))
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    mix = Mix(
        stores=args.stores,
        abandon_rate=args.abandon_rate,
        start=start.astimezone(UTC),
        span=timedelta(days=args.days),
        duplicate_rate=args.duplicates,
    )
    events = generate(args.events, args.seed, mix)
    if args.out is not None:
        write_ndjson(events, args.out)
        print(f"wrote {len(events)} events to {args.out}")
    print(summarize(events).render())


if __name__ == "__main__":
    main()
