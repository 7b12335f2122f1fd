"""The JSON every record travels as: orjson, Decimal as a string, datetimes ISO-8601 UTC ``Z``.

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
_encode_struct = msgspec.json.Encoder().encode


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, msgspec.Struct):  # inside a container: the same bytes as alone
        return orjson.Fragment(_encode_struct(value))
    if hasattr(value, "to_representation"):
        return value.to_representation()
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def dumps(value: Any) -> bytes:
    """Encode a value (records, Decimals, datetimes and typed states included) as compact JSON
    bytes."""
    if isinstance(value, msgspec.Struct):  # a table's typed state (recovery.checkout_state)
        return _encode_struct(value)
    return orjson.dumps(value, default=_default, option=_OPTIONS)


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)
