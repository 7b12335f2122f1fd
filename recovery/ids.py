"""Deterministic ids: shopper keys and touch ids.

Keys never carry personal data in the clear: a shopper is named by a hash of the store and
their customer id (else normalized email, else phone), so topics, logs and changelogs hold no
email address and a redaction does not have to rewrite keys.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import phonenumbers


def normalize_email(email: str) -> str:
    return email.strip().lower()


def normalize_phone(phone: str) -> str:
    """Digits with a leading ``+`` kept: a stable, comparable form (not a full E.164 parse)."""
    text = phone.strip()
    digits = "".join(ch for ch in text if ch.isdigit())
    return ("+" if text.startswith("+") else "") + digits


@lru_cache(maxsize=65_536)
def phone_e164(phone: str, region: str | None = None) -> str:
    """``+14155550100`` for any way of writing a number (``(+1) 415-555-0100``; a national
    form with the address's ``region``); :func:`normalize_phone` when it does not parse."""
    try:
        parsed = phonenumbers.parse(phone, region.upper() if region else None)
    except phonenumbers.NumberParseException:
        return normalize_phone(phone)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _digest(*parts: str, size: int = 24) -> str:
    joined = "\x1f".join(parts).encode("utf-8")
    return hashlib.blake2b(joined, digest_size=size // 2).hexdigest()


def shopper_key(
    store: str,
    customer_id: str | None = None,
    email: str | None = None,
    phone: str | None = None,
) -> str | None:
    """``store:<hash>`` for the best identity available, ``None`` when there is none."""
    if customer_id:
        ident = ("customer", str(customer_id).strip())
    elif email and email.strip():
        ident = ("email", normalize_email(email))
    elif phone and normalize_phone(phone).lstrip("+"):
        ident = ("phone", normalize_phone(phone))
    else:
        return None
    return f"{store}:{_digest(store, *ident)}"


def checkout_key(store: str, checkout: str) -> str:
    return f"{store}:{checkout}"


def touch_id(store: str, shopper: str, cart: str, plan_version: int, step: int) -> str:
    """hash(store, shopper, cart, plan version, step): equal inputs, equal id, on every replay."""
    return "t_" + _digest(store, shopper, cart, str(plan_version), str(step), size=32)


def touch_ids(store: str, shopper: str, cart: str, plan_version: int, steps: int) -> list[str]:
    """``[touch_id(..., step) for step in 1..steps]``, hashing the shared prefix once."""
    prefix = hashlib.blake2b(
        "\x1f".join((store, shopper, cart, str(plan_version), "")).encode("utf-8"),
        digest_size=16,
    )
    out = []
    for step in range(1, steps + 1):
        h = prefix.copy()
        h.update(str(step).encode("ascii"))
        out.append("t_" + h.hexdigest())
    return out
