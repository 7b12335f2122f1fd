"""``cartbands policy check|explain|show`` refusing bad input, run as a user runs them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from config.policyfile import DEFAULT_POLICY
from tests.e2e.test_cli import cartbands


def _policy(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _shipped() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(DEFAULT_POLICY.read_text())
    return data


def _problem_lines(stderr: str, source: Path) -> list[str]:
    prefix = f"  {source}: "
    return [line.removeprefix(prefix) for line in stderr.splitlines() if line.startswith(prefix)]


def test_the_shipped_policy_passes_every_check():
    result = cartbands("policy", "check")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{DEFAULT_POLICY}: ok (1 store override(s))"


def test_check_refuses_a_negative_cost(tmp_path: Path):
    data = _shipped()
    data["defaults"]["delivery"]["costs"]["human"] = "-3.00"
    path = _policy(tmp_path, data)
    result = cartbands("policy", "check", str(path))
    assert result.returncode == 1, result.stdout
    assert _problem_lines(result.stderr, path) == [
        "defaults.delivery.costs.human: must not be negative, not -3.00"
    ], result.stderr


def test_check_refuses_an_unknown_template(tmp_path: Path):
    data = _shipped()
    data["stores"]["acme-eu"]["bands"] = [
        {"name": "all", "min": 0, "sequence": [{"offset": "1h", "channel": "sms", "template": "x"}]}
    ]
    path = _policy(tmp_path, data)
    result = cartbands("policy", "check", str(path))
    assert result.returncode == 1, result.stdout
    lines = _problem_lines(result.stderr, path)
    assert len(lines) == 1 and lines[0].startswith(
        "stores.acme-eu.bands[0].sequence[0].template: no sms template 'x'"
    ), result.stderr


def test_check_reports_every_problem_of_the_file_in_one_pass(tmp_path: Path):
    data = _shipped()
    defaults = data["defaults"]
    defaults["abandonmnet_window"] = "2h"
    defaults["margin"]["shipping_cost"] = "-10"
    defaults["bands"][1]["sequence"][1]["incentive"]["value"] = 110
    defaults["bands"][3]["min"] = 150
    defaults["bands"][2]["sequence"][3]["template"] = "ofer"
    data["stores"]["acme-eu"]["margin"] = {"service_costs": {"concierge": "-1"}}
    data["stores"]["acme-us"] = {"caps": {"windw": "24h"}}
    path = _policy(tmp_path, data)
    result = cartbands("policy", "check", str(path))
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr
    lines = _problem_lines(result.stderr, path)
    assert sorted(lines) == sorted(
        [
            "defaults.abandonmnet_window: unknown key; did you mean 'abandonment_window'?",
            "defaults.margin.shipping_cost: must not be negative, not -10",
            "defaults.bands[1].sequence[1].incentive.value: percent_off value must be at most 100",
            "defaults.bands: band 'vip' starts at 150, not above 'high' (200)",
            "defaults.bands[2].sequence[3].template: no email template 'ofer' "
            "(looked in the shipped templates); did you mean 'offer'?",
            "stores.acme-eu.margin.service_costs.concierge: must not be negative, not -1",
            "stores.acme-us.caps.windw: unknown key; did you mean 'window'?",
        ]
    ), result.stderr


def test_check_suggests_the_nearest_key_for_a_typo(tmp_path: Path):
    data = _shipped()
    data["defaults"]["segments"]["hesitant"]["tempaltes"] = {}
    path = _policy(tmp_path, data)
    result = cartbands("policy", "check", str(path))
    assert result.returncode == 1
    assert _problem_lines(result.stderr, path) == [
        "defaults.segments.hesitant.tempaltes: unknown key; did you mean 'templates'?"
    ], result.stderr


def test_explain_refuses_an_unknown_store_naming_the_known_ones():
    result = cartbands("policy", "explain", "--store", "acme-us", "--total", "310")
    assert result.returncode != 0 and result.stdout == ""
    assert "unknown store 'acme-us'; did you mean 'acme-eu'?" in result.stderr
    assert f"the stores in {DEFAULT_POLICY}: acme-eu" in result.stderr
    assert "Traceback" not in result.stderr


def test_show_refuses_an_unknown_store(tmp_path: Path):
    path = _policy(tmp_path, {**_shipped(), "stores": {"north": {}, "south": {}}})
    result = cartbands("policy", "show", str(path), "--store", "east")
    assert result.returncode != 0 and result.stdout == ""
    assert f"unknown store 'east' (the stores in {path}: north, south)" in result.stderr


def test_explain_refuses_a_negative_or_non_numeric_total():
    negative = cartbands("policy", "explain", "--total", "-5")
    assert negative.returncode != 0 and negative.stdout == ""
    assert "Invalid value for '--total': must not be negative, not -5" in negative.stderr
    word = cartbands("policy", "explain", "--store", "acme-eu", "--total", "lots")
    assert word.returncode != 0 and word.stdout == ""
    assert "'lots' is not a decimal number like 310 or 49.99" in word.stderr


def test_explain_without_a_store_explains_the_defaults():
    result = cartbands("policy", "explain", "--total", "310", "--at", "2026-03-07T15:00:00Z")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("plan for store (defaults), cart 310 USD:")
    assert "band: high" in result.stdout
