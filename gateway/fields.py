"""Reading platform JSON with path-precise errors: ``line_items[2].price: not a decimal``.

Pure helpers shared by the normalizers. Money becomes a Decimal checked against its
currency's amount rule (:mod:`recovery.amounts`), times become aware UTC datetimes; anything
unusable raises :class:`gateway.errors.Reject` (400) naming the field and what it must be,
never echoing the value (a detail is logged and returned to the caller).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from gateway.errors import Reject, bad_field, missing_field
from recovery import amounts
from recovery.amounts import AmountError

MAX_TEXT = 2048
MAX_INT = 10**9
_INT = re.compile(r"-?[0-9]{1,10}")


def as_object(value: Any, path: str) -> Mapping[str, Any]:
    if type(value) is dict:
        return value
    if not isinstance(value, Mapping):
        raise bad_field(path or "body", "must be a JSON object")
    return value


def child(data: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any] | None:
    """An optional nested object: ``None`` when absent or null."""
    value = data.get(key)
    if value is None or type(value) is dict:
        return value
    return as_object(value, join(path, key))


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def opt_str(data: Mapping[str, Any], key: str, path: str = "") -> str | None:
    """A string (or integer id) field; empty and null are ``None``."""
    value = data.get(key)
    if isinstance(value, str) and 0 < len(value) <= MAX_TEXT:
        if not (value[0].isspace() or value[-1].isspace()):  # the common case: no copy
            return value
        text = value.strip()
        return text or None
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, str):
        raise bad_field(join(path, key), f"must be a string, not {type(value).__name__}")
    text = value.strip()
    if len(text) > MAX_TEXT:
        raise bad_field(join(path, key), f"longer than {MAX_TEXT} characters")
    return text or None


def req_str(data: Mapping[str, Any], key: str, path: str = "") -> str:
    value = opt_str(data, key, path)
    if value is None:
        raise missing_field(join(path, key))
    return value


def opt_bool(data: Mapping[str, Any], key: str, path: str = "") -> bool | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise bad_field(join(path, key), "must be true or false")
    return value


def opt_int(data: Mapping[str, Any], key: str, path: str = "") -> int | None:
    """An integer or a string of ASCII digits, within :data:`MAX_INT` either side of 0."""
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool):
        raise bad_field(join(path, key), "must be an integer")
    if isinstance(value, str):
        text = value.strip()
        # Only ASCII digits: int() also reads other scripts' digits, and "²" passes isdigit().
        if len(text) <= 20 and text.isascii() and _INT.fullmatch(text):
            value = int(text)
    if isinstance(value, int):
        if -MAX_INT <= value <= MAX_INT:
            return value
        raise bad_field(join(path, key), f"must be between -{MAX_INT} and {MAX_INT}")
    raise bad_field(join(path, key), "must be an integer")


def to_money(value: Any, currency: str, path: str) -> Decimal:
    """A decimal string (Shopify), integer, or JSON number (BigCommerce v3, via its repr),
    within the amount rule of ``currency`` (:mod:`recovery.amounts`)."""
    try:
        if isinstance(value, float):
            return amounts.from_float(value, currency)
        return amounts.amount(value, currency)
    except AmountError as exc:
        raise Reject(400, "invalid_amount", f"{path}: {exc}") from None


def req_money(data: Mapping[str, Any], key: str, currency: str, path: str = "") -> Decimal:
    if data.get(key) is None:
        raise missing_field(join(path, key))
    return to_money(data[key], currency, join(path, key))


def opt_money(data: Mapping[str, Any], key: str, currency: str, path: str = "") -> Decimal | None:
    if data.get(key) is None or data.get(key) == "":
        return None
    return to_money(data[key], currency, join(path, key))


def req_currency(data: Mapping[str, Any], key: str, path: str = "") -> str:
    value = data.get(key)
    if value is None:
        raise missing_field(join(path, key))
    try:
        return amounts.currency_code(value)
    except AmountError as exc:
        raise bad_field(join(path, key), str(exc)) from None


def opt_currency(data: Mapping[str, Any], key: str, path: str = "") -> str | None:
    if not data.get(key):
        return None
    return req_currency(data, key, path)


def to_time(value: Any, path: str) -> datetime:
    """ISO-8601 with an offset (a naive time is taken as UTC) or a UNIX epoch, as UTC."""
    if isinstance(value, bool):
        raise bad_field(path, "must be a time")
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise bad_field(path, "not a UNIX time in range") from None
    if not isinstance(value, str):
        raise bad_field(path, "must be an ISO-8601 time")
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise bad_field(path, "not an ISO-8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except (OverflowError, ValueError):
        raise bad_field(path, "time out of range") from None


def opt_time(data: Mapping[str, Any], key: str, path: str = "") -> datetime | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    return to_time(value, join(path, key))


def first_time(data: Mapping[str, Any], keys: tuple[str, ...], path: str = "") -> datetime:
    """The first of ``keys`` that is present (e.g. ``updated_at`` else ``created_at``)."""
    for key in keys:
        moment = opt_time(data, key, path)
        if moment is not None:
            return moment
    raise missing_field(join(path, keys[0]))


def as_list(data: Mapping[str, Any], key: str, path: str = "") -> list[Any]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad_field(join(path, key), "must be a list")
    return value


def drop_none(values: dict[str, Any]) -> dict[str, Any]:
    """The canonical form leaves absent optional fields out rather than writing null."""
    return {k: v for k, v in values.items() if v is not None}
