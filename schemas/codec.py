"""The ``orjson`` Faust codec: :mod:`schemas.json_codec`'s encoding for Faust's topics and
records, which name it by its registered name (``register_codec`` before their first use)."""

from __future__ import annotations

from typing import Any

import orjson
from faust.serializers import codecs

from schemas.json_codec import dumps, loads

__all__ = ["OrjsonCodec", "dumps", "loads", "register_codec"]


class OrjsonCodec(codecs.Codec):
    def _dumps(self, obj: Any) -> bytes:
        return dumps(obj)

    def _loads(self, s: bytes) -> Any:
        return orjson.loads(s)


def register_codec() -> None:
    codecs.register("orjson", OrjsonCodec())
