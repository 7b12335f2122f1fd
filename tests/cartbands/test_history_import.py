"""Shopify's CSV exports and canonical NDJSON as simulation traffic; bad rows named by line."""

from __future__ import annotations

from pathlib import Path

import pytest

from cartbands.history import HistoryError, read_history

# Shopify's orders export layout: one row per line item, the order's columns on the first only
ORDERS = (
    "Name,Email,Financial Status,Paid at,Fulfillment Status,Fulfilled at,Accepts Marketing,"
    "Currency,Subtotal,Shipping,Taxes,Total,Discount Code,Discount Amount,Shipping Method,"
    "Created at,Lineitem quantity,Lineitem name,Lineitem price\n"
    "#1001,ann@example.com,paid,2026-05-01 10:00:00 +0000,fulfilled,,yes,USD,80.00,0,0,80.00,,0,"
    "Standard,2026-05-01 10:00:00 +0000,1,Mug,80.00\n"
    "#1002,ann@example.com,paid,2026-05-20 10:00:00 +0000,fulfilled,,yes,USD,40.00,0,0,40.00,,0,"
    "Standard,2026-05-20 10:00:00 +0000,1,Tea,40.00\n"
    "#1003,bo@example.com,paid,2026-07-01 10:00:00 +0000,fulfilled,,no,USD,10.00,0,0,10.00,,0,"
    "Standard,2026-07-01 10:00:00 +0000,1,Card,10.00\n"
)
CHECKOUTS = (
    "Id,Name,Email,Accepts Marketing,Currency,Subtotal,Total,Created at,Lineitem quantity,"
    "Lineitem name,Lineitem price,Billing Province,Billing Phone\n"
    "9001,#c9001,Ann@Example.com,yes,USD,310.00,310.00,2026-06-02 09:00:00 +0000,1,Grinder,"
    "250.00,NY,+12125550100\n"
    ",,,,,,,,2,Filter,30.00,,\n"
    "9002,#c9002,bo@example.com,no,USD,42.00,42.00,2026-06-03 11:30:00 -0500,1,Tea,42.00,IL,\n"
)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_checkouts_become_carts_and_orders_give_the_shoppers_past(tmp_path):
    orders = _write(tmp_path, "orders_export.csv", ORDERS)
    checkouts = _write(tmp_path, "checkouts.csv", CHECKOUTS)
    events = read_history([checkouts, orders], "demo")
    assert [e["checkout"] for _, e in events] == ["9001", "9002"]
    first = events[0][1]
    assert first["total"] == "310.00" and first["currency"] == "USD"
    assert [i["title"] for i in first["line_items"]] == ["Grinder", "Filter"]
    assert first["line_items"][1]["quantity"] == 2
    assert first["contact"]["email"] == "ann@example.com" and first["contact"]["email_consent"]
    # Ann ordered twice before this cart (the order of 2026-07-01 is Bo's and after his cart)
    assert first["customer"] == {"orders_count": 2, "total_spent": "120.00"}
    assert "customer" not in events[1][1]
    assert events[1][0] - events[0][0] == 31.5 * 3600  # 11:30 at UTC-5 is 16:30 UTC


def test_malformed_rows_are_named_by_line(tmp_path):
    bad = CHECKOUTS.replace("310.00,2026-06-02", "lots,2026-06-02").replace(
        "2026-06-03 11:30:00 -0500", "yesterday"
    )
    path = _write(tmp_path, "checkouts.csv", bad)
    with pytest.raises(HistoryError) as caught:
        read_history([path], "demo")
    assert caught.value.problems == [
        f"{path}:2: Total: not an amount: 'lots'",
        f"{path}:4: not a time like 2026-05-01 10:00:00 +0200: 'yesterday'",
    ]


def test_a_missing_column_and_a_bad_ndjson_line_are_refused(tmp_path):
    path = _write(tmp_path, "checkouts.csv", "Id,Total\n1,2\n")
    with pytest.raises(HistoryError, match=r"checkouts.csv:1: missing column\(s\) Currency"):
        read_history([path], "demo")
    lines = _write(tmp_path, "h.ndjson", '{"type": "cart_updated", "occurred_at": "x"}\n')
    with pytest.raises(HistoryError, match=r"h.ndjson:1"):
        read_history([lines], "demo")
