"""The shipped Prometheus config and rules pass promtool's checks and the rules' unit tests."""

from __future__ import annotations

import subprocess
from pathlib import Path


def promtool_run(promtool: str, cwd: Path, *args: str) -> str:
    done = subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output


def test_config_is_valid(promtool: str, prometheus_dir: Path) -> None:
    output = promtool_run(promtool, prometheus_dir, "check", "config", "prometheus.yml")
    assert "SUCCESS" in output and "1 rule files found" in output


def test_rules_are_valid(promtool: str, prometheus_dir: Path) -> None:
    output = promtool_run(promtool, prometheus_dir, "check", "rules", "rules.yml")
    assert "SUCCESS" in output


def test_recording_rules_and_alerts_compute_the_expected_numbers(
    promtool: str, prometheus_dir: Path
) -> None:
    output = promtool_run(promtool, prometheus_dir, "test", "rules", "rules_test.yml")
    assert "SUCCESS" in output and "FAILED" not in output
