"""Build hook: the pure core (``recovery/``) compiled with mypyc when ``CARTBANDS_MYPYC=1``.

The project's metadata lives in pyproject.toml; this file only adds extension modules, and
only when the variable is set (the production image sets it). Without it the build is plain
setuptools, pure Python, exactly as if this file did not exist. The in-tree backend
(``build_backend/cartbands_build.py``) adds mypy to the build requirements in that case only
and refuses editable installs with it: compiled modules beside the sources would shadow every
edit of a ``.py`` file.

Every ``recovery/*.py`` is compiled except the modules in :data:`KEEP_PYTHON`, each with its
reason; a new core module is compiled without anyone listing it, and the build fails if a
compiled one imports pydantic or if the list names a module that no longer exists.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

VARIABLE = "CARTBANDS_MYPYC"
HERE = Path(__file__).resolve().parent
CORE = "recovery"

# Core modules that stay Python, and why.
KEEP_PYTHON = {
    # the package itself: nothing hot, and it holds compiled_core(), which reports on the rest
    "__init__": "package marker and compiled_core()",
    # frozen slots dataclasses that fast_constructors builds constructors for through their slot
    # descriptors; compiled, they become native classes without those descriptors
    "model": "slots dataclasses used by fast_constructors",
    # writes constructor source and exec()s it at import time: nothing a compiler speeds up
    "fast_constructors": "exec-generated constructors",
    # msgspec Structs: a compiled module would make them native classes, without msgspec's
    # metaclass that builds their fields, encoders and decoders
    "checkout_state": "msgspec Structs",
    "shopper_state": "msgspec Structs",
    # pydantic models: pydantic reads the classes' annotations and validators at runtime
    "policy": "pydantic models",
    "delivery_policy": "pydantic models",
    "ingest_policy": "pydantic models",
    "codes_policy": "pydantic models",
    "response": "pydantic models",
    "storemodel": "pydantic models",
    # turns pydantic's ValidationError into path-precise errors; parsing is not on a hot path
    "policyset": "imports pydantic",
}

_PYDANTIC = re.compile(r"^\s*(from|import)\s+pydantic\b", re.MULTILINE)
_STRUCTS = re.compile(r"^class \w+\(msgspec\.Struct\b", re.MULTILINE)


def core_modules() -> list[Path]:
    """The core's modules to compile: every ``recovery/*.py`` but :data:`KEEP_PYTHON`."""
    sources = sorted((HERE / CORE).glob("*.py"))
    names = {path.stem for path in sources}
    stale = sorted(set(KEEP_PYTHON) - names)
    if stale:
        raise SystemExit(f"setup.py: KEEP_PYTHON names modules that do not exist: {stale}")
    chosen = [path for path in sources if path.stem not in KEEP_PYTHON]
    pydantic = [path.name for path in chosen if _PYDANTIC.search(path.read_text())]
    if pydantic:
        raise SystemExit(
            f"setup.py: {pydantic} import pydantic, which mypyc cannot compile for: "
            "add them to KEEP_PYTHON with the reason"
        )
    structs = [path.name for path in chosen if _STRUCTS.search(path.read_text())]
    if structs:
        raise SystemExit(
            f"setup.py: {structs} define msgspec Structs, which compiled lose msgspec's "
            "metaclass: add them to KEEP_PYTHON with the reason"
        )
    return chosen


class WheelOnlyBuildExt(build_ext):
    """``build_ext`` that never writes compiled modules into the source tree."""

    def run(self) -> None:
        if self.extensions and (self.inplace or getattr(self, "editable_mode", False)):
            raise SystemExit(
                f"{VARIABLE}=1 builds wheels only: compiled modules in the source tree would "
                "shadow edits of the .py files (build a wheel, e.g. `pip install .`)"
            )
        super().run()


def extensions() -> list[Any]:
    if os.environ.get(VARIABLE) != "1":
        return []
    from mypyc.build import mypycify

    paths = [str(path.relative_to(HERE)) for path in core_modules()]
    return mypycify(paths, opt_level="3", group_name="cartbands_core")


setup(ext_modules=extensions(), cmdclass={"build_ext": WheelOnlyBuildExt})
