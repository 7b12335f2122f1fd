"""The JSON every record travels as: compact, Decimal as a string, datetimes ISO-8601 UTC
``Z``; written by msgspec (orjson where msgspec refuses a value), read by orjson.

Imports only orjson, msgspec and the standard library, so a process without Faust
(bench/quix_peer.py, run by quixstreams' interpreter) encodes exactly as the worker does;
:mod:`schemas.codec` wraps it as the ``orjson`` Faust codec.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import orjson

_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS


def _hook(value: Any) -> Any:
    if hasattr(value, "to_representation"):
        return value.to_representation()
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


# msgspec writes the records' and states' dicts and lists about 2.5 times as fast as orjson,
# with the same bytes: Decimal as its string, datetimes ISO-8601 with ``Z`` for UTC, int keys
# as strings, NaN and infinities as null. A float of 1e16 or more is written with a bare
# exponent (``1e16`` for orjson's ``1e+16``), the same number. Written where orjson refused
# them: a set, as an array, and an int beyond 64 bits (orjson reads one back as a float).
_encode = msgspec.json.Encoder(enc_hook=_hook, decimal_format="string").encode


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, msgspec.Struct):  # inside a container: the same bytes as alone
        return orjson.Fragment(_encode(value))
    return _hook(value)


def dumps(value: Any) -> bytes:
    """Encode a value (records, Decimals, datetimes and typed states included) as compact JSON
    bytes. Raises TypeError for a value JSON cannot hold."""
    try:
        return _encode(value)
    except (TypeError, ValueError, OverflowError):
        # what msgspec refuses and orjson may take (a bool or float key), or raises its
        # TypeError for (a lone surrogate)
        return orjson.dumps(value, default=_default, option=_OPTIONS)


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)
