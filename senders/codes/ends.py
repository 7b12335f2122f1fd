"""Which issued codes a ``shopper-events`` record ends (pure: records and the ledger in).

- ``cart_converted``: an order ends the plan of its cart and every plan of its shopper (an
  order from the shopper stops everything). Codes issued for touches due before the order are
  withdrawn, except the codes the order used (``discount_codes``): those are spent, and
  deleting them would take the discount out of the store's reports.
- ``shopper_redacted``: every code issued to the shopper (matched on the shopper key, as stage B
  files the shopper).
- ``store_redacted``: every code of the store.

A redaction ends only codes of touches due before it: a cart the shopper used after it may have
a plan (and codes) of its own. Every record is compared by time, so re-reading the topic from its
start (a restarted sender does) ends nothing that was issued later.

Expiry needs nothing: the platform's end date ends the code.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from recovery.ids import shopper_key
from senders.codes.ledger import CodeLedger, Issued


def _when(value: Any) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp() if value.tzinfo is not None else None
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.timestamp() if moment.tzinfo is not None else None


def ended(record: Any, ledger: CodeLedger) -> list[tuple[Issued, str]]:
    """The live codes ``record`` ends, each with why."""
    if not isinstance(record, dict):
        return []
    kind, store = record.get("type"), record.get("store")
    at = _when(record.get("occurred_at"))
    if not isinstance(store, str) or at is None:
        return []
    if kind == "cart_converted":
        checkout, shopper = record.get("checkout"), record.get("shopper")
        used = {str(c).upper() for c in record.get("discount_codes") or () if c}
        found = {
            i.code: i
            for i in (
                (ledger.of_cart(store, checkout) if isinstance(checkout, str) else [])
                + (ledger.of_shopper(shopper) if isinstance(shopper, str) else [])
            )
            if i.store == store
        }
        return [
            (i, f"order ({checkout})")
            for i in found.values()
            if i.due_at <= at and i.code.upper() not in used
        ]
    if kind == "shopper_redacted":
        cid, email, phone = (record.get(k) for k in ("customer_id", "email", "phone"))
        key = shopper_key(
            store,
            str(cid) if isinstance(cid, str | int) else None,
            email if isinstance(email, str) else None,
            phone if isinstance(phone, str) else None,
        )
        given = {record.get("shopper")} | {key}
        return [
            (i, "shopper redacted")
            for s in given
            if isinstance(s, str)
            for i in ledger.of_shopper(s)
            if i.store == store and i.due_at <= at
        ]
    if kind == "store_redacted":
        return [(i, "store redacted") for i in ledger.of_store(store) if i.due_at <= at]
    return []
