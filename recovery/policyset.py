"""A whole policy (defaults + stores) validated from parsed data, with path-precise errors.

Errors name the source, the path inside it (``stores.acme.bands[2].min``) and what is wrong.
Pure: the file is read by :mod:`config.policyfile`.
"""

from __future__ import annotations

import copy
import difflib
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from recovery.policy import StorePolicy


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class PolicyError(Exception):
    """A policy file that cannot be used, with every problem found."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {source}: {p}" for p in problems)
        super().__init__(f"invalid policy file {source}:\n{lines}")


@dataclass(frozen=True)
class PolicySet:
    """The validated policy: defaults plus each named store's effective policy."""

    source: str
    defaults: StorePolicy
    stores: Mapping[str, StorePolicy] = field(default_factory=dict)

    def for_store(self, store: str) -> StorePolicy:
        """The store's policy; a store not named in the file runs on the defaults."""
        return self.stores.get(store, self.defaults)


def format_loc(loc: tuple[int | str, ...]) -> str:
    """``('bands', 2, 'min')`` -> ``bands[2].min``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; anything else (lists included) is replaced."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _has_path(data: Any, loc: tuple[int | str, ...]) -> bool:
    node = data
    for part in loc:
        if isinstance(part, int) and isinstance(node, list) and 0 <= part < len(node):
            node = node[part]
            continue
        if isinstance(part, str) and isinstance(node, Mapping) and part in node:
            node = node[part]
            continue
        return False
    return True


def nearest(word: str, choices: Iterable[str]) -> str | None:
    """The choice closest to ``word`` (a likely typo of it), if any is close."""
    near = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return near[0] if near else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the nearest choice, or the choices when none is near."""
    known = sorted(choices)
    near = nearest(word, known)
    if near is not None:
        return f"; did you mean {near!r}?"
    return f"; known: {', '.join(known)}" if known else ""


def _unwrap(hint: Any) -> list[Any]:
    """The alternatives of a type hint: ``Annotated`` and ``None`` dropped, unions split."""
    if typing.get_origin(hint) is typing.Annotated:
        return _unwrap(typing.get_args(hint)[0])
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return [alt for arg in typing.get_args(hint) for alt in _unwrap(arg)]
    return [] if hint is type(None) else [hint]


def _tagged(alternatives: list[Any], tag: object) -> type[BaseModel] | None:
    """The model of a tagged union whose discriminator (a one-value Literal) is ``tag``."""
    for alt in alternatives:
        if isinstance(alt, type) and issubclass(alt, BaseModel):
            for info in alt.model_fields.values():
                if typing.get_origin(info.annotation) is typing.Literal and typing.get_args(
                    info.annotation
                ) == (tag,):
                    return alt
    return None


def locate(
    model: type[BaseModel], loc: tuple[int | str, ...]
) -> tuple[tuple[int | str, ...], list[str] | None]:
    """Follow a pydantic error location through ``model``'s fields.

    Returns the location as the file spells it (a tagged union's tag, which pydantic inserts,
    removed) and, when the last part is a key of a model, the keys that model allows.
    """
    hint: Any = model
    clean: list[int | str] = []
    allowed: list[str] | None = None
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        alternatives = _unwrap(hint)
        tagged = _tagged(alternatives, part) if len(alternatives) > 1 else None
        if tagged is not None:
            hint = tagged
            continue
        node = alternatives[0] if len(alternatives) == 1 else None
        allowed = None
        if isinstance(node, type) and issubclass(node, BaseModel):
            allowed = list(node.model_fields)
            hint = node.model_fields[part].annotation if part in node.model_fields else None
        elif typing.get_origin(node) in (list, dict):
            args = typing.get_args(node)
            hint = args[-1] if args else None
        else:
            hint = None
        clean.append(part)
    return tuple(clean), allowed


def _message(err: Any, loc: tuple[int | str, ...], allowed: list[str] | None) -> str:
    if err["type"] == "extra_forbidden" and loc and isinstance(loc[-1], str):
        return "unknown key" + did_you_mean(loc[-1], allowed or [])
    message: str = err["msg"]
    return message.removeprefix("Value error, ")


def _problems(exc: ValidationError) -> list[tuple[tuple[int | str, ...], str]]:
    found = []
    for err in exc.errors():
        raw = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
        loc, allowed = locate(StorePolicy, raw)
        found.append((loc, _message(err, loc, allowed)))
    return found


def _at(prefix: str, loc: tuple[int | str, ...], message: str) -> Problem:
    return Problem(".".join(x for x in (prefix, format_loc(loc)) if x), message)


def parse_policy(data: Any, source: str = "<policy>") -> PolicySet:
    """Validate already-parsed YAML/JSON data into a :class:`PolicySet`."""
    if not isinstance(data, Mapping):
        raise PolicyError(source, [Problem("", "the top level must be a mapping with 'defaults'")])
    unknown = sorted(set(data) - {"defaults", "stores"}, key=str)
    problems = [
        Problem(str(k), "unknown top-level key" + did_you_mean(str(k), ["defaults", "stores"]))
        for k in unknown
    ]
    raw_defaults = data.get("defaults")
    if not isinstance(raw_defaults, Mapping):
        problems.append(Problem("defaults", "required mapping is missing"))
        raise PolicyError(source, problems)
    raw_stores = data.get("stores") or {}
    if not isinstance(raw_stores, Mapping):
        problems.append(Problem("stores", "must be a mapping of store id to overrides"))
        raise PolicyError(source, problems)
    defaults: StorePolicy | None = None
    in_defaults: set[tuple[tuple[int | str, ...], str]] = set()
    try:
        defaults = StorePolicy.model_validate(raw_defaults)
    except ValidationError as exc:
        found = _problems(exc)
        in_defaults = set(found)
        problems.extend(_at("defaults", loc, message) for loc, message in found)
    stores: dict[str, StorePolicy] = {}
    for name, override in raw_stores.items():
        prefix = f"stores.{name}"
        if not isinstance(override, Mapping):
            problems.append(Problem(prefix, "must be a mapping of overrides"))
            continue
        try:
            stores[str(name)] = StorePolicy.model_validate(deep_merge(raw_defaults, override))
        except ValidationError as exc:
            # a problem the store inherits unchanged from the defaults is reported there once
            problems.extend(
                _at(prefix, loc, message)
                for loc, message in _problems(exc)
                if (loc, message) not in in_defaults or _has_path(override, loc)
            )
    if problems or defaults is None:
        raise PolicyError(source, problems)
    return PolicySet(source=source, defaults=defaults, stores=stores)
