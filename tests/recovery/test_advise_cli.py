"""``cartbands advise`` in-process: reading histories, malformed rows by line, drift, HTML."""

from __future__ import annotations

import json
import math
import random
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from cartbands.advise_input import read_history
from cartbands.cli import cli
from config.policyfile import DEFAULT_POLICY
from recovery.advise import AdviceError
from recovery.advise import advise as advise_core

START = datetime(2026, 1, 1, tzinfo=UTC)


def three_clusters(rng: random.Random, days: int = 60) -> list[tuple[str, str, bool]]:
    rows = []
    for median, n in ((25, 900), (140, 700), (900, 300)):
        for _ in range(n):
            value = f"{median * math.exp(rng.gauss(0, 0.25)):.2f}"
            when = (START + timedelta(minutes=rng.randrange(days * 1440))).isoformat()
            rows.append((value, when, rng.random() < 0.1))
    return rows


def write_csv(path: Path, rows: list[tuple[str, str, bool]], extra: str = "") -> Path:
    lines = ["total,currency,time,converted"]
    lines += [f"{value},USD,{when},{str(done).lower()}" for value, when, done in rows]
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


def advise(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["advise", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    return result.exit_code, result.stdout, result.stderr


def test_csv_with_three_clusters_proposes_bands_between_them(tmp_path: Path):
    history = write_csv(tmp_path / "h.csv", three_clusters(random.Random(1)))
    code, out, err = advise(str(history))
    assert code == 0, out + err
    bands = dict(re.findall(r"^  (low|mid|high|vip)\s+([\d,]+) ", out, re.M))
    assert 41 < int(bands["mid"]) < 85 and 231 < int(bands["high"]) < 604, out
    assert "3 clusters" in out
    assert "RED FLAG" not in out


def test_malformed_rows_are_named_by_line_and_the_rest_is_used(tmp_path: Path):
    bad = (
        "abc,USD,2026-01-02T00:00:00Z,false\n"
        "10.00,US,2026-01-02T00:00:00Z,false\n"
        "10.00,USD,yesterday,false\n"
        "10.00,USD,2026-01-02T00:00:00Z,maybe\n"
        "-5,USD,2026-01-02T00:00:00Z,false\n"
        "1,2,3,4,5\n"
        "1E+400,USD,2026-01-02T00:00:00Z,false\n"
    )
    rows = three_clusters(random.Random(2))
    history = write_csv(tmp_path / "h.csv", rows, bad)
    code, out, err = advise(str(history))
    assert code == 0, out + err
    first = len(rows) + 2
    for offset, why in enumerate(
        [
            "not a decimal amount",
            "ISO-4217",
            "ISO 8601",
            "true or false",
            "negative",
            "more fields",
            "out of range",
        ]
    ):
        assert f"h.csv: line {first + offset}: " in err and why in err, err
    assert "7 malformed rows skipped" in out
    assert "Traceback" not in out + err


def test_many_malformed_rows_are_capped(tmp_path: Path):
    history = write_csv(
        tmp_path / "h.csv", three_clusters(random.Random(3)), "x,USD,2026-01-02,false\n" * 45
    )
    code, _, err = advise(str(history))
    assert code == 0
    assert err.count(": line ") == 20 and "... and 25 more malformed rows" in err


def test_a_file_without_a_valid_row_exits_1(tmp_path: Path):
    history = tmp_path / "h.csv"
    history.write_text("total,currency,time,converted\nnope,USD,2026-01-01,false\n")
    code, _, err = advise(str(history))
    assert code == 1
    assert "line 2: total" in err and "no valid row" in err
    header = tmp_path / "bad.csv"
    header.write_text("amount,when\n1,2\n")
    code, _, err = advise(str(header))
    assert code == 1 and "line 1: the CSV header lacks total, currency, time, converted" in err


def test_ndjson_canonical_records_make_carts_and_orders():
    records = [
        {"type": "cart_updated", "store": "s", "checkout": "a", "event_id": "1",
         "occurred_at": "2026-01-01T10:00:00Z", "currency": "USD", "total": "40.00"},
        {"type": "cart_updated", "store": "s", "checkout": "a", "event_id": "2",
         "occurred_at": "2026-01-01T10:05:00Z", "currency": "USD", "total": "55.00"},
        {"type": "cart_completed", "store": "s", "checkout": "a", "event_id": "3",
         "occurred_at": "2026-01-01T11:00:00Z", "currency": "USD", "total": "55.00"},
        {"type": "cart_updated", "store": "s", "checkout": "b", "event_id": "4",
         "occurred_at": "2026-01-02T10:00:00Z", "currency": "USD", "total": "310.00"},
        {"type": "cart_completed", "store": "s", "checkout": "c", "event_id": "5",
         "occurred_at": "2026-01-03T10:00:00Z", "currency": "USD", "total": "20.00"},
        {"type": "consent_changed", "store": "s", "event_id": "6"},
        {"type": "cart_updated", "store": "other", "checkout": "z", "event_id": "7",
         "occurred_at": "2026-01-02T10:00:00Z", "currency": "USD", "total": "9.00"},
    ]  # fmt: skip
    lines = [json.dumps(r) for r in records[:4]]
    lines.append(json.dumps({"batch": records[4:]}))
    lines.append('{"type": "cart_updated", "store": "s", "checkout": "d"}')
    lines.append("not json")
    history = read_history("\n".join(lines) + "\n", store="s")
    carts = sorted((c.total, c.converted) for c in history.carts)
    assert carts == [(Decimal(20), True), (Decimal(55), True), (Decimal(310), False)]
    assert history.skipped == 2
    assert [line for line, _ in history.problems] == [6, 7]
    assert "lacks total" in history.problems[0][1]


def test_ndjson_simple_records_and_margin_or_cost():
    text = "\n".join(
        [
            '{"total": "100.00", "currency": "USD", "time": "2026-01-01T00:00:00", '
            '"converted": false, "margin": "45%"}',
            '{"total": "80", "currency": "usd", "time": "2026-01-01T00:00:00Z", '
            '"converted": "yes", "cost": "60"}',
            '{"total": "80", "currency": "USD", "time": "2026-01-01T00:00:00Z", '
            '"converted": false, "cost": "90"}',
        ]
    )
    history = read_history(text)
    first, second = history.carts
    assert first.margin == Decimal("0.45") and first.time.tzinfo is not None
    assert second.converted and second.currency == "USD" and second.margin == Decimal("0.25")
    assert history.problems == [(3, "cost 90 exceeds the total 80")]


def test_mixed_currencies_are_refused_unless_one_is_chosen(tmp_path: Path):
    rows = three_clusters(random.Random(4))
    history = write_csv(
        tmp_path / "h.csv",
        rows,
        "".join(f"12.00,EUR,{START.isoformat()},false\n" for _ in range(3)),
    )
    code, _, err = advise(str(history))
    assert code == 1 and "EUR (3 carts), USD (1900 carts)" in err and "--currency" in err
    code, out, _ = advise(str(history), "--currency", "USD")
    assert code == 0 and "in USD" in out


def test_policy_drift_and_its_costs(tmp_path: Path):
    rng = random.Random(5)
    rows = []
    for start, median in (
        (datetime(2026, 1, 1, tzinfo=UTC), 60),
        (datetime(2026, 7, 1, tzinfo=UTC), 150),
    ):
        for _ in range(1500):
            value = f"{median * math.exp(rng.gauss(0, 0.8)):.2f}"
            rows.append(
                (value, (start + timedelta(minutes=rng.randrange(88 * 1440))).isoformat(), False)
            )
    history = write_csv(tmp_path / "h.csv", rows)
    code, out, err = advise(str(history), "--policy", str(DEFAULT_POLICY))
    assert code == 0, out + err
    assert "Drift against the current bands of the defaults:" in out
    assert re.search(
        r"\d+% of carts now \(2026-Q3\) fall in mid; "
        r"when the bands were set \(2026-Q1\) it was \d+%",
        out,
    )
    assert "drifted" in out and "move it" in out
    code, _, err = advise(str(history), "--policy", str(DEFAULT_POLICY), "--store", "acme-eu")
    assert code == 1 and "no cart in EUR" in err
    code, _, err = advise(str(history), "--policy", str(DEFAULT_POLICY), "--store", "nope")
    assert code == 2 and "unknown store" in err


def test_policy_margin_and_costs_feed_the_arithmetic(tmp_path: Path):
    data = yaml.safe_load(DEFAULT_POLICY.read_text())
    data["defaults"]["margin"]["gross_margin"] = "0.2"
    data["defaults"]["delivery"] = {"costs": {"sms": "0.05", "ads": "3.00", "human": "40"}}
    policy = tmp_path / "p.yaml"
    policy.write_text(yaml.safe_dump(data))
    history = write_csv(tmp_path / "h.csv", three_clusters(random.Random(6)))
    code, out, err = advise(str(history), "--policy", str(policy))
    assert code == 0, out + err
    assert "median margin 20%" in out
    # 2 x 3.05 / (0.04 x (0.2 - 0.1)) = 1525: above the clusters' gap
    assert "the high floor raised to 1,525.00 USD" in out


def test_single_price_point_says_one_flow(tmp_path: Path):
    rows = [("49.00", (START + timedelta(hours=i)).isoformat(), False) for i in range(1500)]
    code, out, _ = advise(str(write_csv(tmp_path / "h.csv", rows)))
    assert code == 0
    assert "RED FLAG" in out and "nothing to tier" in out
    assert "Recommendation: one flow" in out


def test_html_has_the_histogram_and_the_threshold_lines(tmp_path: Path):
    history = write_csv(tmp_path / "h.csv", three_clusters(random.Random(7)))
    page = tmp_path / "advice.html"
    code, out, err = advise(str(history), "--html", str(page), "--policy", str(DEFAULT_POLICY))
    assert code == 0, out + err
    text = page.read_text(encoding="utf-8")
    assert text.count("<svg") == 1 and "</svg>" in text
    bands = dict(re.findall(r"^  (low|mid|high|vip)\s+([\d,]+) ", out, re.M))
    for name in ("mid", "high"):
        assert f'id="threshold-{bands[name].replace(",", "")}"' in text, name
    assert "log scale" in text
    assert "<script" not in text and 'href="http' not in text and "src=" not in text
    assert "Drift against the current bands" in text


def test_shopify_orders_export_is_read_one_order_per_name():
    header = (
        "Name,Email,Financial Status,Paid at,Fulfillment Status,Fulfilled at,Accepts Marketing,"
        "Currency,Subtotal,Shipping,Taxes,Total,Discount Code,Discount Amount,Shipping Method,"
        "Created at,Lineitem quantity,Lineitem name,Lineitem price"
    )
    rows = [
        "#1001,a@example.com,paid,,,,no,USD,90.00,10.00,0.00,100.00,,0,,"
        "2026-01-15 10:23:45 -0500,1,Knife,90.00",
        "#1001,a@example.com,,,,,,,,,,,,,,,1,Board,20.00",
        "#1002,b@x.io,paid,,,,no,USD,40.00,0,0,40.00,,0,,2026-01-16 09:00:00 -0500,1,Salt,40",
        "#1003,c@x.io,paid,,,,no,USD,40.00,0,0,4O.00,,0,,2026-01-16 09:00:00 -0500,1,Salt,40",
    ]
    history = read_history("\n".join([header, *rows]) + "\n")
    assert [(c.total, c.converted) for c in history.carts] == [
        (Decimal("100.00"), True),
        (Decimal("40.00"), True),
    ]
    assert history.carts[0].time == datetime(2026, 1, 15, 15, 23, 45, tzinfo=UTC)
    assert history.problems == [(5, "total: not a decimal amount: '4O.00'")]


def test_a_spreadsheet_bom_is_not_part_of_the_header(tmp_path: Path):
    history = write_csv(tmp_path / "h.csv", three_clusters(random.Random(8)))
    history.write_bytes(b"\xef\xbb\xbf" + history.read_bytes())
    code, out, err = advise(str(history))
    assert code == 0, out + err
    assert "Proposed bands:" in out


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=40),
            st.sampled_from(
                [
                    '{"total": "1", "currency": "USD", "time": "2026-01-01", "converted": 1}',
                    '{"type": "cart_updated", "total": []}',
                    '{"batch": [1, {"type": "cart_completed"}]}',
                    "12,USD,2026-02-30T00:00:00Z,false",
                    "NaN,USD,2026-01-01,false",
                    "1e-9,USD,2026-01-01,no",
                ]
            ),
        ),
        max_size=8,
    ),
    st.booleans(),
)
def test_any_text_reads_into_carts_and_named_problems(lines: list[str], as_csv: bool):
    head = ["total,currency,time,converted,margin"] if as_csv else []
    history = read_history("\n".join(head + lines))
    assert all(isinstance(line, int) and why for line, why in history.problems)
    if history.carts:
        try:
            advise_core(history.carts)
        except AdviceError as exc:
            assert "currencies" in str(exc) or "positive total" in str(exc)
