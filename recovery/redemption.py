"""Discount codes an order used, and which of them a recovery plan issued (pure).

An order names the codes it used and what each took off (``discounts: [{code, amount}]``, the
amount in the order's currency, as its total). Codes compare case-insensitively, as Shopify,
BigCommerce and WooCommerce compare them at checkout: every code is normalised once with
:func:`normal_code` (surrounding space dropped, upper-cased) by the gateway, and stage A applies
the same idempotent function to what it forwards, so a record from a replay file compares alike.
The older ``discount_codes: [code]`` form is still read: such a code was used, for an amount
the record does not say.

Attribution (:func:`attribute`) charges a recovery with what the order *redeemed* of the codes
its plan issued; a code the plan did not issue (the store's own promotion) is recorded apart
and never charged to recovery spend. A code of ours whose amount the order does not say is
charged at its issued cost, the best figure there is, and marked ``estimated``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from recovery.money import MoneyError, bounded_amount

MAX_DISCOUNTS = 50  # codes on one order: far beyond what a checkout takes
MAX_CODE = 255  # characters of a code (WooCommerce's post title bound)


class BadDiscount(ValueError):
    """A discount entry the core cannot take; the message names the field."""


def normal_code(code: str) -> str:
    """The form codes are compared in: ``" welcome10 "`` and ``"WELCOME10"`` are one code."""
    return code.strip().upper()


def order_discounts(event: Mapping[str, Any]) -> list[dict[str, str]]:
    """The codes an order record used, normalised, each once, in order: ``{code, amount}``
    (``amount`` a decimal string, absent when unknown). Codes the record lists twice (or in
    both forms) are summed where both amounts are known. Raises :class:`BadDiscount`."""
    entries = event.get("discounts")
    codes = event.get("discount_codes")
    found: dict[str, Decimal | None] = {}
    for index, raw in enumerate(_listed(entries, "discounts")):
        where = f"discounts[{index}]"
        if not isinstance(raw, dict):
            raise BadDiscount(f"{where}: expected an object with a code")
        code = _code(raw.get("code"), f"{where}.code")
        amount = _amount(raw.get("amount"), f"{where}.amount")
        if code in found:
            known = found[code]
            found[code] = None if known is None or amount is None else known + amount
        else:
            found[code] = amount
    for index, raw in enumerate(_listed(codes, "discount_codes")):
        code = _code(raw, f"discount_codes[{index}]")
        found.setdefault(code, None)
    if len(found) > MAX_DISCOUNTS:
        raise BadDiscount(f"discounts: at most {MAX_DISCOUNTS} codes per order")
    return [
        {"code": code} if amount is None else {"code": code, "amount": str(amount)}
        for code, amount in found.items()
    ]


def _listed(value: Any, field: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadDiscount(f"{field}: expected a list")
    if len(value) > MAX_DISCOUNTS:
        raise BadDiscount(f"{field}: at most {MAX_DISCOUNTS} codes per order")
    return value


def _code(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadDiscount(f"{field}: expected a non-empty string")
    if len(value) > MAX_CODE:
        raise BadDiscount(f"{field}: longer than {MAX_CODE} characters")
    return normal_code(value)


def _amount(value: Any, field: str) -> Decimal | None:
    if value is None:
        return None
    try:
        amount = bounded_amount(value)
    except MoneyError as exc:
        raise BadDiscount(f"{field}: {exc}") from exc
    if amount < 0:
        raise BadDiscount(f"{field}: must not be negative")
    return amount


def attribute(
    used: Iterable[Mapping[str, Any]], issued: Iterable[str], issued_cost: Mapping[str, Any]
) -> dict[str, Any]:
    """The discount fields of a recovery record: what the order ``used`` (as
    :func:`order_discounts` gives it) split into the codes the plan ``issued`` (with their
    ``issued_cost``, the policy's figure, by code) and the others.

    ``discount`` is the redeemed amount of our codes, ``discount_issued_cost`` what the policy
    expected them to cost, ``other_discount`` what codes we did not issue took off."""
    ours = {normal_code(code): code for code in issued}
    costs = {normal_code(code): _cost(cost) for code, cost in issued_cost.items()}
    redeemed: list[dict[str, Any]] = []
    other_codes: list[str] = []
    discount = expected = other = Decimal(0)
    for entry in used:
        code = str(entry.get("code"))
        amount = entry.get("amount")
        if code not in ours:
            other_codes.append(code)
            other += Decimal(str(amount)) if amount is not None else Decimal(0)
            continue
        cost = costs.get(code, Decimal(0))
        expected += cost
        if amount is None:
            redeemed.append({"code": code, "amount": str(cost), "estimated": True})
            discount += cost
        else:
            redeemed.append({"code": code, "amount": str(amount)})
            discount += Decimal(str(amount))
    return {
        "discount_codes_used": [r["code"] for r in redeemed],
        "discounts_redeemed": redeemed,
        "discount": str(discount),
        "discount_issued_cost": str(expected),
        "other_discount_codes": other_codes,
        "other_discount": str(other),
    }


def _cost(value: Any) -> Decimal:
    try:
        return bounded_amount(value) if value is not None else Decimal(0)
    except MoneyError:
        return Decimal(0)
