"""``cartbands simulate`` and the flat baseline, run as a user runs them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from config.policyfile import DEFAULT_POLICY
from recovery.storemodel import StoreModel
from tests.e2e.test_cli import cartbands

FLAT = DEFAULT_POLICY.parent / "flat.yaml"


def _small_store(tmp_path: Path) -> Path:
    path = tmp_path / "store.yaml"
    path.write_text(yaml.safe_dump({"store_model": {"abandoned_per_month": 300}}))
    return path


def test_policy_check_accepts_the_flat_baseline_with_a_warning():
    result = cartbands("policy", "check", str(FLAT))
    assert result.returncode == 0, result.stderr
    assert "warning: defaults: bands[0] ('all') carries an incentive" in result.stdout


def test_a_first_band_incentive_without_the_flag_is_still_refused(tmp_path):
    data: dict[str, Any] = yaml.safe_load(FLAT.read_text())
    del data["defaults"]["bands"][0]["allow_incentive"]
    path = tmp_path / "flat.yaml"
    path.write_text(yaml.safe_dump(data))
    result = cartbands("policy", "check", str(path))
    assert result.returncode == 1
    assert "never carries an incentive" in result.stderr
    assert "allow_incentive: true" in result.stderr


def test_simulate_default_vs_flat_prints_the_table_and_writes_html(tmp_path):
    page = tmp_path / "whatif.html"
    args = ("simulate", "--months", "1", "--seed", "3", "--html", str(page))
    result = cartbands(*args)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for label in (
        "overall recovery rate",
        "discount spend on the lowest band",
        "top-band (VIP) recovery rate",
        "recovered margin per recovered cart",
        "margin per dollar of spend",
    ):
        assert label in out
    assert "default" in out and "flat" in out and "1900 abandoned carts" in out
    low = next(line for line in out.splitlines() if line.startswith("discount spend on the lowest"))
    assert low.split()[6:8] == ["0.00", "USD"] and low.split()[8] != "0.00"
    for band in ("low (>= 0)", "mid (>= 50)", "high (>= 200)", "vip (>= 600)"):
        assert band in out
    text = page.read_text()
    assert text.count("<svg") == 3 and "<script" not in text and "src=" not in text
    # nothing that could load: every link is internal, the only URIs are namespaces
    assert all(href.startswith("#") for href in re.findall(r'href="([^"]*)"', text))
    assert not set(re.findall(r"https?://[^\s\"']+", text)) - {
        "http://www.w3.org/2000/svg",
        "http://www.w3.org/1999/xlink",
    }
    again = cartbands(*args)
    assert again.stdout == out
    assert page.read_text() == text  # the same seed, the same page, byte for byte


def test_simulate_two_policies_from_files(tmp_path):
    data: dict[str, Any] = yaml.safe_load(FLAT.read_text())
    for touch in data["defaults"]["bands"][0]["sequence"]:
        touch["incentive"]["value"] = 20
    rich = tmp_path / "rich.yaml"
    rich.write_text(yaml.safe_dump(data))
    result = cartbands(
        "simulate", "--policy", str(FLAT), "--against", str(rich),
        "--store-model", str(_small_store(tmp_path)), "--months", "1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    header = result.stdout.splitlines()[1]
    assert "flat" in header and "rich" in header
    assert "300 abandoned carts" in result.stdout


def test_simulate_refuses_a_bad_model_file(tmp_path):
    bad = tmp_path / "response.yaml"
    bad.write_text("response: {baseline: 2}\n")
    result = cartbands("simulate", "--response", str(bad), "--months", "1")
    assert result.returncode == 1
    assert "baseline" in result.stderr and "Traceback" not in result.stderr


def test_simulate_on_history_ndjson(tmp_path):
    from datetime import UTC, datetime

    import orjson

    from recovery.storemodel import generate

    history = tmp_path / "history.ndjson"
    events = generate(StoreModel(abandoned_per_month=200), 9, 1, datetime(2026, 8, 1, tzinfo=UTC))
    history.write_bytes(b"".join(orjson.dumps(e) + b"\n" for _, e in events))
    result = cartbands("simulate", "--history", str(history))
    assert result.returncode == 0, result.stderr
    assert f"{history} (200 abandoned carts)" in result.stdout
    history.write_text('{"type": "cart_updated"}\nnot json\n')
    broken = cartbands("simulate", "--history", str(history))
    assert broken.returncode == 1 and "history.ndjson:1" in broken.stderr
