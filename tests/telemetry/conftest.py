"""Paths of the shipped Prometheus files and the Prometheus binaries (skip when absent)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

OPS = Path(__file__).resolve().parents[2] / "ops"


def _binary(name: str) -> str:
    path = Path("/usr/bin") / name
    found = str(path) if path.exists() else shutil.which(name)
    if found is None:
        pytest.skip(
            f"{name} is not installed (Debian package 'prometheus'; .ci/run installs it in CI)"
        )
    return found


@pytest.fixture(scope="session")
def promtool() -> str:
    return _binary("promtool")


@pytest.fixture(scope="session")
def prometheus_bin() -> str:
    return _binary("prometheus")


@pytest.fixture(scope="session")
def prometheus_dir() -> Path:
    """ops/prometheus: prometheus.yml, rules.yml, rules_test.yml."""
    return OPS / "prometheus"


@pytest.fixture(scope="session")
def grafana_dir() -> Path:
    """ops/grafana: dashboards/ and provisioning/."""
    return OPS / "grafana"
