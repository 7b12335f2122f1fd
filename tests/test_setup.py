"""setup.py's guards on the compiled core: what it compiles, and the builds it refuses."""

from __future__ import annotations

import runpy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import setuptools
from setuptools.dist import Distribution

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def build(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """setup.py's namespace, read without building anything (``setup`` does nothing)."""
    monkeypatch.setattr(setuptools, "setup", lambda **_: None)
    monkeypatch.delenv("CARTBANDS_MYPYC", raising=False)
    return runpy.run_path(str(ROOT / "setup.py"))


def core_in(tree: Path, build: dict[str, Any], modules: dict[str, str]) -> Callable[[], Any]:
    """``core_modules`` of setup.py run on a ``recovery/`` holding ``modules`` (name -> source)
    and every module setup.py keeps as Python."""
    core = tree / "recovery"
    core.mkdir()
    for name in build["KEEP_PYTHON"]:
        (core / f"{name}.py").write_text("")
    for name, source in modules.items():
        (core / f"{name}.py").write_text(source)
    core_modules = build["core_modules"]
    core_modules.__globals__["HERE"] = tree
    return core_modules


def test_every_core_module_but_those_kept_as_python_is_compiled(build):
    chosen = [path.stem for path in build["core_modules"]()]
    assert "checkouts" in chosen and "shopper_stage" in chosen
    assert not set(chosen) & set(build["KEEP_PYTHON"])
    assert len(chosen) + len(build["KEEP_PYTHON"]) == len(list((ROOT / "recovery").glob("*.py")))


def test_a_new_module_is_compiled_without_being_listed(build, tmp_path):
    chosen = core_in(tmp_path, build, {"fresh": "X = 1\n"})()
    assert [path.name for path in chosen] == ["fresh.py"]


def test_a_compiled_module_that_imports_pydantic_fails_the_build(build, tmp_path):
    core_modules = core_in(tmp_path, build, {"fresh": "from pydantic import BaseModel\n"})
    with pytest.raises(SystemExit, match=r"\['fresh.py'\] import pydantic"):
        core_modules()


def test_a_compiled_module_that_defines_msgspec_structs_fails_the_build(build, tmp_path):
    source = "import msgspec\n\nclass Row(msgspec.Struct):\n    n: int\n"
    with pytest.raises(SystemExit, match=r"\['fresh.py'\] define msgspec Structs"):
        core_in(tmp_path, build, {"fresh": source})()


def test_keeping_a_module_that_no_longer_exists_fails_the_build(build, tmp_path):
    core_modules = core_in(tmp_path, build, {})
    (tmp_path / "recovery" / "model.py").unlink()
    with pytest.raises(SystemExit, match=r"do not exist: \['model'\]"):
        core_modules()


def test_without_the_variable_nothing_is_compiled(build):
    assert build["extensions"]() == []


@pytest.mark.parametrize("mode", ["inplace", "editable_mode"])
def test_compiled_modules_are_never_built_into_the_source_tree(build, mode):
    command = build["WheelOnlyBuildExt"](Distribution())
    command.extensions = [setuptools.Extension("recovery.checkouts", ["recovery/checkouts.py"])]
    setattr(command, mode, True)
    with pytest.raises(SystemExit, match="builds wheels only"):
        command.run()
