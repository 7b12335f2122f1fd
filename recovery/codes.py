"""Discount codes: deterministic per touch, unguessable without the store's secret.

A code is an HMAC-SHA256 of the touch id keyed with the store secret (the shell reads it from
the environment and passes it in), written in a readable alphabet without look-alikes
(no 0/O, 1/I/L, U/V). Same touch id and secret give the same code on every replay.
"""

from __future__ import annotations

import hashlib
import hmac

ALPHABET = "ABCDEFGHJKMNPQRSTWXYZ23456789"
_BASE = len(ALPHABET)


def discount_code(touch_id: str, secret: bytes, length: int = 10) -> str:
    """A ``length``-character code for ``touch_id`` (10 characters carry about 48 bits)."""
    if not secret:
        raise ValueError("a discount code needs a non-empty store secret")
    if not 4 <= length <= 40:
        raise ValueError(f"code length must be between 4 and 40, not {length}")
    digest = hmac.new(secret, touch_id.encode("utf-8"), hashlib.sha256).digest()
    number = int.from_bytes(digest, "big")
    chars = []
    for _ in range(length):
        number, index = divmod(number, _BASE)
        chars.append(ALPHABET[index])
    return "".join(chars)
