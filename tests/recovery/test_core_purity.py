"""The core stays pure: every module of recovery/ (found by glob) imports only what is allowed,
never reads the clock and never draws unseeded randomness."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import recovery

# What a module of the core may import (a dotted name allows its submodules): pure standard
# library, the parsing and validation libraries the policy uses, msgspec and the typed records
# of schemas.cart_events and schemas.shopper_events with their reasons' wording
# (schemas.field_reasons; all Faust-free), and the core itself. Anything
# else (a stream, network, file or process library) is refused until it is added here on
# purpose.
ALLOWED = frozenset(
    {
        "__future__", "bisect", "collections", "copy", "dataclasses", "datetime", "decimal",
        "difflib", "functools", "hashlib", "heapq", "hmac", "itertools", "json", "math",
        "random", "re", "statistics", "string", "types", "typing", "urllib.parse", "zoneinfo",
        "orjson", "phonenumbers", "pydantic", "pydantic_core", "recovery", "msgspec",
        "schemas.cart_events", "schemas.shopper_events", "schemas.field_reasons",
    }
)  # fmt: skip
STREAM_LIBRARIES = ["aiohttp", "aiokafka", "faust"]
CLOCK_CALLS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter"}
MODULES = sorted(Path(recovery.__file__).parent.glob("*.py"))


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _allowed(name: str) -> bool:
    return any(name == ok or name.startswith(ok + ".") for ok in ALLOWED)


def test_every_module_of_the_core_imports_only_what_is_allowed():
    assert len(MODULES) > 30
    bad = {p.name: sorted(n for n in _imports(p) if not _allowed(n)) for p in MODULES}
    assert not {name: hits for name, hits in bad.items() if hits}


def test_the_allow_list_refuses_io_and_stream_libraries():
    for name in ("faust", "aiokafka", "socket", "subprocess", "urllib.request", "os", "io"):
        assert not _allowed(name), name


def _calls(path: Path) -> list[tuple[str, str, int]]:
    """``(module name, attribute, line)`` of every ``name.attr(...)`` call."""
    return [
        (node.func.value.id, node.func.attr, node.lineno)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
    ]


def test_core_never_reads_the_clock():
    offenders = [
        f"{path.name}:{line}"
        for path in MODULES
        for name, attr, line in _calls(path)
        if name in {"datetime", "date", "time"} and attr in CLOCK_CALLS
    ]
    assert not offenders


def test_core_draws_randomness_only_from_seeded_generators():
    # random.Random(seed) gives the same numbers for the same seed; random.random() does not
    offenders = [
        f"{path.name}:{line}"
        for path in MODULES
        for name, attr, line in _calls(path)
        if name == "random" and attr != "Random"
    ]
    assert not offenders


def test_importing_the_core_does_not_load_faust():
    names = [path.stem for path in MODULES if path.stem != "__init__"]
    script = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module('recovery.' + name)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {STREAM_LIBRARIES!r}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]", out.stdout


def test_building_the_stream_app_does_not_import_the_agents():
    # agents import streams.app (the Pipeline); the worker registers them, so no cycle
    script = (
        "import sys\n"
        "from config.policyfile import load_policy\n"
        "from streams.app import create_app\n"
        "create_app(broker='kafka://127.0.0.1:9', policies=load_policy())\n"
        "print('agents' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "False", out.stdout
