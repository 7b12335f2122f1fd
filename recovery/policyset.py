"""A whole policy (defaults + stores) validated from parsed data, with path-precise errors.

Errors name the source, the path inside it (``stores.acme.bands[2].min``) and what is wrong.
Pure: the file is read by :mod:`cartbands.policyfile`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

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


def _problems(
    exc: ValidationError, prefix: str, override: Any, fallback_prefix: str
) -> list[Problem]:
    found = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
        where = prefix
        if fallback_prefix and loc and not _has_path(override, loc[:1]):
            where = fallback_prefix
        path = ".".join(x for x in (where, format_loc(loc)) if x)
        message = err["msg"].removeprefix("Value error, ")
        found.append(Problem(path, message))
    return found


def parse_policy(data: Any, source: str = "<policy>") -> PolicySet:
    """Validate already-parsed YAML/JSON data into a :class:`PolicySet`."""
    if not isinstance(data, Mapping):
        raise PolicyError(source, [Problem("", "the top level must be a mapping with 'defaults'")])
    unknown = sorted(set(data) - {"defaults", "stores"})
    problems = [
        Problem(k, "unknown top-level key (expected 'defaults' and 'stores')") for k in unknown
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
    try:
        defaults = StorePolicy.model_validate(raw_defaults)
    except ValidationError as exc:
        problems.extend(_problems(exc, "defaults", raw_defaults, ""))
    stores: dict[str, StorePolicy] = {}
    for name, override in raw_stores.items():
        prefix = f"stores.{name}"
        if not isinstance(override, Mapping):
            problems.append(Problem(prefix, "must be a mapping of overrides"))
            continue
        try:
            stores[str(name)] = StorePolicy.model_validate(deep_merge(raw_defaults, override))
        except ValidationError as exc:
            problems.extend(
                p
                for p in _problems(exc, prefix, override, "defaults")
                if not p.path.startswith("defaults") or defaults is not None
            )
    if problems or defaults is None:
        raise PolicyError(source, problems)
    return PolicySet(source=source, defaults=defaults, stores=stores)
