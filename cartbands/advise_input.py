"""Read a store's cart history for ``cartbands advise``: CSV or NDJSON, every bad row named.

Forms (told apart by the file's first character: ``{`` is NDJSON, else CSV with a header):

- CSV with the columns ``total,currency,time,converted`` and optionally ``margin`` (gross
  margin share, ``0.45`` or ``45%``) or ``cost`` (the goods' cost, an amount); other columns
  are ignored.
- NDJSON, one object a line, either the same fields, or the canonical records the gateway
  writes (``cart_updated``, ``cart_completed``, also in ``{"batch": [...]}``): a checkout's
  latest snapshot is its cart, converted when a ``cart_completed`` names its checkout; a
  ``cart_completed`` with no snapshot is an order. Other record types are skipped.

- Shopify's orders export (columns ``Name``, ``Currency``, ``Total``, ``Created at``, as the
  export's header names them; an order's own columns fill its first line only, its further line
  items leave them empty): each order is a converted cart, so the advice is about order values.

``time`` is ISO 8601 (``2026-01-15 10:23:45 -0500`` too); one without an offset is UTC.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from recovery.advise import HistoryCart
from recovery.money import MoneyError, bounded_amount, check_currency, parse_amount

TRUE = {"true", "1", "yes", "y", "t"}
FALSE = {"false", "0", "no", "n", "f", ""}
REQUIRED = ("total", "currency", "time", "converted")
CANONICAL = {"cart_updated", "cart_completed"}
SHOPIFY_ORDERS = ("name", "currency", "total", "created at")


class RowError(ValueError):
    """One row the advisor cannot use, and why."""


@dataclass
class History:
    carts: list[HistoryCart] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line, why)
    skipped: int = 0  # canonical records of other types, or other stores'


def _time(value: Any) -> datetime:
    if not isinstance(value, str) or not value.strip():
        raise RowError(f"time must be an ISO 8601 date-time, not {value!r}")
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise RowError(f"time must be an ISO 8601 date-time, not {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if value is not None else ""
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise RowError(f"converted must be true or false, not {value!r}")


def _amount(value: Any, name: str) -> Decimal:
    if isinstance(value, str):
        value = value.strip()
    try:
        amount = bounded_amount(value)
    except MoneyError as exc:
        raise RowError(f"{name}: {exc}") from None
    if amount < 0:
        raise RowError(f"{name} must not be negative: {value!r}")
    return amount


def _share(value: Any) -> Decimal:
    text = str(value).strip() if not isinstance(value, bool) else ""
    percent = text.endswith("%")
    try:
        share = parse_amount(text.rstrip("%").strip())
    except MoneyError:
        raise RowError(f"margin must be a share like 0.45 or 45%, not {value!r}") from None
    share = share / 100 if percent else share
    if not 0 <= share <= 1:
        raise RowError(f"margin must be between 0 and 1 (or 0% and 100%), not {value!r}")
    return share


def simple_cart(row: dict[str, Any]) -> HistoryCart:
    """A cart from the simple fields; :class:`RowError` says what is wrong."""
    missing = [name for name in REQUIRED if row.get(name) in (None, "") and name != "converted"]
    if "converted" not in row:
        missing.append("converted")
    if missing:
        raise RowError(f"missing {', '.join(missing)}")
    total = _amount(row["total"], "total")
    try:
        currency = check_currency(str(row["currency"]).strip().upper())
    except MoneyError as exc:
        raise RowError(str(exc)) from None
    margin = None
    if row.get("margin") not in (None, ""):
        margin = _share(row["margin"])
    elif row.get("cost") not in (None, ""):
        cost = _amount(row["cost"], "cost")
        if cost > total:
            raise RowError(f"cost {cost} exceeds the total {total}")
        margin = (total - cost) / total if total > 0 else None
    return HistoryCart(total, currency, _time(row["time"]), _bool(row["converted"]), margin)


def read_history(text: str, store: str | None = None) -> History:
    """Every usable cart of ``text`` and every problem, by line number (1-based)."""
    if text.lstrip().startswith("{"):
        return _ndjson(text, store)
    return _csv(text)


def _csv(text: str) -> History:
    history = History()
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        fields = [name.strip().lower() for name in reader.fieldnames or []]
    except csv.Error as exc:
        history.problems.append((1, f"not a CSV header: {exc}"))
        return history
    if "converted" not in fields and all(name in fields for name in SHOPIFY_ORDERS):
        reader.fieldnames = fields
        return _shopify_orders(reader)
    absent = [name for name in REQUIRED if name not in fields]
    if absent:
        history.problems.append(
            (1, f"the CSV header lacks {', '.join(absent)} (needs {', '.join(REQUIRED)})")
        )
        return history
    reader.fieldnames = fields
    for line, row in _rows(reader, history):
        if None in row:
            history.problems.append((line, "more fields than the header has"))
            continue
        if all(value in (None, "") for value in row.values()):
            continue
        try:
            history.carts.append(simple_cart(row))
        except RowError as exc:
            history.problems.append((line, str(exc)))
    return history


def _rows(reader: csv.DictReader[str], history: History) -> Iterator[tuple[int, dict[str, Any]]]:
    """The rows with their line numbers; a line the csv module cannot read is a problem."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            history.problems.append((reader.line_num, f"unreadable CSV: {exc}"))
            continue
        yield reader.line_num, row


def _shopify_orders(reader: csv.DictReader[str]) -> History:
    history = History()
    seen: set[str] = set()
    for line, row in _rows(reader, history):
        name = (row.get("name") or "").strip()
        if not name or name in seen or not (row.get("total") or "").strip():
            continue  # a further line item of an order already read
        seen.add(name)
        try:
            history.carts.append(
                simple_cart(
                    {
                        "total": row["total"],
                        "currency": row.get("currency"),
                        "time": row.get("created at"),
                        "converted": True,
                    }
                )
            )
        except RowError as exc:
            history.problems.append((line, str(exc)))
    return history


def _records(text: str, history: History) -> Iterable[tuple[int, dict[str, Any]]]:
    # split on "\n" only, as editors number lines: a U+2028 may sit inside a JSON string
    for line, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw, parse_float=Decimal)
        except ValueError as exc:
            history.problems.append((line, f"not JSON: {exc}"))
            continue
        if isinstance(value, dict) and isinstance(value.get("batch"), list):
            for item in value["batch"]:
                if isinstance(item, dict):
                    yield line, item
                else:
                    history.problems.append((line, "a batch item is not an object"))
        elif isinstance(value, dict):
            yield line, value
        else:
            history.problems.append((line, "not a JSON object"))


def _ndjson(text: str, store: str | None) -> History:
    history = History()
    latest: dict[tuple[str, str], tuple[datetime, int, HistoryCart]] = {}
    orders: dict[tuple[str, str], tuple[int, HistoryCart]] = {}
    for line, record in _records(text, history):
        kind = record.get("type")
        if kind is None:
            try:
                history.carts.append(simple_cart(record))
            except RowError as exc:
                history.problems.append((line, str(exc)))
            continue
        if kind not in CANONICAL or (store is not None and record.get("store") != store):
            history.skipped += 1
            continue
        try:
            key = (str(record["store"]), str(record["checkout"]))
            cart = HistoryCart(
                _amount(record["total"], "total"),
                check_currency(record.get("currency")),
                _time(record.get("occurred_at")),
                kind == "cart_completed",
            )
        except KeyError as exc:
            history.problems.append((line, f"{kind} lacks {exc.args[0]}"))
            continue
        except (RowError, MoneyError) as exc:
            history.problems.append((line, str(exc)))
            continue
        if kind == "cart_completed":
            orders.setdefault(key, (line, cart))
        elif key not in latest or cart.time >= latest[key][0]:
            latest[key] = (cart.time, line, cart)
    for key, (_, _, cart) in latest.items():
        converted = key in orders
        history.carts.append(
            HistoryCart(cart.total, cart.currency, cart.time, converted, cart.margin)
        )
    history.carts.extend(order for key, (_, order) in orders.items() if key not in latest)
    return history
