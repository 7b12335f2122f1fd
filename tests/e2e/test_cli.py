"""The command line as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from config.policyfile import DEFAULT_POLICY


def cartbands(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cartbands", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.broker  # cartbands run starts its own
def test_run_prints_summary_naming_every_band():
    result = cartbands("run", "--sample", "small")
    assert result.returncode == 0, result.stderr + result.stdout
    out = result.stdout
    for band in ("low", "mid", "high", "vip"):
        assert f"  {band} " in out, out
    for channel in ("email", "sms", "ads", "human"):
        assert f"  {channel} " in out, out
    emitted = [line for line in out.splitlines() if line.startswith("touches emitted:")]
    assert emitted, out
    count = int(emitted[0].split(":")[1].split()[0])
    assert count > 0
    assert "stream matches core: yes" in out
    through = [
        line for line in out.splitlines() if line.startswith("events in through the gateway")
    ]
    assert through and int(through[0].rsplit(":", 1)[1]) > 0, out
    recovered = [line for line in out.splitlines() if line.startswith("recovered orders:")]
    assert recovered and int(recovered[0].split(":")[1]) > 0, out
    # the sample's shopper who comes back with the code a touch carried: redeemed, charged
    redeemed = [line for line in out.splitlines() if "discount redeemed" in line]
    assert any("no code of ours" not in line and "redeemed 0 " not in line for line in redeemed)
    assert any("other codes WELCOME5 27.00" in line for line in redeemed), out
    assert "discounts redeemed" in out, out
    assert "segments: hesitant" in out and "repeat_vip" in out and "returning" in out
    assert "price_sensitive" in out


def test_policy_check_ok_on_shipped_file():
    result = cartbands("policy", "check", str(DEFAULT_POLICY))
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout


def test_policy_check_broken_file_names_the_path(tmp_path: Path):
    data = yaml.safe_load(DEFAULT_POLICY.read_text())
    data["stores"] = {
        "acme": {
            "bands": [
                {"name": "a", "min": 0},
                {"name": "b", "min": 10},
                {"name": "c", "min": "lots"},
            ]
        }
    }
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(data))
    result = cartbands("policy", "check", str(broken))
    assert result.returncode != 0
    assert "stores.acme.bands[2].min" in result.stderr
    assert str(broken) in result.stderr
    assert "Traceback" not in result.stderr


def test_policy_show_prints_effective_store_policy():
    result = cartbands("policy", "show", str(DEFAULT_POLICY), "--store", "acme-eu")
    assert result.returncode == 0, result.stderr
    assert "currency EUR" in result.stdout
    assert "band vip" in result.stdout


def test_every_command_has_help():
    for command in (
        ["--help"],
        ["broker", "--help"],
        ["worker", "--help"],
        ["run", "--help"],
        ["policy", "check", "--help"],
        ["policy", "show", "--help"],
    ):
        result = cartbands(*command)
        assert result.returncode == 0, command
        assert "Usage:" in result.stdout


def test_policy_show_yaml_gives_every_effective_setting(tmp_path):
    data = yaml.safe_load(DEFAULT_POLICY.read_text())
    data["defaults"]["abandonment_window"] = "2h"
    data["stores"] = {"acme": {"currency": "EUR", "margin": {"gross_margin": "0.55"}}}
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data))
    result = cartbands("policy", "show", str(path), "--store", "acme", "--format", "yaml")
    assert result.returncode == 0, result.stderr
    shown = yaml.safe_load(result.stdout)["acme"]
    assert shown["currency"] == "EUR" and shown["abandonment_window"] == "2h"
    assert shown["margin"]["gross_margin"] == "0.55"
    assert shown["margin"]["max_discount_share_of_margin"] == "0.5"  # inherited default
    assert [band["name"] for band in shown["bands"]] == ["low", "mid", "high", "vip"]
    assert shown["caps"]["on_new_cart"] == "keep_higher_value"


def _counts(out: str, heading: str) -> dict[str, tuple[int, int]]:
    """``name -> (count, suppressed)`` of the indented lines under ``heading``."""
    lines = out.splitlines()
    start = lines.index(heading) + 1
    counts = {}
    for line in lines[start:]:
        if not line.startswith("  "):
            break
        parts = line.split()
        suppressed = int(parts[3].rstrip(")")) if len(parts) > 3 else 0
        counts[parts[0]] = (int(parts[1]), suppressed)
    return counts


@pytest.mark.broker  # cartbands run starts its own
def test_run_demo_month_reconciles_with_outbox_and_topics():
    result = cartbands("run")
    assert result.returncode == 0, result.stderr + result.stdout
    out = result.stdout
    assert "stream matches core: yes" in out
    assert "events posted through the gateway" in result.stderr  # the progress bar
    touches = _counts(out, "touches per channel")
    delivered = _counts(out, "delivered to the outbox per channel")
    outbox = Path(next(ln for ln in out.splitlines() if ln.startswith("outbox: ")).split(": ")[1])
    for channel, (count, _none) in touches.items():
        path = outbox / f"{channel}.ndjson"
        lines = len(path.read_bytes().splitlines()) if path.exists() else 0
        sent, suppressed = delivered[channel]
        assert lines == sent, (channel, lines, sent)
        assert count == sent + suppressed, (channel, count, sent, suppressed)
    assert sum(count for count, _ in touches.values()) > 1000
    planned = [ln for ln in out.splitlines() if ln.startswith("carts abandoned")]
    plans = int(planned[0].rsplit(":", 1)[1])
    lines = out.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("ledger per band")) + 2
    ledger = []
    for line in lines[start:]:
        if not line.startswith("  "):
            break
        ledger.append(line.split())
    assert sum(int(row[2]) for row in ledger) == plans > 1500
    assert {row[1] for row in ledger} == {"treated", "holdout"}
    recovered = int(next(ln for ln in lines if ln.startswith("recovered orders:")).split(":")[1])
    treated = sum(int(row[3]) for row in ledger if row[1] == "treated")
    assert recovered == treated
    html = Path(next(ln for ln in lines if ln.startswith("HTML report: ")).split(": ")[1])
    assert html.parent == outbox.parent and "<svg" in html.read_text()
    assert "cartbands report:" in out and "lift (95% CI)" in out
    assert "what if (cartbands simulate)" in out and "flat" in out and "tiered" in out
