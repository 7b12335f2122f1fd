"""Property tests: the core's invariants hold for any cart, profile, policy tuning and time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.policyfile import load_policy
from recovery.decide import PlanState, decide_touch, due_touches
from recovery.ids import phone_e164
from recovery.model import Cart, ContactInfo, Item, PlannedTouch, Profile
from recovery.plan import plan_recovery
from recovery.policy import CHANNELS, Incentive, StorePolicy, Window

BASE = load_policy().defaults
SECRET = b"secret"
PRICE = {"percent_off", "fixed_off", "free_shipping"}
# phone -> (zone, sms window in local minutes) for the recipients we generate
PHONES = {
    "+14155550100": ("America/Los_Angeles", (480, 1260)),
    "+12125550100": ("America/New_York", (480, 1260)),
    "+13125550100": ("America/Chicago", (480, 1260)),
    "+4915112345678": ("Europe/Berlin", (480, 1260)),
}
FLORIDA = "+13055550100"

EDGES = [Decimal(x) for x in ("0", "49.99", "50.00", "199.99", "200", "599.99", "600")]
money = st.one_of(
    st.sampled_from(EDGES),
    st.decimals(min_value=0, max_value=60, places=2),  # the low band and its edge, often
    st.decimals(min_value=0, max_value=3000, places=2, allow_nan=False, allow_infinity=False),
)
moments = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)


@st.composite
def policies(draw: st.DrawFn) -> StorePolicy:
    margin = BASE.margin.model_copy(
        update={
            "gross_margin": draw(st.decimals(min_value=0, max_value=1, places=2)),
            "max_discount_share_of_margin": draw(st.decimals(min_value=0, max_value=1, places=2)),
            "shipping_cost": draw(st.decimals(min_value=0, max_value=50, places=2)),
        }
    )
    consent = BASE.consent.model_copy(update={"transactional_email": draw(st.booleans())})
    share = draw(st.sampled_from([Decimal(0), Decimal("0.05"), Decimal("0.5")]))
    bands = [b.model_copy(update={"holdout": share}) for b in BASE.bands]
    return BASE.model_copy(update={"margin": margin, "consent": consent, "bands": bands})


@st.composite
def carts(draw: st.DrawFn) -> Cart:
    items = tuple(
        Item(
            title=f"item{i}",
            quantity=draw(st.integers(1, 4)),
            price=draw(money),
            cost=draw(st.none() | money),
        )
        for i in range(draw(st.integers(0, 3)))
    )
    total = sum((i.price * i.quantity for i in items), Decimal(0)) if items else draw(money)
    phone = draw(st.sampled_from([*PHONES, FLORIDA, None]))
    contact = ContactInfo(
        email=draw(st.sampled_from(["a@example.com", None])),
        phone=phone,
        email_consent=draw(st.booleans()),
        sms_consent=draw(st.booleans()),
        country_code="US" if phone == FLORIDA else None,
        province_code="FL" if phone == FLORIDA else None,
    )
    return Cart(
        store="s1",
        checkout=draw(st.sampled_from(["c1", "c2", "c3"])),
        currency="USD",
        total=total,
        abandoned_at=draw(moments),
        items=items,
        contact=contact,
        shipping=draw(st.none() | st.decimals(min_value=0, max_value=40, places=2)),
    )


@st.composite
def profiles(draw: st.DrawFn, cart: Cart) -> Profile:
    ago = st.integers(0, 72 * 60).map(lambda m: cart.abandoned_at - timedelta(minutes=m))
    return Profile(
        orders_count=draw(st.integers(0, 5)),
        lifetime_value=draw(money),
        email_consent=draw(st.sampled_from([None, True, False])),
        sms_consent=draw(st.sampled_from([None, True, False])),
        suppressed=draw(st.frozensets(st.sampled_from(["email", "sms", "ads"]), max_size=2)),
        abandonments=tuple(draw(st.lists(ago, max_size=4))),
        sends=tuple(
            draw(st.lists(st.tuples(st.sampled_from(["email", "sms", "ads"]), ago), max_size=5))
        ),
        suppressed_numbers=draw(st.frozensets(st.sampled_from([*PHONES, FLORIDA]), max_size=2)),
    )


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[StorePolicy, Cart, Profile]:
    cart = draw(carts())
    return draw(policies()), cart, draw(profiles(cart))


def plan_of(policy: StorePolicy, cart: Cart, profile: Profile):
    return plan_recovery(profile, cart, "s1:shopper", policy, cart.abandoned_at)


def expected_margin(cart: Cart, policy: StorePolicy) -> Decimal:
    if cart.items and all(i.cost is not None for i in cart.items):
        own = sum(((i.price - (i.cost or 0)) * i.quantity for i in cart.items), Decimal(0))
        return max(own, Decimal(0))
    value = cart.total
    if cart.shipping and cart.shipping <= cart.total:
        value -= cart.shipping
    return max(value * policy.margin.gross_margin, Decimal(0))


FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(scenarios())
def test_low_band_never_discounts_and_no_incentive_exceeds_the_guard(scenario):
    policy, cart, profile = scenario
    plan = plan_of(policy, cart, profile)
    limit = expected_margin(cart, policy) * policy.margin.max_discount_share_of_margin
    for touch in plan.touches:
        if plan.band == policy.bands[0].name:
            assert touch.incentive_kind is None
        if touch.incentive_kind is not None:
            assert touch.incentive_cost is not None
            assert touch.incentive_cost <= limit + Decimal("0.01")
            if touch.incentive_kind in PRICE and plan.segment == "repeat_vip":
                raise AssertionError("repeat_vip got a price incentive")


@FAST
@given(scenarios())
def test_plans_are_deterministic_and_touch_ids_unique(scenario):
    policy, cart, profile = scenario
    first, second = plan_of(policy, cart, profile), plan_of(policy, cart, profile)
    assert first == second
    ids = [t.touch_id for t in first.touches]
    assert len(ids) == len(set(ids))
    if first.holdout:
        assert first.touches == ()


def _in_window(moment: datetime, phone: str | None) -> bool:
    if phone == FLORIDA:
        zone, (start, end) = "America/New_York", (480, 1200)
    elif phone in PHONES:
        zone, (start, end) = PHONES[phone]
    else:
        zone, (start, end) = BASE.timezone, (480, 1260)
    local = moment.astimezone(ZoneInfo(zone))
    return start <= local.hour * 60 + local.minute < end


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.integers(0, 96 * 60))
def test_no_sms_without_consent_and_none_in_quiet_hours(scenario, minutes_after):
    policy, cart, profile = scenario
    plan = plan_of(policy, cart, profile)
    now = cart.abandoned_at + timedelta(minutes=minutes_after)
    phone = cart.contact.sms_phone or cart.contact.phone
    for touch in plan.touches:
        decision = decide_touch(plan, touch, profile, cart, policy, now, SECRET)
        again = decide_touch(plan, touch, profile, cart, policy, now, SECRET)
        assert decision == again
        if decision.action == "defer":
            assert decision.at is not None and decision.at > now
        if touch.channel != "sms":
            continue
        if decision.action == "send":
            consent = profile.sms_consent
            assert consent if consent is not None else cart.contact.sms_consent
            assert not {"sms", "all"} & profile.suppressed
            assert phone is not None
            assert phone_e164(phone) not in profile.suppressed_numbers
            assert _in_window(now, phone), (now, phone)
        if decision.action == "defer" and decision.key != "not_due":
            # a deferral after the due time lands on a minute every timing rule allows
            assert _in_window(decision.at, phone), (decision.at, phone)
            later = decide_touch(plan, touch, profile, cart, policy, decision.at, SECRET)
            assert later.action != "defer", later


@st.composite
def windowed(draw: st.DrawFn) -> StorePolicy:
    """A policy with a send window on every channel (the default policy has one on SMS)."""
    policy = draw(policies())
    windows: dict[str, Window | None] = {}
    for channel in CHANNELS:
        start = draw(st.integers(0, 22 * 60))
        windows[channel] = Window(start=start, end=draw(st.integers(start + 60, 24 * 60)))
    return policy.model_copy(update={"send_windows": windows})


def _window_of(policy: StorePolicy, channel: str, phone: str | None) -> tuple[str, int, int]:
    if channel == "sms" and phone == FLORIDA:
        return "America/New_York", 480, 1200  # the shipped US-FL override
    zone = PHONES[phone][0] if phone in PHONES else "America/New_York" if phone else BASE.timezone
    window = policy.send_windows[channel]  # type: ignore[index]
    assert window is not None
    return zone, window.start, window.end


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(windowed(), carts(), st.data())
def test_walking_a_plan_never_sends_in_quiet_hours_on_any_channel(policy, cart, data):
    profile = data.draw(profiles(cart))
    plan = plan_of(policy, cart, profile)
    horizon = cart.abandoned_at + timedelta(days=8)
    out = due_touches(plan, PlanState(), profile, cart, policy, horizon, SECRET)
    assert out.finished or not plan.touches
    for item in out.items:
        assert item.decision.reason and item.decision.key.isidentifier(), item.decision
        if item.decision.action != "send":
            continue
        phone = cart.contact.sms_phone or cart.contact.phone
        zone, start, end = _window_of(policy, item.touch.channel, phone)
        local = item.at.astimezone(ZoneInfo(zone))
        assert start <= local.hour * 60 + local.minute < end, (item, zone)
        if item.touch.channel == "sms":
            assert phone is not None and phone_e164(phone) not in profile.suppressed_numbers
    # each step is sent at most once, and its send is the last word on it
    sent = [i.touch.step for i in out.sent]
    assert len(sent) == len(set(sent))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.integers(5, 24 * 60))
def test_decisions_do_not_depend_on_how_often_time_is_told(scenario, tick_minutes):
    policy, cart, profile = scenario
    plan = plan_of(policy, cart, profile)
    horizon = cart.abandoned_at + timedelta(days=8)
    once = due_touches(plan, PlanState(), profile, cart, policy, horizon, SECRET)
    state, current, items = PlanState(), profile, []
    now = cart.abandoned_at
    while now < horizon:
        now = min(now + timedelta(minutes=tick_minutes), horizon)
        step = due_touches(plan, state, current, cart, policy, now, SECRET)
        state, current, items = step.state, step.profile, [*items, *step.items]
    assert items == list(once.items)
    assert state == once.state


incentives = st.one_of(
    st.none(),
    st.builds(
        lambda v: Incentive(kind="percent_off", value=v),
        st.decimals(min_value=1, max_value=60, places=0),
    ),
    st.builds(
        lambda v: Incentive(kind="fixed_off", value=v),
        st.decimals(min_value=1, max_value=200, places=2),
    ),
    st.just(Incentive(kind="free_shipping")),
    st.just(Incentive(kind="service", service="free_expedited_shipping")),
)


@st.composite
def offering(draw: st.DrawFn) -> StorePolicy:
    """Any incentive on any step of any band, the first band included (bypassing the file
    validation that forbids it there, to show the core holds the rule on its own)."""
    policy = draw(policies())
    cheap = draw(st.decimals(min_value=0, max_value=30, places=2))
    margin = policy.margin.model_copy(update={"service_costs": {"free_expedited_shipping": cheap}})
    policy = policy.model_copy(update={"margin": margin})
    bands = [
        band.model_copy(
            update={
                "sequence": [
                    spec.model_copy(update={"incentive": draw(incentives)})
                    for spec in band.sequence
                ]
            }
        )
        for band in policy.bands
    ]
    return policy.model_copy(update={"bands": bands})


CENT = Decimal("0.01")


def true_cost(touch: PlannedTouch, value: Decimal, cart: Cart, policy: StorePolicy) -> Decimal:
    """What the offer really costs the store, computed here from the definitions."""
    amount = touch.incentive_value or Decimal(0)
    if touch.incentive_kind == "percent_off":
        return value * amount / 100
    if touch.incentive_kind == "fixed_off":
        return min(amount, value)
    if touch.incentive_kind == "free_shipping":
        return cart.shipping if cart.shipping is not None else policy.margin.shipping_cost
    return policy.margin.service_costs.get(touch.incentive_service or "", Decimal(0))


@FAST
@given(offering(), carts(), st.data())
def test_any_incentive_table_keeps_the_low_band_and_margin_rules(policy, cart, data):
    profile = data.draw(profiles(cart))
    plan = plan_of(policy, cart, profile)
    limit = expected_margin(cart, policy) * policy.margin.max_discount_share_of_margin
    for touch in plan.touches:
        if plan.band == policy.bands[0].name:
            assert touch.incentive_kind is None
        if touch.incentive_kind is None:
            continue
        assert touch.incentive_cost is not None and touch.incentive_cost <= limit + Decimal("0.01")
        assert abs(touch.incentive_cost - true_cost(touch, plan.value, cart, policy)) <= CENT
        assert touch.incentive_validity_s is not None and touch.incentive_validity_s > 0
        if plan.segment == "repeat_vip":
            assert touch.incentive_kind not in PRICE
