"""Stage A decisions: the life of one checkout, as transitions of its state.

A checkout is *open* while the shopper is active, *abandoned* once it has been idle for the
store's abandonment window with a way to reach the shopper, *converted* once completed (or an
order carries its token), *emptied* when its cart has no value left. A later update re-opens an
abandoned checkout and a new idle period abandons it again as a new cycle (new plan, new ids).

Events are typed (:class:`schemas.cart_events.CartEvent`, read at stage A's edge by
:func:`read_event`) and the state is a :class:`recovery.checkout_state.CheckoutState` that
belongs to the caller's window: a transition changes it in place and returns it, so a window
copies nothing per event and writes each checkout once. The latest cart is the event itself,
kept by reference.

Every transition returns ``(state, effects)``; the effects are the records stage A sends to
``shopper-events`` (and the counters it keeps). Each record carries ``sk``, stage A's time for
it: ``[event time, 1]`` for what an event caused, ``[tick time, 0]`` for what a tick did (a
tick's records come before the events of its time, as ticks are fed before them); stage B
applies a shopper's records in that order however its partitions interleave them. Nothing here
reads a clock or does I/O.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any, Final, NamedTuple, TypeVar

import msgspec

from recovery.checkout_state import CheckoutState
from recovery.ids import shopper_key
from recovery.money import MoneyError, bounded_amount, parse_amount, plainly_bounded
from recovery.policy import StorePolicy
from recovery.redemption import BadDiscount, order_discounts
from recovery.segments import goods_value
from recovery.stored_cart import MAX_ITEMS
from schemas.cart_events import (
    BadRecord,
    CartEvent,
    LineItem,
    cart_dict,
    read_cart_event,
    total_of,
)
from schemas.shopper_events import (
    CartAbandoned,
    CartConverted,
    CartEmptied,
    CartReopened,
    StageARecord,
)

TICK_PHASE: Final = 0  # the order of a record in ``sk`` among those of the same time: ticks first
EVENT_PHASE: Final = 1
MAX_IDS = 8

Left = TypeVar("Left", CartReopened, CartEmptied)

EPOCH_MIN = datetime(1, 1, 2, tzinfo=UTC).timestamp()  # what iso() can write back
EPOCH_MAX = datetime(9999, 12, 30, tzinfo=UTC).timestamp()


class BadEvent(ValueError):
    """A cart event that cannot be used; the message says which field and why."""


class Effect(NamedTuple):
    """Something stage A must do besides storing state: a record to emit, or a count.

    A named tuple, not a frozen dataclass: one is made for most events, and a frozen
    dataclass's ``__init__`` costs several times as much."""

    kind: str  # abandoned | converted | reopened | emptied | duplicate | stale | forgotten
    key: str | None = None
    record: StageARecord | None = None


def epoch(value: Any, field: str) -> float:
    """ISO-8601 (``Z`` or offset) or epoch seconds -> epoch seconds (UTC)."""
    if isinstance(value, bool):
        raise BadEvent(f"{field}: expected an ISO-8601 time")
    if isinstance(value, int | float):
        if not EPOCH_MIN <= value <= EPOCH_MAX:  # NaN included: a datetime could not hold it
            raise BadEvent(f"{field}: epoch seconds out of range")
        return float(value)
    if not isinstance(value, str):
        raise BadEvent(f"{field}: expected an ISO-8601 time")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise BadEvent(f"{field}: not an ISO-8601 time: {value[:40]!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        ts = moment.timestamp()
    except (OverflowError, ValueError) as exc:
        raise BadEvent(f"{field}: time out of range") from exc
    if not EPOCH_MIN <= ts <= EPOCH_MAX:
        raise BadEvent(f"{field}: time out of range")
    return ts


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def already_folded(state: CheckoutState | None, event: CartEvent) -> bool:
    """Whether ``state`` has folded this delivery of ``event`` already (its id is recent)."""
    return state is not None and event.event_id in state.ids


def validate(event: CartEvent | dict[str, Any]) -> tuple[str, str, str, float]:
    """Check the fields stage A relies on (of a typed event, or of a decoded record, read
    here); ``(type, store, checkout, occurred_at)``."""
    if isinstance(event, dict):
        event = read_event(event)
    kind = "cart_updated" if event.type is None else event.type
    if kind != "cart_updated" and kind != "cart_completed":
        raise BadEvent(f"type: unknown cart event type {kind!r}")
    store = event.store
    if not store:
        raise BadEvent("store: required non-empty string")
    checkout = event.checkout
    if not checkout:
        raise BadEvent("checkout: required non-empty string")
    if not event.event_id:
        raise BadEvent("event_id: required non-empty string")
    occurred = epoch(event.occurred_at, "occurred_at")
    if event.total is msgspec.UNSET:
        raise BadEvent("total: required decimal string")
    # the amounts an order's record carries too; the rest of the cart (line items, history)
    # only matters to a plan, and stage B checks it once, when the cart is abandoned
    _amount(total_of(event), "total")
    _amount(event.subtotal, "subtotal")
    _amount(event.shipping, "shipping")
    currency = event.currency
    if currency is None or len(currency) != 3:
        raise BadEvent("currency: required ISO-4217 code")
    if kind == "cart_completed":
        _discounts(event)
    return kind, store, checkout, occurred


def read_event(record: Any) -> CartEvent:
    """The typed cart event of a decoded record, or BadEvent naming the field at fault."""
    try:
        return read_cart_event(record)
    except BadRecord as bad:
        raise BadEvent(str(bad)) from None


def _discounts(event: CartEvent) -> list[dict[str, str]]:
    """The order's codes and what each took off (recovery.redemption), or BadEvent."""
    try:
        listed = {"discounts": event.discounts, "discount_codes": event.discount_codes}
        return order_discounts(listed)
    except BadDiscount as exc:
        raise BadEvent(str(exc)) from exc


MAX_COUNT = 10**9  # a quantity or an order count beyond this is not a cart's


def _amount(value: Any, field: str, prefix: str = "") -> None:
    """Raise BadEvent (naming ``prefix + field``) unless ``value`` is absent or an amount the
    core takes; the name is only built for a refusal, as this runs on every amount."""
    if value is not None and not plainly_bounded(value):
        try:
            bounded_amount(value)
        except MoneyError as exc:
            raise BadEvent(f"{prefix}{field}: {exc}") from exc


def _count(value: Any, field: str, prefix: str = "") -> None:
    """A whole number in 0..MAX_COUNT (int, integral float or decimal digits), or absent."""
    if value is None or (type(value) is int and 0 <= value <= MAX_COUNT):
        return
    digits = isinstance(value, str) and 0 < len(value) <= 10 and value.isascii() and value.isdigit()
    if digits or (isinstance(value, float) and value.is_integer()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        raise BadEvent(f"{prefix}{field}: expected a whole number from 0 to {MAX_COUNT}")


def check_amounts(cart: dict[str, Any], prefix: str = "") -> None:
    """Every amount and count of a cart a plan computes with is one the core can take (stage
    B on an abandoned cart, whoever sent it): a poison amount is refused with its field,
    instead of raising in the plan and leaving the shopper stuck."""
    _amount(cart.get("total"), "total", prefix)
    _amount(cart.get("subtotal"), "subtotal", prefix)
    _amount(cart.get("shipping"), "shipping", prefix)
    _amount(cart.get("peak_total"), "peak_total", prefix)
    items = cart.get("line_items")
    if isinstance(items, list):
        for n, item in enumerate(items[:MAX_ITEMS]):
            if isinstance(item, dict):
                price, cost, quantity = item.get("price"), item.get("cost"), item.get("quantity")
                if not (price is None or plainly_bounded(price)):
                    _amount(price, f"line_items[{n}].price", prefix)
                if not (cost is None or plainly_bounded(cost)):
                    _amount(cost, f"line_items[{n}].cost", prefix)
                if not (quantity is None or (type(quantity) is int and 0 <= quantity <= MAX_COUNT)):
                    _count(quantity, f"line_items[{n}].quantity", prefix)
    history = cart.get("customer")
    if isinstance(history, dict):
        _amount(history.get("total_spent"), "customer.total_spent", prefix)
        _count(history.get("orders_count"), "customer.orders_count", prefix)


@lru_cache(maxsize=65_536)
def _shopper_of(
    store: str, customer_id: Any, email: Any, phone: Any
) -> str | None:  # a shopper sends several updates: hash their identity once
    return shopper_key(store, customer_id, email, phone)


def _shopper(store: str, event: CartEvent) -> str | None:
    contact = event.contact
    if contact is None:
        return None
    return _shopper_of(store, contact.customer_id, contact.email, contact.phone)


def _reachable(event: CartEvent) -> bool:
    contact = event.contact
    return contact is not None and bool(contact.email or contact.phone or contact.sms_phone)


def snapshot(event: CartEvent) -> CartEvent:
    """The cart as kept in state: the event itself (its type has no field the state does not
    keep), with at most MAX_ITEMS lines."""
    items = event.line_items
    if items is not None and len(items) > MAX_ITEMS:
        return msgspec.structs.replace(event, line_items=items[:MAX_ITEMS])
    return event


def fingerprint(cart: CartEvent) -> str:
    """What a cart holds (a :func:`snapshot`), whenever it was sent: equal for equal content."""
    content = cart_dict(cart)
    content.pop("occurred_at", None)
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _is_empty(event: CartEvent) -> bool:
    if event.line_items:
        return False
    try:
        total = parse_amount(total_of(event) or "0")
    except MoneyError:
        return False
    return total <= 0


def _converted_record(
    store: str, checkout: str, state: CheckoutState | None, event: CartEvent, at: float
) -> tuple[str | None, CartConverted]:
    cart = state.c if state is not None else None
    shopper = _shopper(store, event) or (state.sh if state is not None else None)
    discounts = _discounts(event)
    total = total_of(event)
    if total is None and cart is not None:
        total = total_of(cart)
    ordered = _ordered_items(event.line_items) or _ordered_items(cart.line_items if cart else None)
    contact = event.contact or (cart.contact if cart else None)
    found = msgspec.to_builtins(contact) if contact is not None else None
    record = CartConverted(
        store=store,
        shopper=shopper,
        checkout=checkout,
        # what was ordered (the order's own lines, else the checkout's last snapshot): the
        # senders count orders per product from these for social proof
        items=ordered,
        order_id=event.order_id,
        occurred_at=iso(at),
        currency=event.currency or (cart.currency if cart else None),
        total=str(total),
        discount_codes=[d["code"] for d in discounts],
        discounts=discounts,
        cycle=state.cy if state is not None else 0,
        event_id=event.event_id,
        contact=found or None,
        sk=(at, EVENT_PHASE),
    )
    return shopper, record


def _ordered_items(lines: list[LineItem] | None) -> list[dict[str, str]]:
    """Product id and title of each line (at most MAX_ITEMS) of an order or a cart."""
    found: list[dict[str, str]] = []
    for line in lines[:MAX_ITEMS] if lines else ():
        kept = {}
        if line.product_id is not None and str(line.product_id).strip():
            kept["product_id"] = str(line.product_id)
        if line.title is not None and line.title.strip():
            kept["title"] = line.title
        if kept:
            found.append(kept)
    return found


REDACTIONS = frozenset({"store_redacted", "shopper_redacted"})


def erased_by(record: dict[str, Any], key: str, state: CheckoutState | None) -> bool:
    """Whether a redaction record erases the checkout stored under ``key``.

    ``store_redacted`` (e.g. Shopify ``shop/redact``) erases every checkout of the store;
    ``shopper_redacted`` (forwarded by stage B with the ``store:shopper`` key) erases every
    checkout of that shopper last updated at or before the redaction, including carts that
    were never abandoned and carts abandoned before the erasure arrived.
    """
    if not _of_store(record, key):
        return False
    kind = record.get("type")
    if kind == "store_redacted":
        return True
    if kind == "shopper_redacted":
        if state is None or state.sh != record.get("shopper"):
            return False
        # a cart updated after the redaction is new activity: it starts anew (invariant 6)
        try:
            redacted = epoch(record.get("occurred_at"), "occurred_at")
        except BadEvent:
            return True
        return state.u is None or state.u <= redacted
    return False


def erases_unreadable(record: dict[str, Any], key: str, row: Any) -> bool:
    """Whether a redaction record erases a row stored under ``key`` that the state's schema
    does not take (``row`` as the table holds it). A store's erases it as any of the store's
    rows; a shopper's erases it when the row names that shopper, whatever its times say: they
    cannot be trusted, and an erasure request errs on the side of erasing."""
    if record.get("type") != "shopper_redacted":
        return erased_by(record, key, None)
    shopper = record.get("shopper")
    return (
        _of_store(record, key)
        and isinstance(shopper, str)
        and isinstance(row, dict)
        and row.get("sh") == shopper
    )


def _of_store(record: dict[str, Any], key: str) -> bool:
    """Whether the checkout stored under ``key`` is of the store a redaction ``record`` names."""
    store = record.get("store")
    return isinstance(store, str) and key.startswith(f"{store}:")


def checkout_redaction(store: str, checkout: str, at: float) -> dict[str, Any]:
    """The record that erases one checkout of a shopper redacted at ``at`` (see
    :func:`erases_checkout`)."""
    return {
        "type": "checkout_redacted",
        "store": store,
        "checkout": checkout,
        "occurred_at": iso(at),
    }


def erases_checkout(record: dict[str, Any], state: CheckoutState | None) -> bool:
    """Whether a ``checkout_redacted`` record erases the checkout in ``state``: one updated
    after the redaction it comes from is new activity, and stays (as :func:`erased_by`)."""
    if state is None:
        return False
    try:
        redacted = epoch(record.get("occurred_at"), "occurred_at")
    except BadEvent:
        return True  # no time to tell: erased
    return state.u is None or state.u <= redacted


def _forget_at(last: float, policy: StorePolicy) -> float:
    return last + policy.retention.total_seconds()


def apply_event(
    state: CheckoutState | None,
    event: CartEvent | dict[str, Any],
    partition: int,
    policy: StorePolicy,
    checked: tuple[str, str, str, float] | None = None,
) -> tuple[CheckoutState, list[Effect]]:
    """Fold one cart event (typed, or a decoded record, read here) into the checkout's state,
    which is changed in place and returned (a new one for a checkout without state);
    ``checked`` is what :func:`validate` returned for the event when the caller validated it
    already (else it is validated here)."""
    if isinstance(event, dict):
        event = read_event(event)
    kind, store, checkout, occurred = checked if checked is not None else validate(event)
    event_id = event.event_id or ""
    if state is not None:
        last = state.u if state.u is not None else float("-inf")
        if event_id in state.ids:
            return state, [Effect("duplicate")]
        if state.st == "converted" and kind == "cart_updated":
            return _remember(state, event_id), [Effect("stale")]
        if kind == "cart_updated" and occurred < last:
            return _remember(state, event_id), [Effect("stale")]
        if state.st == "abandoned" and kind == "cart_updated" and not event.completed_at:
            # only an update that is newer re-opens the checkout: the same body delivered again
            # under a new webhook id would start a second plan (invariant 8)
            if occurred <= last:
                return _remember(state, event_id), [Effect("stale")]
            if state.fp == fingerprint(snapshot(event)):
                return _remember(state, event_id), [Effect("duplicate")]
    completed = kind == "cart_completed" or bool(event.completed_at)
    if completed:
        if state is not None and state.st == "converted":
            _touched(state, partition, event_id)
            return state, [Effect("duplicate")]
        # the record reads the checkout as it was before this event
        shopper, record = _converted_record(store, checkout, state, event, occurred)
    new = state if state is not None else CheckoutState()
    _touched(new, partition, event_id)
    effects: list[Effect] = []
    if completed:
        new.st = "converted"
        new.dl = None
        new.fa = _forget_at(occurred, policy)
        new.u = occurred if new.u is None else max(new.u, occurred)
        if shopper:
            effects.append(Effect("converted", shopper, record))
        return new, effects
    previous = new.st
    peak = _peak(new)
    new.u = occurred
    new.c = snapshot(event)
    goods = _goods(event)
    new.pk = str(peak) if peak is not None and goods is not None and peak > goods else None
    new.sh = _shopper(store, event) or new.sh
    new.fa = _forget_at(occurred, policy)
    if _is_empty(event):
        new.st = "emptied"
        new.dl = None
        if previous == "abandoned" and new.sh:
            emptied = _lifecycle(CartEmptied, store, new, checkout, occurred)
            effects.append(Effect("emptied", new.sh, emptied))
        return new, effects
    if previous == "abandoned" and new.sh:
        reopened = _lifecycle(CartReopened, store, new, checkout, occurred)
        effects.append(Effect("reopened", new.sh, reopened))
    new.st = "open"
    reachable = new.sh is not None and _reachable(event)
    new.dl = occurred + policy.abandonment_window.total_seconds() if reachable else None
    return new, effects


def _touched(state: CheckoutState, partition: int, event_id: str) -> None:
    """An event folded into ``state``: its partition, its id, and a new timer sequence; the
    fingerprint is an abandoned checkout's only."""
    state.pt = partition
    state.fp = None
    _remember(state, event_id)
    state.seq += 1


def _goods(cart: CartEvent | None) -> Decimal | None:
    """The goods value (:func:`recovery.segments.goods_value`) of a cart event or snapshot."""
    if cart is None:
        return None
    try:
        subtotal = cart.subtotal
        if subtotal is not None:  # parsed alone: this runs twice on every update
            return parse_amount(subtotal)
        shipping = cart.shipping
        return goods_value(
            parse_amount(total_of(cart) or "0"),
            None,
            parse_amount(shipping) if shipping is not None else None,
        )
    except MoneyError:
        return None


def _peak(state: CheckoutState) -> Decimal | None:
    """The highest goods value the checkout had so far: kept, else its cart's own."""
    kept = state.pk
    if kept is not None:
        try:
            return parse_amount(kept)
        except MoneyError:
            return None
    return _goods(state.c)


def _lifecycle(
    kind: type[Left], store: str, state: CheckoutState, checkout: str, at: float
) -> Left:
    return kind(
        store=store,
        shopper=state.sh,
        checkout=checkout,
        cycle=state.cy,
        occurred_at=iso(at),
        sk=(at, EVENT_PHASE),
    )


def _remember(state: CheckoutState, event_id: str) -> CheckoutState:
    ids = state.ids
    ids.append(event_id)
    if len(ids) > MAX_IDS:
        del ids[: len(ids) - MAX_IDS]
    return state


def next_due(state: CheckoutState) -> float | None:
    """When this checkout next needs attention: its abandonment deadline or its forget time."""
    deadline = state.dl if state.st == "open" else None
    forget = state.fa
    if deadline is None:
        return forget
    return deadline if forget is None or deadline < forget else forget


def apply_tick(
    state: CheckoutState, key: str, now: float
) -> tuple[CheckoutState | None, list[Effect]]:
    """Time has reached ``now``: abandon an idle open checkout (``state`` changed in place),
    or forget an old one (None)."""
    forget = state.fa
    if forget is not None and forget <= now:
        return None, [Effect("forgotten")]
    deadline = state.dl
    if state.st != "open" or deadline is None or deadline > now or state.sh is None:
        return state, []
    store, _, checkout = key.partition(":")
    cycle = state.cy + 1
    cart = state.c or CartEvent()
    peak, goods = _peak(state), _goods(cart)
    abandoned = cart_dict(cart)
    if peak is not None and goods is not None and peak > goods:
        abandoned["peak_total"] = str(peak)
    # Stage B keeps the abandoned cart for its plan; stage A keeps what an order without those
    # fields falls back on (_converted_record: its total), until an update brings a new one.
    state.c = CartEvent(currency=cart.currency, total=cart.total)
    state.fp = fingerprint(cart)
    state.dl = None  # no deadline until an update
    state.st = "abandoned"
    state.cy = cycle
    state.seq += 1
    if peak is not None:
        state.pk = str(peak)  # a return compares with what the cart was before
    at = iso(deadline)
    record = CartAbandoned(
        store=store,
        shopper=state.sh,
        checkout=checkout,
        cycle=cycle,
        abandoned_at=at,
        occurred_at=at,
        cart=abandoned,
        sk=(now, TICK_PHASE),
    )
    return state, [Effect("abandoned", state.sh, record)]
