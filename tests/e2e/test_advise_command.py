"""``cartbands advise`` as a user runs it: a seed-like store's month, and a broken file."""

from __future__ import annotations

import math
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from config.policyfile import DEFAULT_POLICY


def cartbands(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cartbands", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_advise_on_a_seed_like_store(tmp_path: Path):
    # seed 000's worked example: AOV 96 with a wide right-skewed spread, 50% margin,
    # ~1,900 abandoned carts a month
    rng = random.Random(0)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    lines = ["total,currency,time,converted,margin"]
    for _ in range(1900):
        value = 70 * math.exp(rng.gauss(0, 0.85))
        when = start + timedelta(minutes=rng.randrange(30 * 1440))
        lines.append(f"{value:.2f},USD,{when:%Y-%m-%dT%H:%M:%SZ},false,0.5")
    history = tmp_path / "carts.csv"
    history.write_text("\n".join(lines) + "\n", encoding="utf-8")
    page = tmp_path / "advice.html"
    result = cartbands("advise", str(history), "--policy", str(DEFAULT_POLICY), "--html", str(page))
    assert result.returncode == 0, result.stderr + result.stdout
    out = result.stdout
    assert "1,900 abandoned carts in USD" in out
    assert "Proposed bands:" in out and "  low " in out and "  mid " in out and "  high " in out
    assert "RED FLAG" not in out
    assert "fall in mid; when the bands were set" not in out  # one month: one quarter
    assert "spans one quarter" in out
    assert f"HTML: {page}" in out and "<svg" in page.read_text(encoding="utf-8")


def test_advise_on_a_broken_file_exits_1_naming_lines(tmp_path: Path):
    history = tmp_path / "carts.ndjson"
    history.write_text('{"total": "x", "currency": "USD"}\n[1, 2]\n', encoding="utf-8")
    result = cartbands("advise", str(history))
    assert result.returncode == 1
    assert "line 1: missing time, converted" in result.stderr
    assert "line 2: not a JSON object" in result.stderr
    assert "no valid row" in result.stderr and "Traceback" not in result.stderr
