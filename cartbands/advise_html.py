"""The ``cartbands advise --html`` page: the cart histogram with the thresholds, self-contained.

matplotlib draws with its SVG backend (no display, no network); the SVG goes inline into one
HTML file with no script and no external resource.
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Sequence
from decimal import Decimal

from recovery.advise import Advice
from recovery.band_drift import Drift

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222}"
    "table{border-collapse:collapse}td,th{padding:.3em .8em;border-bottom:1px solid #ddd;"
    "text-align:right}th:first-child,td:first-child{text-align:left}.flag{color:#a40}"
)


def histogram_svg(
    values: Sequence[Decimal],
    thresholds: Sequence[Decimal],
    currency: str,
    current: Sequence[Decimal] = (),
) -> str:
    """An SVG histogram of ``values`` on a log value axis, a line at each threshold (proposed:
    solid, the policy's current ones: dashed)."""
    import matplotlib

    matplotlib.use("svg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import FuncFormatter

    numbers = [float(v) for v in values if v > 0]
    low, high = min(numbers), max(numbers)
    if high <= low:
        low, high = low / 1.5, high * 1.5
    count = 60
    step = (math.log10(high) - math.log10(low)) / count
    edges = [10 ** (math.log10(low) + i * step) for i in range(count + 1)]
    figure, axes = plt.subplots(figsize=(9, 4))
    try:
        axes.hist(numbers, bins=edges, color="#7a9cc6", edgecolor="white")
        axes.set_xscale("log")
        axes.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,.0f}"))
        axes.set_xlabel(f"cart value ({currency}, log scale)")
        axes.set_ylabel("carts")
        for value in current:
            if value > 0:
                axes.axvline(float(value), color="#888", linestyle="--", linewidth=1.2)
        for value in thresholds:
            axes.axvline(float(value), color="#c0392b", linewidth=2, gid=f"threshold-{value}")
            axes.annotate(
                f"{value:,}",
                (float(value), 1),
                xycoords=("data", "axes fraction"),
                xytext=(3, -12),
                textcoords="offset points",
                color="#c0392b",
            )
        figure.tight_layout()
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    finally:
        plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _amount(value: Decimal | None) -> str:
    return "" if value is None else f"{value:,}"


def page(
    advice: Advice,
    values: Sequence[Decimal],
    lines: Sequence[str],
    drift: Drift | None = None,
) -> str:
    """The whole page: the histogram, the proposed bands, the reasons, flags and drift."""
    current = [share.min for share in drift.shares] if drift else []
    svg = histogram_svg(values, advice.thresholds, advice.currency, current)
    rows = "".join(
        f"<tr><td>{html.escape(band.name)}</td><td>{band.min:,}</td>"
        f"<td>{'' if band.max is None else f'{band.max:,}'}</td>"
        f"<td>{band.carts:,}</td><td>{band.share:.1%}</td>"
        f"<td>{_amount(band.median)}</td><td>{_amount(band.coupon_cost)}</td>"
        f"<td>{_amount(band.margin)}</td></tr>"
        for band in advice.bands
    )
    flags = "".join(f'<li class="flag">{html.escape(f)}</li>' for f in advice.flags)
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in advice.reasons)
    drift_part = ""
    if drift is not None:
        items = "".join(f"<li>{html.escape(line)}</li>" for line in drift.lines())
        drift_part = f"<h2>Drift against the current bands</h2><ul>{items}</ul>"
    report = html.escape("\n".join(lines))
    legend = "red: proposed thresholds" + ("; dashed grey: current bands" if drift else "")
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>cartbands advise</title>"
        f"<style>{STYLE}</style></head><body><h1>Band advice ({html.escape(advice.currency)})</h1>"
        f"<figure>{svg}<figcaption>{legend}</figcaption></figure>"
        f"<ul>{flags}</ul>"
        "<table><tr><th>band</th><th>from</th><th>below</th><th>carts</th><th>share</th>"
        "<th>median cart</th><th>coupon on it</th><th>its margin</th></tr>"
        f"{rows}</table><h2>Why</h2><ul>{reasons}</ul>{drift_part}"
        f"<h2>Report</h2><pre>{report}</pre></body></html>"
    )
