"""Who may import whom among the packages (README, "package | holds | may import"): the
services never import the shell (`cartbands/`), and nothing imports back up the stack."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {
    "agents", "bench", "bus", "cartbands", "config", "gateway", "recovery", "schemas",
    "senders", "streams", "telemetry",
}  # fmt: skip
# besides itself; third-party libraries are the purity test's business (recovery) or free
MAY_IMPORT = {
    "recovery": {"schemas"},  # the records it reads (schemas.cart_events: Faust-free)
    "schemas": set(),
    "telemetry": set(),
    "bus": {"schemas"},
    "config": {"recovery", "senders"},  # the policy file's templates are the senders' own
    "streams": {"bus", "recovery", "schemas"},
    "agents": {"bus", "recovery", "schemas", "streams", "telemetry"},
    "gateway": {"bus", "config", "recovery", "schemas"},
    "senders": {"bus", "config", "recovery", "schemas", "telemetry"},
}


def _ours(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & OURS


@pytest.mark.parametrize("package", sorted(MAY_IMPORT))
def test_a_package_imports_only_the_layers_below_it(package: str) -> None:
    allowed = MAY_IMPORT[package] | {package}
    modules = sorted((ROOT / package).rglob("*.py"))
    assert modules
    bad = {
        str(path.relative_to(ROOT)): sorted(_ours(path) - allowed)
        for path in modules
        if _ours(path) - allowed
    }
    assert not bad


def test_the_senders_template_registry_imports_nothing_of_config() -> None:
    # config loads policy files and checks their templates against senders.templates: that
    # module (and what it imports) must not need config back
    for name in ("templates.py", "outcomes.py"):
        assert "config" not in _ours(ROOT / "senders" / name)
