"""The report as one self-contained HTML page: two inline SVG charts and the table.

The charts are drawn by matplotlib on its SVG backend (no display, no pyplot state) and
inlined; the page loads nothing from anywhere, so it can be mailed or opened offline.
"""

from __future__ import annotations

import io
from html import escape

from cartbands.report_text import COLUMNS, notes, row
from recovery.report import BandReport, Report

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; color: #222; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: .3rem .6rem; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr.total td { font-weight: bold; border-top: 2px solid #999; }
li.pays { color: #1a7f37; } li.costs { color: #b3261e; } li.too_few, li.unclear { color: #666; }
.charts { display: flex; flex-wrap: wrap; gap: 1rem; }
"""
TREATED, HOLDOUT, INCREMENTAL = "#2f6fb0", "#b0b0b0", "#1a7f37"
VERDICT_COLOURS = {
    "pays": "#1a7f37",
    "costs": "#b3261e",
    "too_few": "#b0b0b0",
    "unclear": "#b0b0b0",
}


def render_html(reports: list[Report]) -> str:
    body = "\n".join(_section(r) for r in reports)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8"/>'
        "<title>cartbands report</title>"
        f"<style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


def _section(report: Report) -> str:
    title = escape(f"Recovery by band: {report.scope}, {report.currency}")
    verdicts = "".join(
        f'<li class="{b.verdict}"><b>{escape(b.band)}</b>: {escape(b.verdict_text)}</li>'
        for b in [*report.bands, report.total]
    )
    head = "".join(f"<th>{escape(c)}</th>" for c in COLUMNS)
    rows = "".join(
        ('<tr class="total">' if b is report.total else "<tr>")
        + "".join(f"<td>{escape(c)}</td>" for c in row(b, report.currency))
        + "</tr>"
        for b in [*report.bands, report.total]
    )
    note = "".join(f"<p>{escape(text)}.</p>" for text in notes(report))
    return (
        f"<h1>{title}</h1>\n<ul>{verdicts}</ul>\n"
        f'<div class="charts">{rate_chart(report.bands)}{margin_chart(report)}'
        f"{spend_chart(report)}</div>\n"
        f"<h2>The numbers</h2>\n<table><thead><tr>{head}</tr></thead>"
        f"<tbody>{rows}</tbody></table>\n{note}"
        "<p>T: treated carts (got the touches); H: holdout carts (kept as a control). "
        "Lift: treated minus holdout recovery rate, Newcombe hybrid score 95% interval. "
        "Incremental margin per cart: after discounts and channel costs, percentile bootstrap "
        "95% interval. Margin per $: recovered net margin per unit of spend (discounts redeemed "
        "plus channel costs); incremental: beyond what the holdout rate predicts.</p>"
    )


def rate_chart(bands: list[BandReport]) -> str:
    """Recovery rate per band, treated beside holdout, with Wilson 95% interval bars."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.6))
    ax = fig.add_subplot()
    xs = list(range(len(bands)))
    for offset, group, colour in ((-0.2, "treated", TREATED), (0.2, "holdout", HOLDOUT)):
        figures = [getattr(b, group) for b in bands]
        rates = [g.rate.estimate * 100 for g in figures]
        below = [(g.rate.estimate - g.rate.low) * 100 for g in figures]
        above = [(g.rate.high - g.rate.estimate) * 100 for g in figures]
        ax.bar(
            [x + offset for x in xs],
            rates,
            width=0.4,
            color=colour,
            label=group,
            yerr=[below, above],
            capsize=4,
        )
    ax.set_xticks(xs, [b.band for b in bands])
    ax.set_ylabel("recovery rate, % (95% CI)")
    ax.set_title("Recovered carts: treated vs holdout")
    ax.legend(frameon=False, loc="upper left")
    ax.spines[["top", "right"]].set_visible(False)
    return svg(fig)


def margin_chart(report: Report) -> str:
    """Incremental margin per abandoned cart per band and in total, with its 95% interval:
    a bar clear of zero is a verdict; one across it is not yet."""
    from matplotlib.figure import Figure

    shown = [
        (b, b.incremental_margin)
        for b in [*report.bands, report.total]
        if b.incremental_margin is not None
    ]
    fig = Figure(figsize=(6, 3.6))
    ax = fig.add_subplot()
    xs = list(range(len(shown)))
    values = [float(m.estimate) for _, m in shown]
    below = [float(m.estimate - m.low) for _, m in shown]
    above = [float(m.high - m.estimate) for _, m in shown]
    colours = [VERDICT_COLOURS[b.verdict] for b, _ in shown]
    ax.bar(xs, values, width=0.6, color=colours, yerr=[below, above], capsize=4)
    ax.axhline(0, color="#444", linewidth=1)
    ax.set_xticks(xs, [b.band for b, _ in shown])
    ax.set_ylabel(f"{report.currency} per abandoned cart (95% CI)")
    ax.set_title("Margin recovery adds per cart, after its spend")
    ax.spines[["top", "right"]].set_visible(False)
    return svg(fig)


def spend_chart(report: Report) -> str:
    """Recovered margin per unit of spend per band: total and incremental."""
    from matplotlib.figure import Figure

    bands = report.bands
    fig = Figure(figsize=(6, 3.6))
    ax = fig.add_subplot()
    xs = list(range(len(bands)))
    total = [float(b.margin_per_spend or 0) for b in bands]
    incremental = [float(b.incremental_margin_per_spend or 0) for b in bands]
    ax.bar([x - 0.2 for x in xs], total, width=0.4, color=TREATED, label="total")
    ax.bar([x + 0.2 for x in xs], incremental, width=0.4, color=INCREMENTAL, label="incremental")
    ax.set_xticks(xs, [b.band for b in bands])
    ax.set_ylabel(f"margin per {report.currency} of spend")
    ax.set_title("Recovered margin per unit of recovery spend")
    ax.legend(frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return svg(fig)


def svg(fig: object) -> str:
    """The figure as an inline ``<svg>`` element: no XML prolog, no metadata, text as text,
    the same bytes for the same figure."""
    from matplotlib import rc_context

    buffer = io.StringIO()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "cartbands"}):
        fig.savefig(  # type: ignore[attr-defined]
            buffer,
            format="svg",
            bbox_inches="tight",
            metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
        )
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    return text.replace("<svg", '<svg role="img"', 1)
