"""The ``orjson`` Faust codec: fast JSON with Decimal as string and datetimes as ISO-8601."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from faust.serializers import codecs

_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "to_representation"):
        return value.to_representation()
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def dumps(value: Any) -> bytes:
    """Encode a value (records, Decimals, datetimes included) as compact JSON bytes."""
    return orjson.dumps(value, default=_default, option=_OPTIONS)


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)


class OrjsonCodec(codecs.Codec):
    def _dumps(self, obj: Any) -> bytes:
        return dumps(obj)

    def _loads(self, s: bytes) -> Any:
        return orjson.loads(s)


def register_codec() -> None:
    codecs.register("orjson", OrjsonCodec())


def isoformat(moment: datetime) -> str:
    """UTC ISO-8601 with a ``Z``, as every record carries times."""
    return dumps(moment).decode()[1:-1]
