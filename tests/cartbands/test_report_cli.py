"""``cartbands report``: its input errors, its table and its self-contained HTML page."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cartbands import report_cmd
from cartbands.broker import free_port
from cartbands.cli import cli
from cartbands.report_html import render_html
from recovery.report import build_report
from tests.recovery.report_rows import band_rows, cart

SVG_NAMESPACES = ("http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink")


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["report", *args])
    # Every failure is a clean exit with a message, never an exception's traceback.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    return result.exit_code, result.output


def outcomes() -> list[Any]:
    rows = band_rows("low", 200, 30, 50, 6, 0, margin="12", discount="0", email="0.01")
    rows += band_rows("mid", 300, 60, 100, 8, 1000, margin="40", discount="5", email="0.01")
    rows += band_rows("high", 60, 20, 15, 2, 2000, margin="90", discount="0", sms="0.8")
    rows.append(cart(9000, "mid", "treated", "open"))
    return rows


def test_it_needs_exactly_one_source(tmp_path: Path):
    code, out = invoke()
    assert code == 2 and "exactly one of --from" in out
    export = tmp_path / "x.ndjson"
    export.write_text("")
    code, out = invoke("--from", str(export), "--broker", "kafka://127.0.0.1:1")
    assert code == 2 and "exactly one of --from" in out


def test_malformed_lines_are_named_by_line_number(tmp_path: Path):
    export = tmp_path / "export.ndjson"
    export.write_text(
        '{"topic": "recoveries", "value": {}}\n{"topic": \n\n[1, 2]\n{"topic": "touch-results"}\n'
    )
    code, out = invoke("--from", str(export))
    assert code == 1
    assert f"{export}:2: not JSON" in out
    assert f"{export}:4: not a JSON object" in out
    assert ":1:" not in out and ":5:" not in out
    assert "--skip-malformed" in out


def test_skip_malformed_names_them_and_reports_the_rest(tmp_path: Path, monkeypatch):
    export = tmp_path / "export.ndjson"
    wrapped = '{"topic": "touch-results", "key": "t1", "value": {"type": "touch_result"}}'
    export.write_text(f'{{"type": "plan", "n": 1}}\nnot json\n{wrapped}\n{{"type": "recovery"}}\n')
    seen: list[Any] = []

    def fold(records: list[dict[str, Any]], policies: Any, as_of: datetime) -> list[Any]:
        seen.append((records, as_of))
        return outcomes()

    monkeypatch.setattr(report_cmd, "fold", fold)
    result = CliRunner().invoke(
        cli, ["report", "--from", str(export), "--skip-malformed", "--as-of", "2026-12-01"]
    )
    assert result.exit_code == 0, result.output
    records, as_of = seen[0]
    # Records as the stream wrote them; a line that wraps one as topic/key/value is unwrapped.
    assert records == [{"type": "plan", "n": 1}, {"type": "touch_result"}, {"type": "recovery"}]
    assert as_of == datetime(2026, 12, 1, tzinfo=UTC)
    assert f"skipped: {export}:2: not JSON" in result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "cartbands report: all stores, USD"
    # Bands in the policy's order, then the total; one verdict line per band.
    assert [line.split()[0] for line in lines[1:8] if not line.startswith("-")] == [
        "band", "low", "mid", "high", "total",
    ]  # fmt: skip
    assert any(line.startswith("high: too few carts to tell: 15 holdout carts") for line in lines)
    assert "(1 cart still inside its attribution window is not counted)" in lines


def test_html_page_is_well_formed_self_contained_and_has_its_charts(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(report_cmd, "fold", lambda records, policies, as_of: outcomes())
    export = tmp_path / "export.ndjson"
    export.write_text('{"topic": "recoveries"}\n')
    page = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["report", "--from", str(export), "--html", str(page)])
    assert result.exit_code == 0, result.output
    assert f"HTML report: {page}" in result.output
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    root = ET.fromstring(html.removeprefix("<!DOCTYPE html>\n"))  # well-formed, as XML even
    svg = "{http://www.w3.org/2000/svg}svg"
    charts = list(root.iter(svg))
    assert len(charts) == 3
    texts = " ".join("".join(c.itertext()) for c in charts)
    assert "Recovered carts: treated vs holdout" in texts
    assert "Recovered margin per unit of recovery spend" in texts
    assert "Margin recovery adds per cart, after its spend" in texts
    assert [td.text for td in root.iter("td")][:1] == ["low"]
    # Nothing is fetched from anywhere: the only URLs are the SVG format's namespace names.
    rest = html
    for name in SVG_NAMESPACES:
        rest = rest.replace(f'"{name}"', '""')
    assert not re.search(r"https?:|//[a-z]|<script|<link|@import", rest)


def test_the_page_is_the_same_for_the_same_outcomes():
    report = build_report(outcomes(), scope="s", resamples=100)
    assert render_html([report]) == render_html([report])


def test_a_broker_that_is_not_there_is_one_clear_error():
    url = f"kafka://127.0.0.1:{free_port()}"
    code, out = invoke("--broker", url, "--timeout", "3")
    assert code == 1
    assert "not reachable" in out and "Traceback" not in out


def test_a_bad_as_of_and_a_missing_file_are_usage_errors(tmp_path: Path):
    export = tmp_path / "export.ndjson"
    export.write_text("")
    code, out = invoke("--from", str(export), "--as-of", "yesterday")
    assert code == 2 and "ISO 8601" in out
    code, out = invoke("--from", str(tmp_path / "none.ndjson"))
    assert code == 1 and "cannot read it" in out


@pytest.mark.parametrize("store", ["s1", None])
def test_no_carts_is_said_plainly(tmp_path: Path, monkeypatch, store):
    monkeypatch.setattr(report_cmd, "fold", lambda records, policies, as_of: [])
    export = tmp_path / "export.ndjson"
    export.write_text("")
    code, out = invoke("--from", str(export), *(["--store", store] if store else []))
    assert code == 1 and "no abandoned carts" in out
