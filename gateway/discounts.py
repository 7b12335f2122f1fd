"""The discount codes an order used, as the canonical ``discounts`` (pure).

Each platform's order parser hands its entries here: ``{code, amount}`` with the code
normalised (:func:`recovery.redemption.normal_code`: trimmed, upper-cased, as the platforms
compare codes case-insensitively) and the amount (what the code took off, in the order's
currency) already checked against its currency's rule. A bad entry is a 400 naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from gateway.errors import bad_field, missing_field
from gateway.fields import join, to_money
from recovery.redemption import MAX_CODE, MAX_DISCOUNTS, normal_code


def code_of(value: Any, path: str) -> str:
    """A code as compared: a non-empty string of at most MAX_CODE characters, normalised."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise missing_field(path)
    if not isinstance(value, str):
        raise bad_field(path, "must be a string")
    if len(value) > MAX_CODE:
        raise bad_field(path, f"longer than {MAX_CODE} characters")
    return normal_code(value)


def entry(code: str, amount: Decimal | None) -> dict[str, Any]:
    return {"code": code} if amount is None else {"code": code, "amount": amount}


def bounded(entries: list[Any], path: str) -> list[Any]:
    if len(entries) > MAX_DISCOUNTS:
        raise bad_field(path, f"at most {MAX_DISCOUNTS} discount codes per order")
    return entries


def check_canonical(event: dict[str, Any], currency: str, prefix: str) -> None:
    """A schema-valid canonical order's ``discounts`` and ``discount_codes``: amounts within
    the currency's rule, codes non-empty; the codes are normalised in place."""
    discounts = event.get("discounts")
    if isinstance(discounts, list):
        path = join(prefix, "discounts")
        kept = []
        for index, raw in enumerate(bounded(discounts, path)):
            where = join(path, index)
            item: Mapping[str, Any] = raw
            code = code_of(item.get("code"), join(where, "code"))
            amount = item.get("amount")
            if amount is not None:
                to_money(amount, currency, join(where, "amount"))
            kept.append({**item, "code": code})
        event["discounts"] = kept
    codes = event.get("discount_codes")
    if isinstance(codes, list):
        path = join(prefix, "discount_codes")
        bounded(codes, path)
        event["discount_codes"] = [code_of(c, join(path, i)) for i, c in enumerate(codes)]
