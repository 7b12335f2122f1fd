"""``cartbands policy explain``: the plan a cart would get, with every reason.

A tool for a person tuning a policy: it builds a cart and a profile (the shopper's history
from ``--orders``, ``--discount-orders`` and ``--abandonments``, or the smallest one matching
``--segment``; the cart's price signals from ``--shipping`` and ``--peak-total``), runs the
pure core's :func:`recovery.plan.plan_recovery`, then lets
:func:`recovery.decide.due_touches` walk the whole plan past its last due time (each touch
decided at its due time, deferrals followed, earlier sends counted against gaps and caps) to
show when and whether each touch would go out, and why.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import click

from config.policyfile import PolicyError, PolicySet, load_policy
from recovery.decide import PlanState, TouchDecision, due_touches
from recovery.durations import format_duration
from recovery.ids import shopper_key
from recovery.model import Cart, ContactInfo, Item, Plan, PlannedTouch, Profile
from recovery.money import MoneyError, parse_amount
from recovery.plan import plan_recovery
from recovery.policy import SEGMENTS, StorePolicy
from recovery.policyset import nearest

EXAMPLE_SECRET = b"cartbands-explain-example-secret"
DEFAULTS = "(defaults)"
"""The store name shown when no --store is given: the policy every unnamed store runs on."""


def store_policy(policies: PolicySet, store: str | None) -> StorePolicy:
    """The policy of a store the file names; the defaults for None; else a usage error.

    At run time a store the file does not name runs on the defaults, but asked for by name here
    it is far more often a typo, which would silently show the wrong policy.
    """
    if store is None:
        return policies.defaults
    if store in policies.stores:
        return policies.stores[store]
    known = sorted(policies.stores)
    near = nearest(store, known)
    hint = f"; did you mean {near!r}?" if near else ""
    names = f"the stores in {policies.source}: {', '.join(known)}" if known else "it names none"
    raise click.BadParameter(
        f"unknown store {store!r}{hint} ({names}). Leave --store out for the defaults, "
        "which every store the file does not name runs on.",
        param_hint="'--store'",
    )


def amount_param(ctx: click.Context, param: click.Parameter, value: str | None) -> Decimal | None:
    """A click callback: a finite, non-negative decimal amount (exact, never a float)."""
    if value is None:
        return None
    try:
        amount = parse_amount(value)
    except MoneyError:
        raise click.BadParameter(
            f"{value!r} is not a decimal number like 310 or 49.99", ctx, param
        ) from None
    if amount < 0:
        raise click.BadParameter(f"must not be negative, not {value}", ctx, param)
    return amount


def profile_for(segment: str, policy: StorePolicy, now: datetime) -> Profile:
    """The smallest profile that lands in ``segment`` under ``policy``'s rules."""
    rules = policy.segments
    if segment == "repeat_vip":
        return Profile(orders_count=rules.repeat_vip.min_orders)
    if segment == "returning":
        return Profile(orders_count=rules.returning.min_orders)
    if segment == "price_sensitive":
        used = max(1, rules.price_sensitive.min_discount_orders)
        return Profile(orders_count=used, discount_orders=used)
    if segment == "hesitant":
        earlier = rules.hesitant.min_abandonments - 1
        step = rules.hesitant.within / (earlier + 1)
        times = tuple(now - step * (i + 1) for i in range(earlier))
        return Profile(abandonments=times)
    return Profile()


def profile_from(orders: int, discount_orders: int, abandonments: int, now: datetime) -> Profile:
    """The profile of a shopper with this history: ``abandonments`` earlier carts, one a day."""
    if discount_orders > orders:
        raise click.BadParameter("--discount-orders cannot exceed --orders")
    times = tuple(now - timedelta(days=i + 1) for i in range(abandonments))
    return Profile(orders_count=orders, discount_orders=discount_orders, abandonments=times)


def _treated(policy: StorePolicy) -> StorePolicy:
    bands = [band.model_copy(update={"holdout": Decimal(0)}) for band in policy.bands]
    return policy.model_copy(update={"bands": bands})


def _local(moment: datetime, policy: StorePolicy) -> str:
    from recovery.regions import zone

    return moment.astimezone(zone(policy.timezone)).strftime("%a %Y-%m-%d %H:%M %Z")


def _incentive(touch: PlannedTouch) -> str:
    if touch.incentive_kind is None:
        return ""
    what = (
        touch.incentive_service
        if touch.incentive_kind == "service"
        else f"{touch.incentive_kind} {touch.incentive_value}"
    )
    valid = f", valid {format_duration(timedelta(seconds=touch.incentive_validity_s or 0))}"
    return f"incentive {what} (cost {touch.incentive_cost}{valid})"


def walk(
    plan: Plan, profile: Profile, cart: Cart, policy: StorePolicy
) -> dict[int, list[TouchDecision]]:
    """Every decision on the plan's touches, by step, from abandonment until all are done."""
    if not plan.touches:
        return {}
    horizon = max(t.due_at for t in plan.touches) + policy.caps.max_delay + timedelta(days=1)
    walked = due_touches(plan, PlanState(), profile, cart, policy, horizon, EXAMPLE_SECRET)
    by_step: dict[int, list[TouchDecision]] = {}
    for item in walked.items:
        by_step.setdefault(item.touch.step, []).append(item)
    return by_step


def render(plan: Plan, profile: Profile, cart: Cart, policy: StorePolicy) -> list[str]:
    lines = [f"plan for store {cart.store}, cart {cart.total} {cart.currency}:"]
    lines += [f"  {reason}" for reason in plan.reasons]
    if plan.rejected:
        return [*lines, f"  REJECTED: {plan.rejected} (no touches)"]
    if not plan.touches:
        return [*lines, "  no touches"]
    decisions = walk(plan, profile, cart, policy)
    lines.append(f"touches (times in the store zone {policy.timezone}):")
    for touch in plan.touches:
        due = _local(touch.due_at, policy)
        lines.append(f"  {touch.step}. {touch.channel:<5} {touch.template:<20} due {due}")
        lines.append(f"     why: {touch.reason}")
        offer = _incentive(touch)
        if offer:
            lines.append(f"     {offer}")
        if touch.incentive_withheld_reason:
            lines.append(f"     incentive withheld: {touch.incentive_withheld_reason}")
        if touch.summary:
            lines.append(f"     for the person following up: {touch.summary}")
        for item in decisions.get(touch.step, []):
            decision = item.decision
            when = f" until {_local(decision.at, policy)}" if decision.at else ""
            if decision.action != "defer":
                when = f" at {_local(item.at, policy)}"
            extra = ""
            if decision.code:
                extra += f"; example code {decision.code}"
            if decision.expires_at:
                extra += f"; expires {_local(decision.expires_at, policy)}"
            lines.append(f"     -> {decision.action}{when} ({decision.reason}){extra}")
    return lines


@click.command("explain")
@click.option(
    "--store",
    default=None,
    help="A store the policy file names (its overrides apply); default: the defaults.",
)
@click.option(
    "--total", required=True, callback=amount_param, help="Cart total, e.g. 310 or 49.99."
)
@click.option(
    "--segment",
    type=click.Choice(SEGMENTS),
    default=None,
    help="A profile that lands in this segment (default: from the history options, else new).",
)
@click.option("--orders", type=click.IntRange(0), default=0, help="The shopper's past orders.")
@click.option(
    "--discount-orders",
    type=click.IntRange(0),
    default=0,
    help="How many of those orders used a discount code (price_sensitive).",
)
@click.option(
    "--abandonments",
    type=click.IntRange(0),
    default=0,
    help="Carts the shopper abandoned in the days before this one (hesitant).",
)
@click.option(
    "--peak-total",
    default=None,
    callback=amount_param,
    help="The highest value the cart had before it shrank to --total (price_sensitive).",
)
@click.option("--currency", default=None, help="Cart currency (default: the store's).")
@click.option(
    "--shop-total",
    default=None,
    callback=amount_param,
    help="The platform's amount in the shop currency.",
)
@click.option(
    "--shipping",
    default=None,
    callback=amount_param,
    help="Shipping charge included in the total: shown to the shopper (price_sensitive).",
)
@click.option(
    "--cost",
    default=None,
    callback=amount_param,
    help="Cost of the goods (margin from line-item costs).",
)
@click.option("--email-consent/--no-email-consent", default=True, show_default=True)
@click.option("--sms-consent/--no-sms-consent", default=True, show_default=True)
@click.option("--phone", default="+12125550100", show_default=True, help="Recipient phone.")
@click.option("--country", default=None, help="Shipping country code (e.g. US).")
@click.option("--province", default=None, help="Shipping province code (e.g. FL).")
@click.option(
    "--at", "at_text", default=None, help="Abandonment time, ISO 8601 (default: now, UTC)."
)
@click.option("--policy", "policy_file", type=click.Path(dir_okay=False), default=None)
def explain(
    store: str | None,
    total: Decimal,
    segment: str | None,
    orders: int,
    discount_orders: int,
    abandonments: int,
    peak_total: Decimal | None,
    currency: str | None,
    shop_total: Decimal | None,
    shipping: Decimal | None,
    cost: Decimal | None,
    email_consent: bool,
    sms_consent: bool,
    phone: str,
    country: str | None,
    province: str | None,
    at_text: str | None,
    policy_file: str | None,
) -> None:
    """Print the plan a cart of TOTAL would get at STORE, with every reason."""
    try:
        policies = load_policy(policy_file)
    except PolicyError as exc:
        raise click.ClickException(str(exc)) from None
    policy = store_policy(policies, store)
    if shipping is not None and shipping > total:
        raise click.BadParameter(
            f"the shipping ({shipping}) is part of the total, so at most {total}",
            param_hint="'--shipping'",
        )
    try:
        abandoned = datetime.fromisoformat(at_text) if at_text else datetime.now(UTC)
    except ValueError:
        raise click.BadParameter(f"--at is not an ISO 8601 time: {at_text!r}") from None
    if abandoned.tzinfo is None:
        abandoned = abandoned.replace(tzinfo=UTC)
    abandoned = abandoned.replace(second=0, microsecond=0)
    contact = ContactInfo(
        email="shopper@example.com",
        phone=phone or None,
        email_consent=email_consent,
        sms_consent=sms_consent,
        country_code=country,
        province_code=province,
    )
    store = store or DEFAULTS
    cart = Cart(
        store=store,
        checkout="explain-cart",
        currency=(currency or policy.currency).upper(),
        total=total,
        abandoned_at=abandoned,
        items=(Item("sample item", 1, total - (shipping or 0), cost=cost),),
        contact=contact,
        recovery_url="https://example.com/cart/recover",
        shipping=shipping,
        shop_currency=policy.currency if shop_total is not None else None,
        shop_total=shop_total,
        peak_total=peak_total,
    )
    shopper = shopper_key(store, email=contact.email) or f"{store}:explain"
    history = orders or discount_orders or abandonments
    if segment is not None and history:
        raise click.UsageError("give either --segment or the shopper's history, not both")
    if segment is not None:
        profile = profile_for(segment, policy, abandoned)
    else:
        profile = profile_from(orders, discount_orders, abandonments, abandoned)
    plan = plan_recovery(profile, cart, shopper, policy, abandoned)
    if segment is not None and plan.segment and plan.segment != segment:
        click.echo(f"note: the policy's rules put this profile in {plan.segment}, not {segment}")
    if plan.holdout:
        for line in render(plan, profile, cart, policy):
            click.echo(line)
        click.echo("this cart is in the holdout; were it treated, the plan would be:")
        policy = _treated(policy)
        plan = plan_recovery(profile, cart, shopper, policy, abandoned)
    for line in render(plan, profile, cart, policy):
        click.echo(line)
