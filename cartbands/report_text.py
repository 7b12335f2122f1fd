"""The report as a terminal table: one row per band and a total, then a verdict per band."""

from __future__ import annotations

from decimal import Decimal

from recovery.report import BandReport, Report, money
from recovery.stats import Interval

COLUMNS = (
    "band",
    "carts T/H",
    "rate T",
    "rate H",
    "lift (95% CI)",
    "incr. margin/cart (95% CI)",
    "spend",
    "margin/$ total",
    "margin/$ incr.",
)


def render_text(report: Report) -> str:
    rows = [COLUMNS, *(row(b, report.currency) for b in [*report.bands, report.total])]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = [f"cartbands report: {report.scope}, {report.currency or 'no currency'}"]
    for index, cells in enumerate(rows):
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()
        )
        if index == 0 or index == len(rows) - 2:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    for band in [*report.bands, report.total]:
        lines.append(f"{band.band}: {band.verdict_text}")
    lines.extend(f"({note})" for note in notes(report))
    return "\n".join(lines)


def notes(report: Report) -> list[str]:
    """The carts a report leaves out of its rates, and why."""
    said = []
    if report.open_carts == 1:
        said.append("1 cart still inside its attribution window is not counted")
    elif report.open_carts:
        said.append(
            f"{report.open_carts} carts still inside their attribution window are not counted"
        )
    if report.passed_over:
        carts = "1 cart" if report.passed_over == 1 else f"{report.passed_over} carts"
        said.append(
            f"{carts} abandoned while the shopper's plan for another cart ran "
            "count in that plan (one sequence per shopper)"
        )
    return said


def row(band: BandReport, currency: str) -> tuple[str, ...]:
    t, h = band.treated, band.holdout
    margin = band.incremental_margin
    return (
        band.band,
        f"{t.carts}/{h.carts}",
        rate(band, 0),
        rate(band, 1),
        lift_text(band.lift),
        (
            f"{money(margin.estimate, currency)} ({money(margin.low, currency)}.."
            f"{money(margin.high, currency)})"
            if margin is not None
            else "-"
        ),
        money(t.spend, currency),
        ratio(band.margin_per_spend),
        ratio(band.incremental_margin_per_spend),
    )


def rate(band: BandReport, group: int) -> str:
    """The group's rate as the lift compares it (standardised to the band mix in the total);
    a group's own rate when the other group is empty."""
    if band.rates is not None:
        return percent(band.rates[group])
    figures = band.treated if group == 0 else band.holdout
    return percent(figures.rate.estimate) if figures.carts else "-"


def percent(value: float) -> str:
    return f"{value * 100:.1f}%"


def points(value: float) -> str:
    return f"{value * 100:+.1f}"


def lift_text(lift: Interval | None) -> str:
    if lift is None:
        return "-"
    return f"{points(lift.estimate)} pts ({points(lift.low)}..{points(lift.high)})"


def ratio(value: Decimal | None) -> str:
    return "-" if value is None else f"{value:.2f}"
