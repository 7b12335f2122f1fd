"""Read a policy file from disk and validate it into per-store policies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from config.templatecheck import template_problems
from recovery.policyset import PolicyError, PolicySet, Problem, parse_policy

DEFAULT_POLICY = Path(__file__).resolve().parent.parent / "policies" / "default.yaml"

__all__ = ["DEFAULT_POLICY", "PolicyError", "PolicySet", "Problem", "check_policy", "load_policy"]


def _read(path: str | Path | None) -> tuple[str, Any]:
    file = Path(path) if path is not None else DEFAULT_POLICY
    source = str(file)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(
            source, [Problem("", f"cannot read file: {exc.strerror or exc}")]
        ) from exc
    try:
        return source, yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise PolicyError(source, [Problem(where, f"not valid YAML: {problem}")]) from exc


def load_policy(path: str | Path | None = None) -> PolicySet:
    """Read and validate a policy file (the shipped default when ``path`` is None)."""
    source, data = _read(path)
    return parse_policy(data, source)


def check_policy(path: str | Path | None = None) -> PolicySet:
    """:func:`load_policy` plus the checks that need the disk (every named template exists).

    Raises :class:`PolicyError` with every problem of both kinds at once.
    """
    source, data = _read(path)
    problems: list[Problem] = []
    policies: PolicySet | None = None
    try:
        policies = parse_policy(data, source)
    except PolicyError as exc:
        problems += exc.problems
    problems += template_problems(data)
    if problems or policies is None:
        raise PolicyError(source, problems)
    return policies
