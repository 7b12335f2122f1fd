"""Discount codes: deterministic per touch, unguessable without the store's secret.

A code is an HMAC-SHA256 of the touch id keyed with the store secret (the shell reads it from
the environment and passes it in), written in a readable alphabet of 20 upper-case letters and
digits without look-alikes: none of 0/O/D/Q, 1/I/L, 2/Z, 5/S, 8/B, U/V, and no G (read as 6),
so a code read aloud or copied by hand comes out right. Fixed length (12 characters, about
52 bits). Same touch id and secret give the same code on every replay.
"""

from __future__ import annotations

import hashlib
import hmac

ALPHABET = "ACEFHJKMNPRTWXY34679"
AMBIGUOUS = frozenset("0ODQ1IL2Z5S8BGUV")
_BASE = len(ALPHABET)


def discount_code(touch_id: str, secret: bytes, length: int = 12) -> str:
    """A ``length``-character code for ``touch_id`` (12 characters carry about 52 bits)."""
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
