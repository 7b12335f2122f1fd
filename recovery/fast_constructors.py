"""Fast positional constructors for the core's frozen slots dataclasses (hot path only).

A frozen dataclass's generated ``__init__`` sets each field through ``object.__setattr__``, a
slow path on Python 3.11, and planning builds many touches. :func:`fast_constructor` returns a
function taking every field positionally, in declaration order, that stores them through the
slot descriptors directly. The result is an ordinary, equal, frozen instance. Defaults and
default factories apply as in the dataclass; ``__post_init__`` is not supported. A test checks
the result equals the dataclass's own constructor."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
_MISSING = object()


def fast_constructor(cls: type[T]) -> Callable[..., T]:
    if not dataclasses.is_dataclass(cls) or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__} is not a slots dataclass")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} has __post_init__; use its own constructor")
    fields = [f for f in dataclasses.fields(cls) if f.init]
    names = [f.name for f in fields]
    scope: dict[str, Any] = {"_new": object.__new__, "_cls": cls, "_MISSING": _MISSING}
    params = []
    body = ["    self = _new(_cls)"]
    for index, field in enumerate(fields):
        name = field.name
        scope[f"_set{index}"] = cls.__dict__[name].__set__
        if field.default is not dataclasses.MISSING:
            scope[f"_default{index}"] = field.default
            params.append(f"{name}=_default{index}")
        elif field.default_factory is not dataclasses.MISSING:
            scope[f"_factory{index}"] = field.default_factory
            params.append(f"{name}=_MISSING")
            body.append(f"    if {name} is _MISSING: {name} = _factory{index}()")
        else:
            params.append(name)
        body.append(f"    _set{index}(self, {name})")
    lines = [f"def make({', '.join(params)}):", *body]
    lines.append("    return self")
    exec("\n".join(lines), scope)  # the same technique dataclasses uses to build __init__
    make: Callable[..., T] = scope["make"]
    make.__name__ = f"make_{cls.__name__}"
    make.__doc__ = f"{cls.__name__}({', '.join(names)}), every field positional."
    return make
