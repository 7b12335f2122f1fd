"""What ``cartbands run`` prints after the stream: the ledger per band and the report.

Both come from the stream's own records (``recoveries`` and ``touch-results``), folded by
:func:`recovery.ledger.outcomes`, exactly as ``cartbands report`` folds an export.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from recovery.ledger import by_band
from recovery.outcomes import CartOutcome
from recovery.report import build_reports

CENT = Decimal("0.01")


def ledger_lines(rows: Sequence[CartOutcome], band_order: Sequence[str]) -> list[str]:
    """Per band and group: carts, recovered, revenue, discount redeemed, channel costs."""
    totals = by_band(rows)
    rank = {band: index for index, band in enumerate(band_order)}
    keys = sorted(totals, key=lambda key: (rank.get(key[0], len(rank)), key[0], key[1]))
    currencies = sorted({row.currency for row in rows})
    unit = currencies[0] if len(currencies) == 1 else "mixed currencies"
    lines = [
        "",
        f"ledger per band ({unit}; treated carts got touches, holdout carts none; passed "
        "over: abandoned while the shopper's plan for another cart ran)",
        f"  {'band':<6} {'group':<8} {'carts':>6} {'recovered':>9} {'passed over':>11} "
        f"{'revenue':>11} "
        f"{'discount':>9} {'costs':>8}",
    ]
    for band, group in keys:
        summary = totals[(band, group)]
        costs = sum(summary.costs.values(), start=Decimal(0)).quantize(CENT)
        lines.append(
            f"  {band:<6} {group:<8} {summary.carts:>6} {summary.recovered:>9} "
            f"{summary.passed_over:>11} {summary.revenue:>11} {summary.discount:>9} {costs:>8}"
        )
    return lines


def report_lines(
    rows: Sequence[CartOutcome], band_order: Sequence[str], html_path: Path
) -> list[str]:
    """The per-band report (text) and its HTML page written to ``html_path``."""
    from cartbands.report_html import render_html
    from cartbands.report_text import render_text

    reports = build_reports(rows, band_order=band_order, seed=0)
    if not reports:
        return ["", "report: no abandoned carts in the records"]
    html_path.write_text(render_html(reports), encoding="utf-8")
    return ["", *(render_text(report) for report in reports)]
