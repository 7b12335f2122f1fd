"""The records of ``cart-events`` as stage A reads them: typed structs, decoded once at its edge.

A cart event (``cart_updated`` or ``cart_completed``, key ``store:checkout``) becomes a
:class:`CartEvent` in one typed conversion: each field has the type the wire form allows or the
record is refused with the field's path (:func:`read_cart_event`). Fields the stages do not read
are dropped, so a decoded event is already the cart's snapshot: stage A keeps it by reference
and writes it out without nulls (``omit_defaults``).

Stage A's agent reads a message's bytes straight into these structs (:func:`cart_events_in`;
a batch that also holds other records one record at a time: :func:`batch_records`,
:func:`cart_event_of`), and decodes with orjson only what is not a cart event, or a record it
refuses, which a dead letter keeps as it was sent (:func:`record_of`).

The parts of a cart (:class:`LineItem`, :class:`Contact`, :class:`Address`,
:class:`CustomerHistory`) have the fields of the canonical records (:mod:`schemas.records`, a test
keeps them equal), and stage B stores an abandoned cart's parts as rows in their field order
(``recovery.stored_cart``): a field is appended to a part, never inserted.

Field presence and values (a non-empty store, a known currency, bounded amounts) are checked
by stage A itself (``recovery.checkouts.validate``), which names the field in its own words.
Amounts stay decimal strings (or integers) here, as on the wire: stage A only bounds them.
The structs hold no references to other containers that could form a cycle, so they stay out
of the cyclic collector (``gc=False``).

Faust-free on purpose: the pure core imports this module.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import orjson

from schemas.field_reasons import field_reason

# a 64-bit integer: orjson reads a JSON integer wider than 64 bits as a float, msgspec as an
# int, so a bound keeps a read from bytes and a read through orjson taking the same values
Int = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
Amount = str | Int  # a decimal string; an integer is taken too (never a float: no exact cents)
Identifier = str | Int  # platform ids: some platforms send numbers


class LineItem(msgspec.Struct, omit_defaults=True, gc=False):
    """One line of a cart; ``price`` the unit price, ``cost`` the unit cost when known."""

    title: str | None = None
    quantity: Int | str | float | None = None  # stage B takes "2" and 2.0 as 2
    price: Amount | None = None
    product_id: Identifier | None = None
    variant_id: Identifier | None = None
    sku: Identifier | None = None
    cost: Amount | None = None


class Contact(msgspec.Struct, omit_defaults=True, gc=False):
    email: str | None = None
    phone: str | None = None
    sms_phone: str | None = None
    customer_id: Identifier | None = None
    first_name: str | None = None
    email_consent: bool = False
    sms_consent: bool = False
    locale: str | None = None


class CustomerHistory(msgspec.Struct, omit_defaults=True, gc=False):
    orders_count: Int | str | float | None = None
    total_spent: Amount | None = None


class Address(msgspec.Struct, omit_defaults=True, gc=False):
    country_code: str | None = None
    province_code: str | None = None
    zip: str | None = None


class CartEvent(msgspec.Struct, omit_defaults=True, gc=False):
    """A checkout created, changed or completed: ``cart_updated`` carries its latest full
    snapshot, ``cart_completed`` the order's total and the codes it used (``discounts``,
    ``discount_codes``: checked by ``recovery.redemption``, which names the entry at fault)."""

    type: str | None = None  # cart_updated when absent
    store: str | None = None
    checkout: str | None = None
    event_id: str | None = None
    occurred_at: str | Int | float | None = None  # ISO-8601, or epoch seconds
    # UNSET when absent: an event that names no platform is counted as a generic one
    platform: str | msgspec.UnsetType | None = msgspec.UNSET
    currency: str | None = None
    # required: UNSET when absent; null is taken (an order that does not say falls back on
    # the checkout's total)
    total: Amount | msgspec.UnsetType | None = msgspec.UNSET
    subtotal: Amount | None = None
    shipping: Amount | None = None  # the shipping charge included in ``total``, when known
    presentment_currency: str | None = None
    presentment_total: Amount | None = None
    line_items: list[LineItem] | None = None
    contact: Contact | None = None
    customer: CustomerHistory | None = None
    shipping_address: Address | None = None
    billing_address: Address | None = None
    recovery_url: str | None = None
    completed_at: str | Int | float | None = None
    order_id: Identifier | None = None
    discounts: Any = None
    discount_codes: Any = None


# what a cart holds whatever its delivery: the fields kept in a checkout's stored snapshot
DELIVERY_FIELDS = (
    "type", "event_id", "platform", "completed_at", "order_id", "discounts", "discount_codes",
)  # fmt: skip


class BadRecord(ValueError):
    """A record whose fields do not have the types of its schema; the message starts with the
    path of the first field at fault (``line_items[0].price: ...``)."""


_CONVERT = msgspec.convert


def read_cart_event(record: Any) -> CartEvent:
    """The cart event ``record`` (decoded JSON) holds, or :class:`BadRecord`."""
    if type(record) is not dict:
        raise BadRecord("event: expected a JSON object")
    try:
        event: CartEvent = _CONVERT(record, CartEvent)
    except msgspec.ValidationError as error:
        raise BadRecord(field_reason(error)) from None
    return event


CART_EVENT_TYPES = (None, "cart_updated", "cart_completed")


class CartBatch(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A ``{"batch": [...]}`` message (schemas.batches) of cart events."""

    batch: list[CartEvent]


_READ_EVENT = msgspec.json.Decoder(CartEvent).decode
_READ_BATCH = msgspec.json.Decoder(CartBatch).decode
_READ_ARRAY = msgspec.json.Decoder(list[CartEvent]).decode
INT_MIN, INT_MAX = -(2**63), 2**64 - 1


def _wide_int(value: Any) -> bool:
    """Whether ``value`` (decoded JSON) holds an integer orjson would have read as a float."""
    if type(value) is int:
        return not INT_MIN <= value <= INT_MAX
    if type(value) is list:
        return any(_wide_int(item) for item in value)
    if type(value) is dict:
        return any(_wide_int(item) for item in value.values())
    return False


def _plain(event: CartEvent) -> bool:
    """Whether a cart event read from bytes is what a read through orjson would make of its
    record: a cart event's type, and no integer in its codes (read as they come, ``Any``) that
    orjson reads as a float."""
    if event.type not in CART_EVENT_TYPES:
        return False
    return not (_wide_int(event.discounts) or _wide_int(event.discount_codes))


def _batched(payload: bytes) -> str | None:
    """How a message holds many records: ``"array"``, ``"batch"`` (``{"batch": [...]}`` as
    the pipeline's producers write it), or None for one record."""
    head = payload[:16].lstrip()
    if head.startswith(b"["):
        return "array"
    if head.startswith(b'{"batch"'):
        return "batch"
    return None


def cart_events_in(payload: bytes) -> list[CartEvent] | None:
    """The cart events of a message read straight from its bytes into structs, when it holds
    cart events only (one, a batch or a JSON array) and each has the types of the schema.
    None for anything else (a tick, a redaction, a field of the wrong type, bytes that are not
    JSON): the caller reads that message one record at a time, so a refused record is named,
    and kept, as it was sent."""
    shape = _batched(payload)
    try:
        if shape == "array":
            events = _READ_ARRAY(payload)
        elif shape == "batch":
            events = _READ_BATCH(payload).batch
        else:
            events = [_READ_EVENT(payload)]
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    for event in events:
        if not _plain(event):
            return None
    return events


class RawBatch(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A ``{"batch": [...]}`` message, each record kept as its JSON bytes."""

    batch: list[msgspec.Raw]


_READ_RAW_BATCH = msgspec.json.Decoder(RawBatch).decode
_READ_RAW_ARRAY = msgspec.json.Decoder(list[msgspec.Raw]).decode


def batch_records(payload: bytes) -> list[msgspec.Raw] | None:
    """The records of a batch message (``{"batch": [...]}`` or a JSON array), each as its JSON
    bytes; None for any other message (one record) or bytes that are not JSON."""
    shape = _batched(payload)
    try:
        if shape == "array":
            return _READ_RAW_ARRAY(payload)
        if shape == "batch":
            return _READ_RAW_BATCH(payload).batch
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    return None


def cart_event_of(raw: bytes | msgspec.Raw) -> CartEvent | None:
    """The cart event one record's JSON holds, read straight into a struct; None for anything
    :func:`cart_events_in` would not read (another record type, a field of the wrong type)."""
    try:
        event = _READ_EVENT(raw)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    return event if _plain(event) else None


def record_of(raw: bytes | msgspec.Raw) -> Any:
    """One record's JSON as orjson decodes it: the record as it was sent."""
    return orjson.loads(memoryview(raw))


def total_of(cart: CartEvent) -> Amount | None:
    """The cart's total, None when it has none."""
    total = cart.total
    return None if total is msgspec.UNSET else total


def strip_delivery(cart: dict[str, Any]) -> dict[str, Any]:
    """``cart`` (a snapshot's builtins) without its delivery and order fields, in place."""
    for name in DELIVERY_FIELDS:
        cart.pop(name, None)
    return cart


def cart_dict(cart: CartEvent) -> dict[str, Any]:
    """The wire form of a snapshot: no nulls, no defaults, no delivery metadata."""
    return strip_delivery(msgspec.to_builtins(cart))
