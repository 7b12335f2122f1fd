"""``cartbands policy check`` in-process: broken files exit non-zero naming file and path."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner

from cartbands.cli import cli
from config.policyfile import DEFAULT_POLICY


def check(path: Path | str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["policy", "check", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    return result.exit_code, result.output


def test_check_accepts_the_shipped_policy():
    code, out = check(DEFAULT_POLICY)
    assert code == 0 and "ok" in out


def test_check_on_a_broken_file_names_the_file_and_every_path(tmp_path: Path):
    data = yaml.safe_load(DEFAULT_POLICY.read_text())
    data["defaults"]["bands"][1]["sequence"][1]["incentive"]["value"] = "ten"
    data["stores"] = {"acme": {"bands": [{"name": "a", "min": 0}, {"name": "b", "min": "x"}]}}
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(data))
    code, out = check(broken)
    assert code != 0
    assert f"{broken}: defaults.bands[1].sequence[1].incentive.value:" in out, out
    assert f"{broken}: stores.acme.bands[1].min:" in out, out
    assert "Traceback" not in out


def test_check_on_broken_yaml_names_the_line(tmp_path: Path):
    broken = tmp_path / "syntax.yaml"
    broken.write_text("defaults:\n  bands: [\n")
    code, out = check(broken)
    assert code != 0 and str(broken) in out and "line" in out


def test_check_on_a_missing_file(tmp_path: Path):
    code, out = check(tmp_path / "absent.yaml")
    assert code != 0 and "absent.yaml" in out and "cannot read" in out
