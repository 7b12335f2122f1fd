"""JSON Schema (draft 2020-12) for the exported records, derived from their field types.

``python -m schemas.jsonschema`` rewrites the ``*.schema.json`` files beside this module;
a test checks that the committed files equal what the records say.
"""

from __future__ import annotations

import json
import types
import typing
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import faust

from schemas.records import EXPORTED

HERE = Path(__file__).resolve().parent
DECIMAL_PATTERN = r"^-?\d+(\.\d+)?$"


def _is_record(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, faust.Record)


def _type_schema(tp: Any, defs: dict[str, Any]) -> dict[str, Any]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        inner = (
            _type_schema(args[0], defs)
            if len(args) == 1
            else {"anyOf": [_type_schema(a, defs) for a in args]}
        )
        return {"anyOf": [inner, {"type": "null"}]}
    if origin in (list, typing.List):  # noqa: UP006
        (item,) = typing.get_args(tp)
        return {"type": "array", "items": _type_schema(item, defs)}
    if tp is str:
        return {"type": "string"}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer"}
    if tp is Decimal:
        return {"type": "string", "pattern": DECIMAL_PATTERN}
    if tp is datetime:
        return {"type": "string", "format": "date-time"}
    if _is_record(tp):
        name = tp.__name__
        if name not in defs:
            defs[name] = {}
            defs[name] = _object_schema(tp, defs)
        return {"$ref": f"#/$defs/{name}"}
    raise TypeError(f"no JSON Schema for {tp!r}")


def _object_schema(record: type[faust.Record], defs: dict[str, Any]) -> dict[str, Any]:
    options = record._options
    properties = {}
    for name, tp in options.fields.items():
        schema = _type_schema(tp, defs)
        if name in options.defaults:
            default = options.defaults[name]
            if default is None or isinstance(default, str | int | bool):
                schema = {**schema, "default": default}
        properties[name] = schema
    required = [n for n in options.fields if n not in options.defaults]
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def record_schema(record: type[faust.Record]) -> dict[str, Any]:
    defs: dict[str, Any] = {}
    body = _object_schema(record, defs)
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://cartbands.dev/schemas/{record.__name__}.schema.json",
        "title": record.__name__,
        "description": " ".join((record.__doc__ or "").split()),
        **body,
    }
    if defs:
        schema["$defs"] = dict(sorted(defs.items()))
    return schema


def schema_path(record: type[faust.Record]) -> Path:
    return HERE / f"{record.__name__}.schema.json"


def render(record: type[faust.Record]) -> str:
    return json.dumps(record_schema(record), indent=2) + "\n"


def main() -> None:
    for record in EXPORTED:
        schema_path(record).write_text(render(record), encoding="utf-8")
        print(schema_path(record))


if __name__ == "__main__":
    main()
