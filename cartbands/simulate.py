"""``cartbands simulate``: two policies on the same traffic, through the same core.

The shell around :mod:`recovery.whatif`: reads the policies, the response model, the store
model or the merchant's history (canonical NDJSON, as ``cartbands replay`` reads it), runs
both policies and prints seed 000's benchmark table side by side, in total and per band (the
bands of the first policy, applied to both by cart value), and optionally an HTML page.
"""

from __future__ import annotations

import html
import io
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import click
import yaml
from pydantic import ValidationError

from cartbands.history import HistoryError, read_history
from config.policyfile import DEFAULT_POLICY, PolicyError, load_policy
from recovery.policyset import PolicySet
from recovery.response import ResponseModel, parse_response
from recovery.storemodel import StoreModel, generate, parse_store_model
from recovery.whatif import Benchmark, Run, benchmark, by_band, run, with_margin

POLICIES = DEFAULT_POLICY.parent
FLAT_POLICY = POLICIES / "flat.yaml"
RESPONSE = POLICIES / "response.yaml"
START = datetime(2026, 9, 1, tzinfo=UTC)
SECRET = b"cartbands-simulate"  # codes are never sent: any fixed key keeps runs identical

METRICS: tuple[tuple[str, str], ...] = (
    ("carts", "abandoned carts (treated)"),
    ("rate", "overall recovery rate"),
    ("low_discount", "discount spend on the lowest band"),
    ("top_rate", "top-band (VIP) recovery rate"),
    ("margin_per_cart", "recovered margin per recovered cart"),
    ("margin_per_spend", "margin per dollar of spend"),
    ("margin", "recovered margin"),
    ("spend", "spend (discounts redeemed + channels)"),
    ("holdout", "holdout recovery rate"),
)


def _yaml(path: Path | None, what: str) -> Any:
    if path is None:
        return {}
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise click.ClickException(f"{what} {path}: {exc}") from None


def _model(loader: Any, path: Path | None, what: str) -> Any:
    try:
        return loader(_yaml(path, what))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(file)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise click.ClickException(f"{what} {path}: {problems}") from None


def _policies(path: Path) -> PolicySet:
    try:
        return load_policy(path)
    except PolicyError as exc:
        raise click.ClickException(str(exc)) from None


def _rate(count: int, of: int) -> str:
    return f"{100 * count / of:.1f}% ({count}/{of})" if of else "-"


def _money(value: Decimal | None, currency: str) -> str:
    return "-" if value is None else f"{value:,.2f} {currency}"


def figures(total: Benchmark, bands: dict[str, Benchmark], currency: str) -> dict[str, str]:
    """The benchmark table's cells for one policy."""
    names = list(bands)
    low, top = bands[names[0]], bands[names[-1]]
    ratio = total.margin_per_spend
    return {
        "carts": str(total.carts),
        "rate": _rate(total.recovered, total.carts),
        "low_discount": _money(low.discount, currency),
        "top_rate": _rate(top.recovered, top.carts),
        "margin_per_cart": _money(total.margin_per_recovered, currency),
        "margin_per_spend": "-" if ratio is None else f"{ratio:,.2f}",
        "margin": _money(total.margin, currency),
        "spend": _money(total.spend.quantize(Decimal("0.01")), currency),
        "holdout": _rate(total.holdout_recovered, total.holdout_carts),
    }


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(c.ljust(w) for c, w in zip(header, widths, strict=True)), line]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


def render(
    names: tuple[str, str], runs: tuple[Run, Run], bands: list[tuple[str, Decimal]], currency: str
) -> tuple[str, dict[str, Any]]:
    """The terminal text and the numbers behind it (for the HTML page and tests)."""
    data: dict[str, Any] = {"names": names, "total": [], "bands": []}
    cells = []
    for one in runs:
        per_band = by_band(one.outcomes, bands)
        total = benchmark(one.outcomes)
        data["total"].append(total)
        data["bands"].append(per_band)
        cells.append(figures(total, per_band, currency))
    rows = [[label, cells[0][key], cells[1][key]] for key, label in METRICS]
    text = [_table(["benchmark (seed 000)", names[0], names[1]], rows), ""]
    band_rows = []
    for name, low in bands:
        for i, policy in enumerate(names):
            one = data["bands"][i][name]
            ratio = one.margin_per_spend
            band_rows.append(
                [
                    f"{name} (>= {low})" if i == 0 else "",
                    policy,
                    _rate(one.recovered, one.carts),
                    _money(one.discount, currency),
                    _money(one.margin_per_recovered, currency),
                    "-" if ratio is None else f"{ratio:,.2f}",
                ]
            )
    header = [
        "band",
        "policy",
        "recovery rate",
        "discount spend",
        "margin/recovered",
        "margin/spend",
    ]
    text.append(_table(header, band_rows))
    return "\n".join(text), data


def _bars(title: str, labels: list[str], series: list[tuple[str, list[float]]]) -> str:
    """A grouped bar chart as inline SVG: matplotlib's SVG backend (no display, no pyplot
    state), fonts as paths and a fixed id salt and no date, so the page is self-contained and
    the same numbers give the same bytes."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    with rc_context({"svg.hashsalt": "cartbands-simulate", "svg.fonttype": "path"}):
        figure = Figure(figsize=(6.4, 2.8))
        axes = figure.add_subplot()
        width = 0.8 / max(1, len(series))
        for index, (name, values) in enumerate(series):
            offsets = [g + (index - (len(series) - 1) / 2) * width for g in range(len(labels))]
            axes.bar(offsets, values, width, label=name)
        axes.set_xticks(range(len(labels)), labels)
        axes.set_title(title)
        axes.legend()
        figure.tight_layout()
        out = io.StringIO()
        figure.savefig(out, format="svg", metadata={"Date": None})
    text = out.getvalue()
    text = text[text.index("<svg") :]
    # the RDF metadata block only names its vocabularies' URIs: drop it, the page names none
    start, end = text.find("<metadata>"), text.find("</metadata>")
    if 0 <= start < end:
        text = text[:start] + text[end + len("</metadata>") :]
    return text


def html_page(text: str, data: dict[str, Any], bands: list[tuple[str, Decimal]]) -> str:
    names = list(data["names"])
    labels = [name for name, _ in bands]

    def per_band(attr: str, scale: float = 1.0) -> list[tuple[str, list[float]]]:
        return [
            (names[i], [float(getattr(data["bands"][i][b], attr) or 0) * scale for b in labels])
            for i in (0, 1)
        ]

    charts = [
        _bars("recovery rate per band (%)", labels, per_band("recovery_rate", 100)),
        _bars("discount spend per band", labels, per_band("discount")),
        _bars("recovered margin per band", labels, per_band("margin")),
    ]
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>cartbands simulate</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "pre{background:#f4f4f4;padding:1em;overflow-x:auto}</style></head><body>"
        f"<h1>What if: {html.escape(names[0])} vs {html.escape(names[1])}</h1>"
        f"<pre>{html.escape(text)}</pre>"
        + "".join(f"<p>{c}</p>" for c in charts)
        + "</body></html>"
    )


@click.command("simulate")
@click.option(
    "--policy",
    "policy_a",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_POLICY,
    show_default="policies/default.yaml",
    help="The store's policy (its bands group the table).",
)
@click.option(
    "--against",
    "policy_b",
    type=click.Path(dir_okay=False, path_type=Path),
    default=FLAT_POLICY,
    show_default="policies/flat.yaml",
    help="The policy to compare with.",
)
@click.option(
    "--history",
    type=click.Path(dir_okay=False, path_type=Path),
    multiple=True,
    help="The store's own carts instead of the store model (repeatable): canonical events "
    "(.ndjson), Shopify's abandoned-checkout export (.csv) and its orders export (.csv, for "
    "each shopper's earlier orders).",
)
@click.option(
    "--store-model",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Store model parameters (policies/store-model.yaml); default: seed 000's store.",
)
@click.option(
    "--response",
    type=click.Path(dir_okay=False, path_type=Path),
    default=RESPONSE,
    show_default="policies/response.yaml",
    help="The response model.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--months",
    type=click.IntRange(1, 24),
    default=3,
    show_default=True,
    help="Months of generated traffic.",
)
@click.option(
    "--margin",
    type=str,
    default=None,
    help="The store's gross margin (0.5); default: the store model's.",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write a self-contained HTML page here.",
)
def simulate(
    policy_a: Path,
    policy_b: Path,
    history: tuple[Path, ...],
    store_model: Path | None,
    response: Path,
    seed: int,
    months: int,
    margin: str | None,
    html_path: Path | None,
) -> None:
    """What if: run two policies on the same carts through the same core and compare them.

    Shoppers answer the touches each policy's core emits (after caps, consent and quiet
    hours) under the response model; the same seed gives the same numbers.
    """  # fmt: skip
    model: ResponseModel = _model(parse_response, response, "response model")
    store: StoreModel = _model(parse_store_model, store_model, "store model")
    if history:
        try:
            traffic = read_history(list(history), store.store)
        except HistoryError as exc:
            raise click.ClickException(str(exc)) from None
        if not traffic:
            raise click.ClickException(
                "history: no abandoned carts in " + ", ".join(map(str, history))
            )
        source = f"{', '.join(map(str, history))} ({len(traffic)} abandoned carts)"
    else:
        traffic = generate(store, seed, months, START)
        source = f"store model, {months} month(s), {len(traffic)} abandoned carts, seed {seed}"
    try:
        gross = Decimal(margin) if margin is not None else store.gross_margin
    except ArithmeticError:
        raise click.ClickException(f"--margin: not a number: {margin!r}") from None
    if not 0 <= gross <= 1:
        raise click.ClickException(f"--margin: a share between 0 and 1, not {gross}")
    sets = [with_margin(_policies(path), gross) for path in (policy_a, policy_b)]
    runs = (
        run(sets[0], traffic, model, seed, lambda _store: SECRET),
        run(sets[1], traffic, model, seed, lambda _store: SECRET),
    )
    bands = [(band.name, band.min) for band in sets[0].defaults.bands]
    names = (policy_a.stem, policy_b.stem)
    text, data = render(names, runs, bands, sets[0].defaults.currency)
    click.echo(f"traffic: {source}; gross margin {gross}; response model {response.name}")
    click.echo(text)
    if html_path is not None:
        html_path.write_text(html_page(text, data, bands), encoding="utf-8")
        click.echo(f"HTML: {html_path}")
