"""The core stays pure: no stream, network or clock imports in recovery/."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import recovery

FORBIDDEN = {"faust", "aiokafka", "aiohttp", "socket", "requests", "httpx", "subprocess"}
STREAM_LIBRARIES = ["aiohttp", "aiokafka", "faust"]
CLOCK_CALLS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter"}
MODULES = sorted(Path(recovery.__file__).parent.glob("*.py"))
MINE = [
    "bands", "codes", "decide", "durations", "holdout", "ids", "incentives", "model", "money",
    "plan", "policy", "policyset", "quiet", "regions", "segments", "valuation",
]  # fmt: skip


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_no_module_of_the_core_imports_io_or_stream_libraries():
    assert MODULES
    bad = {p.name: sorted(_imports(p) & FORBIDDEN) for p in MODULES}
    assert not {name: hits for name, hits in bad.items() if hits}


def test_core_never_reads_the_clock():
    offenders = []
    for path in MODULES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in CLOCK_CALLS
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in {"datetime", "date", "time"}
            ):
                offenders.append(f"{path.name}:{node.lineno}")
    assert not offenders


def test_importing_the_core_does_not_load_faust():
    script = (
        "import importlib, sys\n"
        f"for name in {MINE!r}:\n"
        "    importlib.import_module('recovery.' + name)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {STREAM_LIBRARIES!r}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]", out.stdout
