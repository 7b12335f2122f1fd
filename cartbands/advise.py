"""``cartbands advise HISTORY``: band thresholds from the store's own carts (recovery.advise)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import click

from cartbands.advise_input import History, read_history
from cartbands.explain import amount_param, store_policy
from config.policyfile import PolicyError, load_policy
from recovery.advise import Advice, AdviceError, Assumptions, advise, population, single_currency
from recovery.band_drift import Drift, drift

MAX_PROBLEMS = 20


def problem_lines(history: History, limit: int = MAX_PROBLEMS) -> list[str]:
    """Every malformed row by line number, the first ``limit`` of them spelled out."""
    lines = [f"line {line}: {why}" for line, why in history.problems[:limit]]
    rest = len(history.problems) - limit
    if rest > 0:
        lines.append(f"... and {rest} more malformed rows")
    return lines


def render(advice: Advice, coupon: Decimal) -> list[str]:
    """The advice as terminal lines."""
    kind = "abandoned carts" if advice.abandoned else "orders (no abandoned cart in the history)"
    q = advice.quantiles
    lines = [
        f"{advice.carts:,} {kind} in {advice.currency} over {advice.months:.1f} months "
        f"({advice.per_month:,} a month); median margin {advice.margin:.0%}",
        f"values: p10 {q['p10']:,}  p25 {q['p25']:,}  median {q['p50']:,}  p75 {q['p75']:,}  "
        f"p90 {q['p90']:,}",
    ]
    lines += [f"RED FLAG: {flag}" for flag in advice.flags]
    if advice.one_flow:
        lines.append("Recommendation: one flow for every cart (no value bands).")
    else:
        lines.append("Proposed bands:")
        for band in advice.bands:
            upper = "and up" if band.max is None else f"to {band.max:,}"
            cost = ""
            if band.median is not None and band.coupon_cost is not None and band.margin:
                cost = (
                    f"  median {band.median:,}: a {coupon:.0%} coupon takes {band.coupon_cost:,}"
                    f" of its {band.margin:,} margin ({band.coupon_cost / band.margin:.0%})"
                )
            lines.append(
                f"  {band.name:<5} {band.min:>8,} {upper:<12} {band.carts:>7,} carts "
                f"({band.share:>3.0%}){cost}"
            )
    lines += [f"  - {reason}" for reason in advice.reasons]
    return lines


@click.command("advise")
@click.argument("history", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--policy", type=click.Path(dir_okay=False), default=None, help="Report drift "
              "against this policy's bands; its margin and delivery costs are used.")  # fmt: skip
@click.option("--store", default=None, help="The store whose bands (and canonical records).")
@click.option("--currency", default=None, help="Advise on this currency of a mixed history.")
@click.option("--margin", callback=amount_param, default=None,
              help="Gross margin share of a cart without its own (default: the policy's, "
              "else 0.5).")  # fmt: skip
@click.option("--coupon", callback=amount_param, default="0.10", show_default=True,
              help="The typical coupon, a share of the cart.")  # fmt: skip
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write a self-contained page with the histogram and thresholds here.",
)
def advise_command(
    history: Path,
    policy: str | None,
    store: str | None,
    currency: str | None,
    margin: Decimal | None,
    coupon: Decimal,
    html_path: Path | None,
) -> None:
    """Recommend value-band thresholds from a history of carts and orders.

    HISTORY is CSV (total,currency,time,converted[,margin|cost]) or NDJSON (the same fields, or
    canonical cart_updated/cart_completed records). Malformed rows are listed by line.
    """
    try:
        text = history.read_text(encoding="utf-8-sig")  # a spreadsheet's BOM is no column
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{history}: cannot read: {exc}") from None
    read = read_history(text, store)
    for line in problem_lines(read):
        click.echo(f"{history}: {line}", err=True)
    if not read.carts:
        raise click.ClickException(f"{history}: no valid row")
    if margin is not None and not 0 < margin <= 1:
        raise click.BadParameter("a share between 0 and 1", param_hint="'--margin'")
    if not 0 <= coupon < 1:
        raise click.BadParameter("a share between 0 and 1", param_hint="'--coupon'")
    store_rules = None
    if policy is not None:
        try:
            store_rules = store_policy(load_policy(policy), store)
        except PolicyError as exc:
            raise click.ClickException(str(exc)) from None
    assumptions = Assumptions(coupon=coupon)
    if store_rules is not None:
        assumptions = Assumptions(
            coupon=coupon,
            margin=margin if margin is not None else store_rules.margin.gross_margin,
            costs=dict(store_rules.delivery.costs),
        )
    elif margin is not None:
        assumptions = Assumptions(coupon=coupon, margin=margin)
    if store_rules is not None and currency is not None and currency != store_rules.currency:
        raise click.ClickException(
            f"the policy's bands are in {store_rules.currency}, not {currency}"
        )
    try:
        code = single_currency(
            read.carts, currency or (store_rules.currency if store_rules else None)
        )
        advice = advise(read.carts, assumptions, code)
        shift: Drift | None = None
        if store_rules is not None:
            bands = [(band.name, band.min) for band in store_rules.bands]
            shift = drift(read.carts, bands, code, assumptions)
    except AdviceError as exc:
        raise click.ClickException(str(exc)) from None
    lines = render(advice, coupon)
    if shift is not None:
        lines.append(f"Drift against the current bands of {store or 'the defaults'}:")
        lines += [f"  {line}" for line in shift.lines()]
    else:
        lines.append("Re-check quarterly (AOV and margin drift): add --policy to compare.")
    if read.problems:
        lines.append(f"{len(read.problems)} malformed rows skipped (listed on stderr).")
    click.echo("\n".join(lines))
    if html_path is not None:
        from cartbands.advise_html import page

        values = [cart.total for cart in population(read.carts, code)[0]]
        html_path.write_text(page(advice, values, lines, shift), encoding="utf-8")
        click.echo(f"HTML: {html_path}")
