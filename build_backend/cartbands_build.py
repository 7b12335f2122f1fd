"""PEP 517 backend: setuptools' own, plus mypy as a build requirement for a compiled core.

``CARTBANDS_MYPYC=1`` makes ``setup.py`` compile the pure core with mypyc, which ships in the
mypy distribution. Only then does a wheel build require mypy, so a plain install (``make run``,
``make test``, ``pip install .``) fetches nothing more than setuptools, as before. The metadata
hooks run with the variable removed: metadata do not depend on it, and the core would
otherwise be compiled for them too. Editable installs refuse the variable (setup.py explains).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from setuptools import build_meta as _setuptools
from setuptools.build_meta import (
    build_editable,
    build_sdist,
    build_wheel,
    get_requires_for_build_sdist,
)

__all__ = [
    "build_editable",
    "build_sdist",
    "build_wheel",
    "get_requires_for_build_editable",
    "get_requires_for_build_sdist",
    "get_requires_for_build_wheel",
    "prepare_metadata_for_build_editable",
    "prepare_metadata_for_build_wheel",
]

VARIABLE = "CARTBANDS_MYPYC"
# The compiler of the production image and of `make test-compiled`: one pinned version, so
# the tested build is the shipped one. Raise it on purpose, then run `make test-compiled`.
MYPYC = "mypy==2.4.1"


def _compiled() -> bool:
    return os.environ.get(VARIABLE) == "1"


@contextmanager
def _pure() -> Iterator[None]:
    saved = os.environ.pop(VARIABLE, None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ[VARIABLE] = saved


def _no_editable() -> None:
    if _compiled():
        raise RuntimeError(
            f"{VARIABLE}=1 builds wheels only: a compiled core in an editable checkout would "
            "shadow edits of its .py files; unset it, or build a wheel (pip install .)"
        )


def get_requires_for_build_wheel(config_settings: dict[str, str] | None = None) -> list[str]:
    with _pure():
        requires = list(_setuptools.get_requires_for_build_wheel(config_settings))
    return [*requires, MYPYC] if _compiled() else requires


def prepare_metadata_for_build_wheel(
    metadata_directory: str, config_settings: dict[str, str] | None = None
) -> str:
    with _pure():
        return _setuptools.prepare_metadata_for_build_wheel(metadata_directory, config_settings)


def get_requires_for_build_editable(config_settings: dict[str, str] | None = None) -> list[str]:
    _no_editable()
    return list(_setuptools.get_requires_for_build_editable(config_settings))


def prepare_metadata_for_build_editable(
    metadata_directory: str, config_settings: dict[str, str] | None = None
) -> str:
    _no_editable()
    return _setuptools.prepare_metadata_for_build_editable(metadata_directory, config_settings)
