"""Stage A decisions: the life of one checkout, as pure transitions on a compact state dict.

A checkout is *open* while the shopper is active, *abandoned* once it has been idle for the
store's abandonment window with a way to reach the shopper, *converted* once completed (or an
order carries its token), *emptied* when its cart has no value left. A later update re-opens an
abandoned checkout and a new idle period abandons it again as a new cycle (new plan, new ids).

State is a plain dict so it is stored in a table as-is (small: a checkout's snapshot is capped)::

    pt  partition          st  status            u   last updated_at (epoch s)
    ids recent delivery ids cy  abandonment cycle dl  abandonment deadline (epoch s) or None
    fa  forget-at (epoch s) seq timer sequence    sh  shopper key or None
    c   the latest cart snapshot (wire form, nulls and heavy fields removed)
    fp  an abandoned checkout's content fingerprint: the same cart sent again is no return
    pk  the highest goods value the checkout had, kept while the cart is worth less than it
        (and once abandoned): a cart shrunk to cheaper items is a price-sensitivity signal,
        carried as the abandoned cart's ``peak_total``

Every function returns ``(new_state, effects)``; the effects are the records stage A sends to
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
from typing import Any, NamedTuple

from recovery.ids import shopper_key
from recovery.money import MoneyError, bounded_amount, parse_amount, plainly_bounded
from recovery.policy import StorePolicy
from recovery.redemption import BadDiscount, order_discounts
from recovery.segments import goods_value
from recovery.stored_cart import DELIVERY_FIELDS, MAX_ITEMS

TICK_PHASE = 0  # the order of a record in ``sk`` among those of the same time: ticks first
EVENT_PHASE = 1
MAX_IDS = 8
CONVERSION_FALLBACK = ("currency", "total")

State = dict[str, Any]
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
    record: dict[str, Any] | None = None


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


def _text(event: dict[str, Any], field: str) -> str:
    value = event.get(field)
    if not isinstance(value, str) or not value:
        raise BadEvent(f"{field}: required non-empty string")
    return value


def validate(event: Any) -> tuple[str, str, str, float]:
    """Check the fields stage A relies on; ``(type, store, checkout, occurred_at)``."""
    if not isinstance(event, dict):
        raise BadEvent("event: expected a JSON object")
    kind = event.get("type", "cart_updated")
    if kind != "cart_updated" and kind != "cart_completed":
        raise BadEvent(f"type: unknown cart event type {kind!r}")
    store = _text(event, "store")
    checkout = _text(event, "checkout")
    _text(event, "event_id")
    occurred = epoch(event.get("occurred_at"), "occurred_at")
    if "total" not in event:
        raise BadEvent("total: required decimal string")
    # the amounts an order's record carries too; the rest of the cart (line items, history)
    # only matters to a plan, and stage B checks it once, when the cart is abandoned
    _amount(event.get("total"), "total")
    _amount(event.get("subtotal"), "subtotal")
    _amount(event.get("shipping"), "shipping")
    currency = event.get("currency")
    if not isinstance(currency, str) or len(currency) != 3:
        raise BadEvent("currency: required ISO-4217 code")
    if kind == "cart_completed":
        _discounts(event)
    return kind, store, checkout, occurred


def _discounts(event: dict[str, Any]) -> list[dict[str, str]]:
    """The order's codes and what each took off (recovery.redemption), or BadEvent."""
    try:
        return order_discounts(event)
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


def _shopper(store: str, event: dict[str, Any]) -> str | None:
    contact = event.get("contact") or {}
    if not isinstance(contact, dict):
        return None
    ident = (contact.get("customer_id"), contact.get("email"), contact.get("phone"))
    try:
        return _shopper_of(store, *ident)
    except TypeError:  # an unhashable identity field (a list or object): not cacheable
        return shopper_key(store, *ident)


def _reachable(event: dict[str, Any]) -> bool:
    contact = event.get("contact") or {}
    return isinstance(contact, dict) and bool(
        contact.get("email") or contact.get("phone") or contact.get("sms_phone")
    )


def snapshot(event: dict[str, Any]) -> dict[str, Any]:
    """The cart as kept in state: no nulls, no delivery metadata, at most MAX_ITEMS lines.

    Runs on every update, so it copies only what changes: a line item without nulls is kept
    as the same dict (states are never changed in place, only replaced)."""
    kept = dict(event)
    for name in DELIVERY_FIELDS:
        kept.pop(name, None)
    if None in kept.values():
        kept = {k: v for k, v in kept.items() if v is not None}
    items = kept.get("line_items")
    if isinstance(items, list):
        kept["line_items"] = [
            {k: v for k, v in item.items() if v is not None}
            if isinstance(item, dict) and None in item.values()
            else item
            for item in items[:MAX_ITEMS]
        ]
    contact = kept.get("contact")
    if isinstance(contact, dict):
        kept["contact"] = {k: v for k, v in contact.items() if v is not None and v is not False}
    return kept


def fingerprint(cart: dict[str, Any]) -> str:
    """What a cart holds (a :func:`snapshot`), whenever it was sent: equal for equal content."""
    content = {k: v for k, v in cart.items() if k != "occurred_at"}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _is_empty(event: dict[str, Any]) -> bool:
    if event.get("line_items"):
        return False
    try:
        total = parse_amount(event.get("total", "0"))
    except MoneyError:
        return False
    return total <= 0


def _converted_record(
    store: str, checkout: str, state: State | None, event: dict[str, Any], at: float
) -> tuple[str | None, dict[str, Any]]:
    cart = (state or {}).get("c") or {}
    shopper = _shopper(store, event) or (state or {}).get("sh")
    discounts = _discounts(event)
    record = {
        "type": "cart_converted",
        "store": store,
        "shopper": shopper,
        "checkout": checkout,
        # what was ordered (the order's own lines, else the checkout's last snapshot): the
        # senders count orders per product from these for social proof
        "items": _ordered_items(event) or _ordered_items(cart),
        "order_id": event.get("order_id"),
        "occurred_at": iso(at),
        "currency": event.get("currency") or cart.get("currency"),
        "total": str(event.get("total") if event.get("total") is not None else cart.get("total")),
        "discount_codes": [d["code"] for d in discounts],
        "discounts": discounts,
        "cycle": (state or {}).get("cy", 0),
        "event_id": event.get("event_id"),
        "sk": [at, EVENT_PHASE],
    }
    contact = event.get("contact") or cart.get("contact")
    if contact:
        record["contact"] = contact
    return shopper, record


def _ordered_items(holder: dict[str, Any]) -> list[dict[str, str]]:
    """Product id and title of each line (at most MAX_ITEMS) of an order or a cart."""
    lines = holder.get("line_items")
    found: list[dict[str, str]] = []
    for line in lines[:MAX_ITEMS] if isinstance(lines, list) else ():
        if not isinstance(line, dict):
            continue
        kept = {
            name: str(line[name])
            for name in ("product_id", "title")
            if line.get(name) is not None and str(line[name]).strip()
        }
        if kept:
            found.append(kept)
    return found


REDACTIONS = frozenset({"store_redacted", "shopper_redacted"})


def erased_by(record: dict[str, Any], key: str, state: State | None) -> bool:
    """Whether a redaction record erases the checkout stored under ``key``.

    ``store_redacted`` (e.g. Shopify ``shop/redact``) erases every checkout of the store;
    ``shopper_redacted`` (forwarded by stage B with the ``store:shopper`` key) erases every
    checkout of that shopper last updated at or before the redaction, including carts that
    were never abandoned and carts abandoned before the erasure arrived.
    """
    store = record.get("store")
    if not isinstance(store, str) or not key.startswith(f"{store}:"):
        return False
    kind = record.get("type")
    if kind == "store_redacted":
        return True
    if kind == "shopper_redacted":
        if state is None or state.get("sh") != record.get("shopper"):
            return False
        # a cart updated after the redaction is new activity: it starts anew (invariant 6)
        try:
            redacted = epoch(record.get("occurred_at"), "occurred_at")
        except BadEvent:
            return True
        return bool(state.get("u", redacted) <= redacted)
    return False


def checkout_redaction(store: str, checkout: str, at: float) -> dict[str, Any]:
    """The record that erases one checkout of a shopper redacted at ``at`` (see
    :func:`erases_checkout`)."""
    return {
        "type": "checkout_redacted",
        "store": store,
        "checkout": checkout,
        "occurred_at": iso(at),
    }


def erases_checkout(record: dict[str, Any], state: State | None) -> bool:
    """Whether a ``checkout_redacted`` record erases the checkout in ``state``: one updated
    after the redaction it comes from is new activity, and stays (as :func:`erased_by`)."""
    if state is None:
        return False
    try:
        redacted = epoch(record.get("occurred_at"), "occurred_at")
    except BadEvent:
        return True  # no time to tell: erased
    return bool(state.get("u", redacted) <= redacted)


def _forget_at(last: float, policy: StorePolicy) -> float:
    return last + policy.retention.total_seconds()


def apply_event(
    state: State | None,
    event: dict[str, Any],
    partition: int,
    policy: StorePolicy,
    checked: tuple[str, str, str, float] | None = None,
) -> tuple[State | None, list[Effect]]:
    """Fold one cart event into the checkout's state; ``checked`` is what :func:`validate`
    returned for it when the caller validated it already (else it is validated here)."""
    kind, store, checkout, occurred = checked if checked is not None else validate(event)
    event_id = event["event_id"]
    if state is not None:
        if event_id in state.get("ids", ()):
            return state, [Effect("duplicate")]
        if state.get("st") == "converted" and kind == "cart_updated":
            return _remember(state, event_id), [Effect("stale")]
        if kind == "cart_updated" and occurred < state.get("u", float("-inf")):
            return _remember(state, event_id), [Effect("stale")]
        if (
            state.get("st") == "abandoned"
            and kind == "cart_updated"
            and not event.get("completed_at")
        ):
            # only an update that is newer re-opens the checkout: the same body delivered again
            # under a new webhook id would start a second plan (invariant 8)
            if occurred <= state.get("u", float("-inf")):
                return _remember(state, event_id), [Effect("stale")]
            if state.get("fp") == fingerprint(snapshot(event)):
                return _remember(state, event_id), [Effect("duplicate")]
    new: State = dict(state) if state is not None else {"cy": 0, "seq": 0}
    new["pt"] = partition
    new.pop("fp", None)  # kept while abandoned only
    new["ids"] = _ids_with(new, event_id)
    new["seq"] = new.get("seq", 0) + 1
    effects: list[Effect] = []
    completed = kind == "cart_completed" or bool(event.get("completed_at"))
    if completed:
        if state is not None and state.get("st") == "converted":
            return new, [Effect("duplicate")]
        shopper, record = _converted_record(store, checkout, state, event, occurred)
        new.update(st="converted", dl=None, fa=_forget_at(occurred, policy))
        new["u"] = max(new.get("u", occurred), occurred)
        if shopper:
            effects.append(Effect("converted", shopper, record))
        return new, effects
    previous = new.get("st")
    peak = _peak(new)
    new["u"] = occurred
    new["c"] = snapshot(event)
    goods = _goods(event)
    if peak is not None and goods is not None and peak > goods:
        new["pk"] = str(peak)
    else:
        new.pop("pk", None)
    new["sh"] = _shopper(store, event) or new.get("sh")
    new["fa"] = _forget_at(occurred, policy)
    if _is_empty(event):
        new.update(st="emptied", dl=None)
        if previous == "abandoned" and new.get("sh"):
            effects.append(
                Effect(
                    "emptied", new["sh"], _lifecycle("cart_emptied", store, new, checkout, occurred)
                )
            )
        return new, effects
    if previous == "abandoned" and new.get("sh"):
        effects.append(
            Effect(
                "reopened", new["sh"], _lifecycle("cart_reopened", store, new, checkout, occurred)
            )
        )
    new["st"] = "open"
    reachable = _reachable(event) and new.get("sh") is not None
    new["dl"] = occurred + policy.abandonment_window.total_seconds() if reachable else None
    return new, effects


def _goods(cart: dict[str, Any]) -> Decimal | None:
    """The goods value (:func:`recovery.segments.goods_value`) of a cart event or snapshot."""
    try:
        subtotal = cart.get("subtotal")
        if subtotal is not None:  # parsed alone: this runs twice on every update
            return parse_amount(subtotal)
        shipping = cart.get("shipping")
        return goods_value(
            parse_amount(cart.get("total", "0")),
            None,
            parse_amount(shipping) if shipping is not None else None,
        )
    except MoneyError:
        return None


def _peak(state: State) -> Decimal | None:
    """The highest goods value the checkout had so far: kept, else its cart's own."""
    kept = state.get("pk")
    if kept is not None:
        try:
            return parse_amount(kept)
        except MoneyError:
            return None
    cart = state.get("c")
    return _goods(cart) if cart else None


def _lifecycle(kind: str, store: str, state: State, checkout: str, at: float) -> dict[str, Any]:
    return {
        "type": kind,
        "store": store,
        "shopper": state.get("sh"),
        "checkout": checkout,
        "cycle": state.get("cy", 0),
        "occurred_at": iso(at),
        "sk": [at, EVENT_PHASE],
    }


def _ids_with(state: State, event_id: str) -> list[str]:
    return [*state.get("ids", ()), event_id][-MAX_IDS:]


def _remember(state: State, event_id: str) -> State:
    return {**state, "ids": _ids_with(state, event_id)}


def next_due(state: State) -> float | None:
    """When this checkout next needs attention: its abandonment deadline or its forget time."""
    deadline = state.get("dl") if state.get("st") == "open" else None
    forget = state.get("fa")
    candidates = [t for t in (deadline, forget) if t is not None]
    return min(candidates) if candidates else None


def apply_tick(state: State, key: str, now: float) -> tuple[State | None, list[Effect]]:
    """Time has reached ``now``: abandon an idle open checkout, or forget an old one."""
    forget = state.get("fa")
    if forget is not None and forget <= now:
        return None, [Effect("forgotten")]
    deadline = state.get("dl")
    if state.get("st") != "open" or deadline is None or deadline > now:
        return state, []
    store, _, checkout = key.partition(":")
    cycle = state.get("cy", 0) + 1
    cart = state.get("c") or {}
    # Stage B keeps the abandoned cart for its plan; stage A keeps what an order without those
    # fields falls back on (_converted_record: its total), until an update brings a new one.
    kept = {field: cart[field] for field in CONVERSION_FALLBACK if field in cart}
    peak, goods = _peak(state), _goods(cart)
    abandoned = cart
    if peak is not None and goods is not None and peak > goods:
        abandoned = {**cart, "peak_total": str(peak)}
    new = {
        **{k: v for k, v in state.items() if k != "dl"},  # no deadline until an update
        "st": "abandoned",
        "cy": cycle,
        "seq": state.get("seq", 0) + 1,
        "c": kept,
        "fp": fingerprint(cart),
    }
    if peak is not None:
        new["pk"] = str(peak)  # a return compares with what the cart was before
    record = {
        "type": "cart_abandoned",
        "store": store,
        "shopper": state["sh"],
        "checkout": checkout,
        "cycle": cycle,
        "abandoned_at": iso(deadline),
        "occurred_at": iso(deadline),
        "cart": abandoned,
        "sk": [now, TICK_PHASE],
    }
    return new, [Effect("abandoned", state["sh"], record)]
