"""Social proof from real orders: per store and product, the orders of the last N days.

The senders follow ``shopper-events`` (every partition), whose ``cart_converted`` records carry
the ordered products (``items``: ``product_id`` and ``title`` of each line, from stage A). This
module folds those records into per-store, per-product daily counts and answers "how many
orders of this store contained this product in the last N days" at a given time. A touch is
keyed by shopper, so a per-product table on stage B's partitions could not be read where the
touch is emitted, and a global (replicated) table would copy every order to every worker and
freeze the count into the touch when it is planned, hours or days before it is sent. The
senders already read every partition, so the count is taken there, at send time, and is the
store's own: a count never mixes stores.

What a count means, exactly: the number of distinct orders (by checkout) of the store whose
time falls on the UTC day of ``now`` or on one of the ``window - 1`` days before it, and whose
items include the product. So the window never spans more than ``window`` days and the claim
"in the last N days" holds. Products are identified by ``product_id``, else by their title
(case-folded).

Bounded state, and every bound errs low, never high (a count is never more than the truth):

- days older than the longest window are dropped as newer orders arrive;
- at most ``max_stores`` stores, least recently ordered from forgotten first;
- per store and day at most ``max_products`` products: a new product beyond that evicts the
  day's least ordered one (its orders of that day are no longer counted);
- per store and day at most ``max_orders`` distinct orders are remembered (to drop the copies
  stage A may send again after a crash); the day counts no order beyond that.

Pure: records and times in, counts out. Restarting a sender rebuilds it by reading the topic
again from its beginning (as the sender's follower does anyway), so counts survive a restart
as far back as the topic's retention reaches.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

DAY = 86400
MAX_WINDOW_DAYS = 30
MAX_STORES = 1000
MAX_PRODUCTS = 500
MAX_ORDERS = 20_000


def day_of(moment: datetime) -> int:
    """The UTC day number (days since the epoch) of an aware datetime."""
    return int(moment.timestamp() // DAY)


def product_key(item: Mapping[str, Any]) -> str | None:
    """What identifies a line's product within its store: its id, else its title."""
    product = item.get("product_id")
    if isinstance(product, str | int) and not isinstance(product, bool) and str(product).strip():
        return f"p:{str(product).strip()}"
    title = item.get("title")
    if isinstance(title, str) and title.strip():
        return f"t:{' '.join(title.split()).casefold()}"
    return None


@dataclass(frozen=True, slots=True)
class Order:
    """One order as counted: its store, identity (the checkout), UTC day and products."""

    store: str
    checkout: str
    day: int
    products: frozenset[str]


def _day_of_text(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return day_of(moment)


def order_of(record: Any) -> Order | None:
    """The order a ``cart_converted`` record reports, or None (another record, or no
    usable store, checkout, time or product)."""
    if not isinstance(record, dict) or record.get("type") != "cart_converted":
        return None
    store, checkout = record.get("store"), record.get("checkout")
    if not isinstance(store, str) or not store or not isinstance(checkout, str) or not checkout:
        return None
    day = _day_of_text(record.get("occurred_at"))
    items = record.get("items")
    if day is None or not isinstance(items, list):
        return None
    products = frozenset(
        key for item in items if isinstance(item, dict) and (key := product_key(item)) is not None
    )
    if not products:
        return None
    return Order(store, checkout, day, products)


def _digest(checkout: str) -> int:
    return int.from_bytes(hashlib.blake2b(checkout.encode(), digest_size=8).digest(), "big")


class _Day:
    __slots__ = ("orders", "products")

    def __init__(self) -> None:
        self.orders: set[int] = set()
        self.products: dict[str, int] = {}


class _Store:
    __slots__ = ("days", "newest")

    def __init__(self) -> None:
        self.days: dict[int, _Day] = {}
        self.newest = 0


class ProductOrders:
    """Per-store, per-product daily order counts over the last ``keep_days`` days."""

    def __init__(
        self,
        keep_days: int = 7,
        max_stores: int = MAX_STORES,
        max_products: int = MAX_PRODUCTS,
        max_orders: int = MAX_ORDERS,
    ) -> None:
        if not 1 <= keep_days <= MAX_WINDOW_DAYS:
            raise ValueError(f"keep_days must be between 1 and {MAX_WINDOW_DAYS}")
        if min(max_stores, max_products, max_orders) < 1:
            raise ValueError("every bound must be at least 1")
        self.keep_days = keep_days
        self.max_stores = max_stores
        self.max_products = max_products
        self.max_orders = max_orders
        self._stores: OrderedDict[str, _Store] = OrderedDict()

    def apply(self, record: Any, today: int | None = None) -> bool:
        """Take one ``shopper-events`` value into account; False when it changes nothing.

        An order stamped after ``today`` + 1 (a platform's clock gone wrong) is ignored: taken,
        it would push the store's days forward and drop every real one. A ``store_redacted``
        forgets the store's counts: the merchant asked for its data to go.
        """
        if isinstance(record, dict) and record.get("type") == "store_redacted":
            store = record.get("store")
            return isinstance(store, str) and self._stores.pop(store, None) is not None
        order = order_of(record)
        if order is None or (today is not None and order.day > today + 1):
            return False
        return self.add(order)

    def add(self, order: Order) -> bool:
        """Count one order; False when it is a copy, too old, or past a bound."""
        store = self._stores.get(order.store)
        if store is None:
            store = self._stores[order.store] = _Store()
            store.newest = order.day
            while len(self._stores) > self.max_stores:
                self._stores.popitem(last=False)
        if order.day <= store.newest - self.keep_days:
            return False
        self._stores.move_to_end(order.store)
        if order.day > store.newest:
            store.newest = order.day
            cutoff = order.day - self.keep_days
            for day in [day for day in store.days if day <= cutoff]:
                del store.days[day]
        bucket = store.days.get(order.day)
        if bucket is None:
            bucket = store.days[order.day] = _Day()
        digest = _digest(order.checkout)
        if digest in bucket.orders or len(bucket.orders) >= self.max_orders:
            return False
        bucket.orders.add(digest)
        counts = bucket.products
        for product in sorted(order.products):
            if product in counts:
                counts[product] += 1
                continue
            if len(counts) >= self.max_products:
                least = min(counts, key=counts.__getitem__)
                del counts[least]
            counts[product] = 1
        return True

    def count(self, store: str, product: str, day: int, window: int) -> int:
        """Orders of ``store`` containing ``product`` on ``day`` or the ``window - 1`` days
        before it (see the module's docstring for what is, and is not, counted)."""
        known = self._stores.get(store)
        if known is None or window < 1:
            return 0
        first = day - min(window, self.keep_days) + 1
        return sum(
            bucket.products.get(product, 0)
            for bucket_day, bucket in known.days.items()
            if first <= bucket_day <= day
        )

    def forget(self, store: str) -> None:
        self._stores.pop(store, None)

    def stores(self) -> list[str]:
        return list(self._stores)

    def entries(self) -> int:
        """Remembered order ids plus product counters: what the bounds bound."""
        return sum(
            len(bucket.orders) + len(bucket.products)
            for store in self._stores.values()
            for bucket in store.days.values()
        )

    def days_of(self, store: str) -> list[int]:
        known = self._stores.get(store)
        return sorted(known.days) if known is not None else []


@dataclass(frozen=True, slots=True)
class Proof:
    """What a message may say: ``orders`` orders contained ``title`` in the last ``days``."""

    title: str
    orders: int
    days: int


def best_seller(
    counts: ProductOrders,
    store: str,
    items: Iterable[Mapping[str, Any]],
    day: int,
    window: int,
    min_orders: int,
) -> Proof | None:
    """The cart's item ordered most often in the store's window, if at least ``min_orders``
    times; ties go to the first in the cart. None when no item reaches the threshold."""
    best: Proof | None = None
    for item in items:
        key = product_key(item)
        title = item.get("title")
        if key is None or not isinstance(title, str) or not title.strip():
            continue
        orders = counts.count(store, key, day, window)
        if orders >= max(min_orders, 1) and (best is None or orders > best.orders):
            best = Proof(" ".join(title.split()), orders, window)
    return best
