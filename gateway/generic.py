"""The generic canonical format (``POST /events``, WooCommerce cart plugins), validated (pure).

A body is one canonical record or a JSON array of them, exactly as they travel on the topics:
``cart_updated`` / ``cart_completed`` (to ``cart-events``, key ``store:checkout``) and
``consent_changed`` / ``shopper_redacted`` (to ``shopper-events``, key ``store:shopper``).
Each is checked against the records' JSON Schema (money as decimal strings, no unknown
fields), its times parsed, its store compared with the authenticated one. All or nothing:
one bad record refuses the whole body, naming it (``[2].total``).
"""

from __future__ import annotations

import re
from typing import Any

import jsonschema

from gateway.discounts import check_canonical
from gateway.emit import Emit, Stream
from gateway.errors import Reject, bad_field, missing_field
from gateway.fields import MAX_INT, as_object, join, to_money, to_time
from recovery import amounts
from recovery.ids import checkout_key, shopper_key
from schemas.jsonschema import record_schema
from schemas.records import CART_EVENT_TYPES, ConsentChanged, ShopperRedacted

ACCEPTED: dict[str, tuple[Stream, type]] = {
    **{kind: ("cart_events", record) for kind, record in CART_EVENT_TYPES.items()},
    "consent_changed": ("shopper_events", ConsentChanged),
    "shopper_redacted": ("shopper_events", ShopperRedacted),
}
TIME_FIELDS = ("occurred_at", "completed_at")
MAX_EVENTS = 1000
_NAME = re.compile(r"[A-Za-z0-9_]{1,60}")

_SCHEMAS = {kind: record_schema(record) for kind, (_, record) in ACCEPTED.items()}
_VALIDATORS = {kind: jsonschema.Draft202012Validator(s) for kind, s in _SCHEMAS.items()}


def _where(prefix: str, error: jsonschema.ValidationError) -> str:
    path = prefix
    for part in error.absolute_path:
        path = join(path, part if isinstance(part, int) else str(part))
    return path or "body"


def normalize(payload: Any, store: str, platform: str | None = None) -> list[Emit]:
    """Validate one record or a list of them for ``store``; the emits to produce."""
    many = isinstance(payload, list)
    events = payload if many else [payload]
    if not events:
        raise Reject(400, "invalid_field", "body: an empty list holds no event")
    if len(events) > MAX_EVENTS:
        raise Reject(400, "invalid_field", f"body: at most {MAX_EVENTS} events per request")
    return [_one(raw, f"[{i}]" if many else "", store, platform) for i, raw in enumerate(events)]


def _one(raw: Any, prefix: str, store: str, platform: str | None) -> Emit:
    event = dict(as_object(raw, prefix))
    kind = event.setdefault("type", "cart_updated")
    if not isinstance(kind, str) or kind not in ACCEPTED:
        raise bad_field(join(prefix, "type"), f"must be one of {', '.join(sorted(ACCEPTED))}")
    if platform is not None and kind in CART_EVENT_TYPES:
        event.setdefault("platform", platform)
    schema = _SCHEMAS[kind]
    for name in schema["required"]:
        if event.get(name) is None:
            raise missing_field(join(prefix, name))
    unknown = sorted(set(event) - set(schema["properties"]), key=str)
    if unknown:
        name = str(unknown[0])
        if _NAME.fullmatch(name):
            raise bad_field(join(prefix, name), "unknown field")
        raise bad_field(prefix or "body", "has a field that is no canonical field name")
    error = jsonschema.exceptions.best_match(_VALIDATORS[kind].iter_errors(event))
    if error is not None:
        raise bad_field(_where(prefix, error), _message(error))
    check_amounts(event, prefix)
    if event["store"] != store:
        raise Reject(
            403, "wrong_store", f"{join(prefix, 'store')}: not the authenticated store {store!r}"
        )
    for name in TIME_FIELDS:
        if event.get(name) is not None:
            event[name] = to_time(event[name], join(prefix, name))
    stream, _ = ACCEPTED[kind]
    if stream == "cart_events":
        return Emit(stream, checkout_key(store, event["checkout"]), event)
    key = shopper_key(store, event.get("customer_id"), event.get("email"), event.get("phone"))
    if key is None:
        raise missing_field(join(prefix, "customer_id"))
    return Emit(stream, key, event)


def _currency(event: dict[str, Any], name: str, prefix: str) -> str:
    code = event.get(name)
    if not isinstance(code, str) or code not in amounts.MINOR_UNITS:
        raise bad_field(join(prefix, name), "must be an upper-case ISO 4217 currency code")
    return code


def _count(value: Any, path: str) -> None:
    if isinstance(value, int) and not 0 <= value <= MAX_INT:
        raise bad_field(path, f"must be between 0 and {MAX_INT}")


def check_amounts(event: dict[str, Any], prefix: str) -> None:
    """Every amount of a schema-valid record within its currency's rule, counts in range."""
    if "currency" not in event:
        return
    currency = _currency(event, "currency", prefix)
    for name in ("total", "subtotal", "shipping"):
        if event.get(name) is not None:
            to_money(event[name], currency, join(prefix, name))
    if event.get("presentment_total") is not None:
        shown = currency
        if event.get("presentment_currency") is not None:
            shown = _currency(event, "presentment_currency", prefix)
        to_money(event["presentment_total"], shown, join(prefix, "presentment_total"))
    for index, item in enumerate(event.get("line_items") or ()):
        path = join(join(prefix, "line_items"), index)
        _count(item.get("quantity"), join(path, "quantity"))
        for name in ("price", "cost"):
            if item.get(name) is not None:
                to_money(item[name], currency, join(path, name))
    customer = event.get("customer")
    if isinstance(customer, dict):
        _count(customer.get("orders_count"), join(prefix, "customer.orders_count"))
        if customer.get("total_spent") is not None:
            to_money(customer["total_spent"], currency, join(prefix, "customer.total_spent"))
    check_canonical(event, currency, prefix)


def _message(error: jsonschema.ValidationError) -> str:
    """What the field must be, never its value (jsonschema's own messages quote it)."""
    if error.validator == "pattern" and isinstance(error.instance, str | int | float):
        return 'must be a decimal string like "18.50"'
    if error.validator == "type":
        return f"must be of type {error.validator_value}"
    if error.validator == "additionalProperties":
        return "has a field the record does not define"
    if error.validator == "anyOf":
        return "has the wrong type or form"
    return f"does not satisfy the record's {error.validator} rule"
