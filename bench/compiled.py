"""The worker as the production image runs it: the pure core compiled with mypyc.

The Dockerfile builds the wheel with ``CARTBANDS_MYPYC=1`` (setup.py); ``pip install`` from a
checkout does not. ``bench.pipeline --compiled`` builds that wheel from the checkout the worker
runs from, installs it into a scratch directory without its dependencies (they come from this
interpreter's environment) and runs ``cartbands worker`` and the core's replay from there, beside
the pure-Python rows of the same run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import BenchError

VARIABLE = "CARTBANDS_MYPYC"
# not part of a build: what a checkout holds besides its sources
LEFT_OUT = (".git", ".venv", "build", "dist", "var", "__pycache__", "*.egg-info", "*.so")


def source_files(root: Path) -> list[str] | None:
    """The files a build of ``root`` sees (tracked and new ones, not the ignored ones), or None
    when ``root`` is not a git work tree (an export: all of it is source)."""
    command = ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others"]
    try:
        listed = subprocess.run(
            [*command, "--exclude-standard"],
            capture_output=True,
            check=False,
        )
    except OSError:  # no git here
        return None
    if listed.returncode != 0:
        return None
    names = listed.stdout.decode().split("\0")
    return [name for name in names if name and (root / name).is_file()]


def copy_sources(root: Path, into: Path) -> None:
    files = source_files(root)
    if files is None:
        shutil.copytree(root, into, ignore=shutil.ignore_patterns(*LEFT_OUT))
        return
    for name in files:
        target = into / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, target)


def _run(args: list[str], what: str, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(args, capture_output=True, env=env, check=False)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).decode(errors="replace")[-2000:]
        raise BenchError(f"{what} failed (a C compiler and Python.h are needed):\n{tail}")


def build_compiled(root: Path, scratch: Path) -> tuple[Path, float]:
    """``(site directory, seconds taken)``: the wheel of ``root`` built with
    ``CARTBANDS_MYPYC=1`` and installed into ``scratch/site``, with no dependencies."""
    started = time.monotonic()
    source, wheels, site = scratch / "src", scratch / "dist", scratch / "site"
    for path in (source, wheels, site):
        shutil.rmtree(path, ignore_errors=True)
    copy_sources(root, source)
    pip = [sys.executable, "-m", "pip"]
    _run(
        [*pip, "wheel", "--quiet", "--no-deps", "--wheel-dir", str(wheels), str(source)],
        "building the compiled wheel",
        env={**os.environ, VARIABLE: "1"},
    )
    built = sorted(wheels.glob("cartbands-*.whl"))
    if len(built) != 1:
        raise BenchError(f"expected one cartbands wheel in {wheels}, found {len(built)}")
    _run(
        [*pip, "install", "--quiet", "--no-deps", "--target", str(site), str(built[0])],
        "installing the compiled wheel",
    )
    return site, time.monotonic() - started
