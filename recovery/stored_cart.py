"""The compact form of the cart a recovery plan is re-derived from, in stage B's state.

Stage B keeps the abandoned cart of every active plan for as long as its touches are pending
(days), so it is most of a pending cart's state. In the wire form most of those bytes were
field names: ``"product_id":`` on every line item, ``"email_consent":`` on every contact
(800 B mean per pending shopper in bench.timers' mix; 538 B in this form). Stored here:

- line items, the contact, addresses and the platform's order history become rows: lists of
  their values in a fixed field order (``None`` for a field that is absent, trailing ones cut);
- the other known fields get short names; anything else is kept verbatim under ``x``, as is a
  part whose shape a row cannot hold exactly (an unknown field in a line item, a ``null``
  inside an address, a non-list ``line_items``).

``unpack(pack(cart)) == snapshot(cart)`` for every dict: the wire form minus nulls, delivery
metadata and line items beyond the cap (the property the tests check). ``unpack`` also
accepts a wire-form cart, so states written before this form existed are still read. Stage A
keeps an open checkout's cart in the wire form: it changes on every update, and packing it
there would cost more CPU per event than the bytes are worth for a checkout that lives an hour.
"""

from __future__ import annotations

from typing import Any

from schemas.cart_events import Address, Contact, CustomerHistory, LineItem

MAX_ITEMS = 10
# delivery metadata: a cart's content does not depend on them
DELIVERY_FIELDS = frozenset({"type", "event_id", "platform", "completed_at"})

# A row holds its part's fields in the order the cart's schema declares them, so a field the
# schema gains (appended, never inserted: stored rows are read by position) is stored with no
# change here.
ITEM_FIELDS: tuple[str, ...] = LineItem.__struct_fields__
CONTACT_FIELDS: tuple[str, ...] = Contact.__struct_fields__
ADDRESS_FIELDS: tuple[str, ...] = Address.__struct_fields__
HISTORY_FIELDS: tuple[str, ...] = CustomerHistory.__struct_fields__

# wire name -> short name, for the fields kept as they are
SCALARS = {
    "currency": "cu",
    "total": "t",
    "subtotal": "s",
    "shipping": "sp",
    "peak_total": "pk",
    "presentment_currency": "pc",
    "presentment_total": "pt",
    "recovery_url": "u",
    "store": "st",
    "checkout": "ck",
    "occurred_at": "at",
}
# wire name -> (short name, row fields), for the fields kept as rows
ROWS = {
    "contact": ("k", CONTACT_FIELDS),
    "shipping_address": ("a", ADDRESS_FIELDS),
    "billing_address": ("b", ADDRESS_FIELDS),
    "customer": ("h", HISTORY_FIELDS),
}
ITEMS = "i"
VERBATIM = "x"
_WIRE_OF = {short: wire for wire, short in SCALARS.items()}
_ROW_OF = {short: (wire, fields) for wire, (short, fields) in ROWS.items()}
PACKED_KEYS = frozenset({*_WIRE_OF, *_ROW_OF, ITEMS, VERBATIM})
_ITEM_KEYS = frozenset(ITEM_FIELDS)
_ROW_KEYS = {wire: frozenset(fields) for wire, (_, fields) in ROWS.items()}
_PARTS = ("line_items", *ROWS)
_KNOWN = frozenset({*SCALARS, *_PARTS})
_KEEP = object()


def _row(values: dict[str, Any], fields: tuple[str, ...]) -> list[Any]:
    row = list(map(values.get, fields))
    while row and row[-1] is None:
        row.pop()
    return row


def _from_row(row: list[Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {name: value for name, value in zip(fields, row, strict=False) if value is not None}


def _items(items: list[Any], max_items: int) -> list[Any] | None:
    """Rows for the line items, or None when one of them cannot be a row."""
    rows = []
    for item in items[:max_items]:
        if not isinstance(item, dict) or not item.keys() <= _ITEM_KEYS:
            return None
        rows.append(_row(item, ITEM_FIELDS))
    return rows


def _no_nulls(item: Any) -> Any:
    return {k: v for k, v in item.items() if v is not None} if isinstance(item, dict) else item


def _pack_part(name: str, value: Any, max_items: int, out: dict[str, Any]) -> Any:
    """Store a line-item list or a record field as rows in ``out``; what cannot be a row is
    returned, to be kept verbatim (``_KEEP`` when the part is stored)."""
    if name == "line_items":
        if not isinstance(value, list):
            return value
        rows = _items(value, max_items)
        if rows is None:
            return [_no_nulls(item) for item in value[:max_items]]
        out[ITEMS] = rows
        return _KEEP
    if name == "contact" and isinstance(value, dict):
        value = {k: v for k, v in value.items() if v is not None and v is not False}
    short, fields = ROWS[name]
    if not isinstance(value, dict) or not value.keys() <= _ROW_KEYS[name] or None in value.values():
        return value
    out[short] = _row(value, fields)
    return _KEEP


def pack(
    cart: dict[str, Any], drop: frozenset[str] = DELIVERY_FIELDS, max_items: int = MAX_ITEMS
) -> dict[str, Any]:
    """The stored form of ``cart`` (a cart event or a snapshot), without the ``drop`` fields."""
    out: dict[str, Any] = {}
    for wire, short in SCALARS.items():
        value = cart.get(wire)
        if value is not None and wire not in drop:
            out[short] = value
    extra: dict[str, Any] = {}
    for name in _PARTS:
        value = cart.get(name)
        if value is not None and name not in drop:
            kept = _pack_part(name, value, max_items, out)
            if kept is not _KEEP:
                extra[name] = kept
    for name in cart.keys() - _KNOWN - drop:
        if cart[name] is not None:
            extra[name] = cart[name]
    if extra:
        out[VERBATIM] = extra
    return out


def is_packed(cart: dict[str, Any]) -> bool:
    """Whether ``cart`` is in the stored form (a wire-form cart has a ``currency`` or ``total``)."""
    return cart.keys() <= PACKED_KEYS


def unpack(cart: dict[str, Any]) -> dict[str, Any]:
    """The wire form of a stored cart; a cart already in wire form is returned as it is."""
    if not is_packed(cart):
        return cart
    out: dict[str, Any] = {}
    for short, value in cart.items():
        wire = _WIRE_OF.get(short)
        if wire is not None:
            out[wire] = value
        elif short == ITEMS:
            out["line_items"] = [_from_row(row, ITEM_FIELDS) for row in value]
        elif short == VERBATIM:
            out.update(value)
        else:
            wire, fields = _ROW_OF[short]
            out[wire] = _from_row(value, fields)
    return out
