"""Process-wide runtime settings of the long-running commands: event loop and cyclic GC; and
whether this process runs the core compiled (a ``CARTBANDS_MYPYC=1`` build, see setup.py)."""

from __future__ import annotations

import gc
import importlib.util
import pkgutil
from importlib.machinery import EXTENSION_SUFFIXES

# A worker's heap is mostly long-lived table rows (and a replay's mostly state): collecting the
# youngest generation every 700 allocations (the default) rescans them far too often.
GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    gc.set_threshold(*GC_THRESHOLDS)


def tune_runtime() -> None:
    """uvloop for the event loop and fewer young-generation collections (measured +15-20%)."""
    tune_gc()
    try:
        import uvloop
    except ImportError:  # an optional speed-up: the stdlib loop works too
        return
    uvloop.install()


def compiled_core_modules() -> list[str]:
    """The ``recovery`` modules this process runs compiled (mypyc extension modules), sorted.

    An imported module reports how it was loaded; one not imported yet, how it would be: an
    extension module beside a ``.py`` of the same name wins the import.
    """
    import recovery

    compiled = []
    for info in pkgutil.iter_modules(recovery.__path__, "recovery."):
        spec = importlib.util.find_spec(info.name)
        if spec is not None and (spec.origin or "").endswith(tuple(EXTENSION_SUFFIXES)):
            compiled.append(info.name)
    return sorted(compiled)


def compiled_core() -> bool:
    """Whether the pure core runs compiled with mypyc (a ``CARTBANDS_MYPYC=1`` build)."""
    return bool(compiled_core_modules())


def describe_core() -> str:
    """``pure Python`` or ``compiled with mypyc (N of M modules)``, for logs and benchmarks."""
    import recovery

    compiled = compiled_core_modules()
    if not compiled:
        return "pure Python"
    total = sum(1 for _ in pkgutil.iter_modules(recovery.__path__))
    return f"compiled with mypyc ({len(compiled)} of {total} modules)"
