"""A store's own history as simulation traffic: canonical NDJSON or Shopify's CSV exports.

- ``.ndjson`` / ``.jsonl``: canonical events, as ``cartbands replay`` reads them; the
  ``cart_updated`` events are the carts (orders in the file are left out: in a what-if the
  shoppers answer under the response model, not as they did).
- ``.csv``: a Shopify export. Shopify's orders export writes one row per line item, the
  order's own columns on its first row only (``Name, Email, Financial Status, Paid at, ...,
  Currency, Subtotal, Shipping, Taxes, Total, Discount Code, Discount Amount, ..., Created
  at, Lineitem quantity, Lineitem name, Lineitem price, ...``). A file with ``Paid at`` or
  ``Financial Status`` is an orders export: it gives each email's earlier orders (count and
  spend), so a cart's shopper is new, returning or repeat as at the store. Any other such
  file is read as an abandoned-checkout export with the same order-level columns, keyed by
  ``Id`` (else ``Name``): its rows are the carts.

Every row that cannot be read is named by file and line; one bad row refuses the file
(:class:`HistoryError` lists them all), so a what-if never runs on part of a history unseen.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from cartbands.replay import ReplayError, read_ndjson

MAX_PROBLEMS = 20
TIME_FORMATS = ("%Y-%m-%d %H:%M:%S %z", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M %z")


class HistoryError(Exception):
    """Rows of a history file that cannot be read, each as ``file:line: problem``."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = problems[:MAX_PROBLEMS]
        more = len(problems) - len(shown)
        text = "\n".join(f"  {p}" for p in shown) + (f"\n  ... and {more} more" if more else "")
        super().__init__(f"history: {len(problems)} row(s) cannot be read:\n{text}")


@dataclass(frozen=True)
class _Row:
    line: int
    cells: dict[str, str]


def _when(text: str) -> datetime:
    for form in TIME_FORMATS:
        try:
            return datetime.strptime(text.strip(), form)
        except ValueError:
            continue
    raise ValueError(f"not a time like 2026-05-01 10:00:00 +0200: {text!r}")


def _amount(text: str, column: str) -> Decimal:
    try:
        value = Decimal(text.strip().replace(",", ""))
    except InvalidOperation:
        raise ValueError(f"{column}: not an amount: {text!r}") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"{column}: not an amount: {text!r}")
    return value


def _groups(path: Path, text: str) -> tuple[list[str], list[list[_Row]]]:
    """Rows grouped by order/checkout (continuation rows leave the key blank or repeat it)."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    fields = list(reader.fieldnames or [])
    key = "Id" if "Id" in fields else "Name"
    groups: list[list[_Row]] = []
    last: str | None = None
    start = 2
    for cells in reader:
        row = _Row(start, {k: (v or "") for k, v in cells.items() if isinstance(k, str)})
        start = reader.line_num + 1
        name = row.cells.get(key, "").strip()
        if groups and (not name or name == last):
            groups[-1].append(row)
            continue
        last = name
        groups.append([row])
    return fields, groups


def _need(fields: list[str], path: Path, columns: Iterable[str]) -> None:
    missing = [c for c in columns if c not in fields]
    if missing:
        raise HistoryError([f"{path}:1: missing column(s) {', '.join(missing)}"])


def read_orders(path: Path) -> dict[str, list[tuple[datetime, Decimal]]]:
    """Each email's orders (time, total) from a Shopify orders export."""
    fields, groups = _groups(path, path.read_text(encoding="utf-8"))
    _need(fields, path, ("Name", "Email", "Total", "Created at"))
    out: dict[str, list[tuple[datetime, Decimal]]] = {}
    problems = []
    for group in groups:
        first = group[0]
        try:
            at = _when(first.cells["Created at"])
            total = _amount(first.cells["Total"], "Total")
        except ValueError as exc:
            problems.append(f"{path}:{first.line}: {exc}")
            continue
        email = first.cells["Email"].strip().lower()
        if email:
            out.setdefault(email, []).append((at, total))
    if problems:
        raise HistoryError(problems)
    return out


def _items(group: list[_Row]) -> list[dict[str, Any]]:
    items = []
    for row in group:
        title = row.cells.get("Lineitem name", "").strip()
        if not title:
            continue
        quantity = int(row.cells.get("Lineitem quantity") or 1)
        price = _amount(row.cells.get("Lineitem price") or "0", "Lineitem price")
        items.append({"title": title, "quantity": quantity, "price": str(price)})
    return items


def _yes(text: str) -> bool:
    return text.strip().lower() in ("yes", "true", "1")


def checkout_event(
    store: str, group: list[_Row], orders: dict[str, list[tuple[datetime, Decimal]]]
) -> tuple[float, dict[str, Any]]:
    """The ``cart_updated`` of one abandoned checkout (its rows); raises ValueError."""
    cells = group[0].cells
    key = (cells.get("Id") or cells.get("Name") or "").strip()
    if not key:
        raise ValueError("no Id or Name")
    at = _when(cells.get("Created at", ""))
    total = _amount(cells.get("Total", ""), "Total")
    currency = cells.get("Currency", "").strip().upper()
    if len(currency) != 3:
        raise ValueError(f"Currency: not an ISO code: {currency!r}")
    email = cells.get("Email", "").strip().lower()
    phone = (cells.get("Phone") or cells.get("Billing Phone") or "").strip() or None
    province = (cells.get("Billing Province") or cells.get("Shipping Province") or "").strip()
    country = (cells.get("Billing Country") or cells.get("Shipping Country") or "US").strip()
    event: dict[str, Any] = {
        "type": "cart_updated",
        "event_id": f"history-{key}",
        "store": store,
        "checkout": key,
        "platform": "shopify",
        "occurred_at": at.isoformat(),
        "currency": currency,
        "total": str(total),
        "line_items": _items(group),
        "contact": {
            "email": email or None,
            "phone": phone,
            "email_consent": _yes(cells.get("Accepts Marketing", "")),
            "customer_id": email or None,
        },
        "shipping_address": {"country_code": country[:2].upper(), "province_code": province},
    }
    earlier = [(when, spent) for when, spent in orders.get(email, []) if when < at]
    if earlier:
        spent = sum((s for _, s in earlier), Decimal(0))
        event["customer"] = {"orders_count": len(earlier), "total_spent": str(spent)}
    return at.timestamp(), event


def read_checkouts(
    path: Path, store: str, orders: dict[str, list[tuple[datetime, Decimal]]]
) -> list[tuple[float, dict[str, Any]]]:
    fields, groups = _groups(path, path.read_text(encoding="utf-8"))
    _need(fields, path, ("Total", "Currency", "Created at"))
    events, problems = [], []
    for group in groups:
        try:
            events.append(checkout_event(store, group, orders))
        except ValueError as exc:
            problems.append(f"{path}:{group[0].line}: {exc}")
    if problems:
        raise HistoryError(problems)
    return events


def is_orders_export(path: Path) -> bool:
    with path.open(encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle), [])
    return "Paid at" in header or "Financial Status" in header


def read_history(paths: list[Path], store: str) -> list[tuple[float, dict[str, Any]]]:
    """The carts of ``paths`` (NDJSON and CSV exports) as ``(epoch, cart_updated)``, in order."""
    events: list[tuple[float, dict[str, Any]]] = []
    csvs = [p for p in paths if p.suffix.lower() == ".csv"]
    orders: dict[str, list[tuple[datetime, Decimal]]] = {}
    try:
        for path in csvs:
            if is_orders_export(path):
                for email, found in read_orders(path).items():
                    orders.setdefault(email, []).extend(found)
        for path in paths:
            if path.suffix.lower() == ".csv":
                if not is_orders_export(path):
                    events += read_checkouts(path, store, orders)
                continue
            events += [
                (at, e)
                for at, e in read_ndjson(path)
                if e.get("type", "cart_updated") == "cart_updated"
            ]
    except ReplayError as exc:
        raise HistoryError([str(exc)]) from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise HistoryError([f"{exc}"]) from None
    events.sort(key=lambda pair: pair[0])
    return events
