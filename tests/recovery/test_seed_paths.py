"""The seeds' paths by default, through the pure core and the in-memory pipeline.

Seed 000: a $310 cart gets an email at 1 h, the retargeting audience from then on, an SMS at
24 h and, at 48 h if the cart is still open, the one time-boxed 12% code and the merchandising
channel told. Seed 003: repeat high-value shoppers get gentle reminders, hesitant ones social
proof, neither a discount; a price-sensitive shopper gets a modest discount; a returning one
without a price signal none. Each price-sensitivity signal is detected from canonical records.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.policyfile import DEFAULT_POLICY, PolicyError, load_policy
from recovery import checkouts as stage_a
from recovery import shoppers as stage_b
from recovery.checkouts import epoch
from recovery.decide import PlanState, decide_touch, due_touches
from recovery.model import Cart, ContactInfo, Item, Profile
from recovery.plan import plan_recovery
from recovery.policy import Incentive, StorePolicy
from recovery.policyset import parse_policy
from recovery.segments import segment_of
from recovery.shopper_profile import profile_of
from recovery.shopper_records import shopper_event
from recovery.simulate import simulate
from streams.app import code_secret
from tests.pipeline.helpers import T0, cart, iso, order, wire, without_holdout

AT = datetime(2026, 6, 10, 15, 0, tzinfo=UTC)  # 11:00 in New York
H = timedelta(hours=1)
HOUR = 3600.0
DAY = 86400.0
SECRET = b"seed-paths"
POLICY_FILE = without_holdout(DEFAULT_POLICY, Path(tempfile.mkdtemp()) / "p.yaml")
SIM_POLICY = load_policy(POLICY_FILE)


@pytest.fixture(scope="module")
def policy() -> StorePolicy:
    return load_policy(POLICY_FILE).defaults


def a_cart(total: str = "310", **kw: Any) -> Cart:
    return Cart(
        store="s1",
        checkout="c1",
        currency="USD",
        total=Decimal(total),
        abandoned_at=AT,
        items=(Item("Espresso machine", 1, Decimal(total)),),
        contact=ContactInfo(
            email="a@example.com", phone="+12125550100", email_consent=True, sms_consent=True
        ),
        recovery_url="https://shop/r/1",
        **kw,
    )


def path(plan) -> list[tuple[timedelta, str, str, str | None, Decimal | None]]:
    return [
        (t.due_at - AT, t.channel, t.template, t.incentive_kind, t.incentive_value)
        for t in plan.touches
    ]


SEED_000 = [
    (1 * H, "email", "reminder", None, None),
    (1 * H, "ads", "retarget", None, None),
    (24 * H, "sms", "reminder_sms", None, None),
    (48 * H, "email", "offer", "percent_off", Decimal("12")),
    (48 * H, "human", "merchandising_review", None, None),
]


def test_seed_000_the_310_cart_path(policy):
    cart_ = a_cart()
    plan = plan_recovery(Profile(), cart_, "s1:a", policy, AT)
    assert (plan.band, plan.segment) == ("high", "new")
    assert path(plan) == SEED_000
    walked = due_touches(plan, PlanState(), Profile(), cart_, policy, AT + 10 * 24 * H, SECRET)
    sent = [(i.at - AT, i.touch.channel, i.decision.code is not None) for i in walked.items]
    assert [i.decision.action for i in walked.items] == ["send"] * 5
    assert sent == [
        (1 * H, "email", False),
        (1 * H, "ads", False),
        (24 * H, "sms", False),
        (48 * H, "email", True),  # the single code of the plan
        (48 * H, "human", False),
    ]
    offer = walked.items[3].decision
    assert offer.expires_at == AT + 96 * H  # time-boxed: 48 h from its send
    human = walked.items[4].touch
    assert human.summary and "high cart 310 USD" in human.summary


@pytest.mark.parametrize(
    ("profile", "cart_kw", "why"),
    [
        (Profile(orders_count=1, last_order_at=AT + 30 * H), {}, "ended: order"),
        (Profile(), {"items": (), "total": Decimal(0)}, "ended: cart_emptied"),
    ],
)
def test_the_48h_touches_need_the_cart_still_open(policy, profile, cart_kw, why):
    cart_ = a_cart()
    plan = plan_recovery(Profile(), cart_, "s1:a", policy, AT)
    later = Cart(**{**{f: getattr(cart_, f) for f in cart_.__slots__}, **cart_kw})
    for touch in plan.touches[3:]:
        decision = decide_touch(plan, touch, profile, later, policy, AT + 48 * H, SECRET)
        assert decision.action == "skip" and decision.reason.startswith(why)
        assert decision.code is None


def sim(*events: dict[str, Any]):
    timed = sorted(((epoch(e["occurred_at"], "t"), e) for e in events), key=lambda p: p[0])
    return simulate(timed, SIM_POLICY, code_secret)


def emptied(checkout: str, at: float) -> dict[str, Any]:
    event = cart(checkout, "0", at, event_id=f"empty-{checkout}")
    event["line_items"] = []
    return event


@pytest.mark.parametrize("exit_event", ["order", "emptied", None])
def test_the_pipeline_sends_the_48h_code_and_person_only_to_an_open_cart(exit_event):
    events = [cart("h1", "310")]
    abandoned = T0 + HOUR  # the default abandonment window
    if exit_event == "order":
        events.append(order("h1", "310", abandoned + 30 * HOUR))
    elif exit_event == "emptied":
        events.append(emptied("h1", abandoned + 30 * HOUR))
    found = sorted(sim(*events).touches, key=lambda t: t["step"])
    touches = [t for t in found if t["template"] != "audience_remove"]
    removals = [t for t in found if t["template"] == "audience_remove"]
    assert bool(removals) == (exit_event == "order")  # a buyer leaves the audience
    steps = [(t["step"], t["channel"], t["due_at"]) for t in touches]
    expected = [
        (1, "email", iso(abandoned + HOUR)),
        (2, "ads", iso(abandoned + HOUR)),
        (3, "sms", iso(abandoned + 24 * HOUR)),
        (4, "email", iso(abandoned + 48 * HOUR)),
        (5, "human", iso(abandoned + 48 * HOUR)),
    ]
    if exit_event is None:
        assert steps == expected
        assert [t["step"] for t in touches if t["incentive"]] == [4]
        assert touches[3]["incentive"]["value"] == "12" and touches[3]["incentive"]["code"]
        assert touches[4]["template"] == "merchandising_review"
    else:
        assert steps == expected[:3]


def templates_and_offers(plan) -> list[tuple[str, str, str | None]]:
    return [(t.channel, t.template, t.incentive_kind) for t in plan.touches]


# Seed 003's four paths on the $310 cart: who gets what.
SEGMENT_PATHS = [
    (
        "repeat_vip",
        Profile(orders_count=3, lifetime_value=Decimal("640")),
        {},
        [
            ("email", "gentle_reminder", None),
            ("ads", "retarget", None),
            ("sms", "reminder_sms", None),
            ("email", "gentle_reminder", None),
            ("human", "merchandising_review", None),
        ],
    ),
    (
        "hesitant",
        Profile(abandonments=(AT - 24 * H, AT - 72 * H)),
        {},
        [
            ("email", "social_proof", None),
            ("ads", "retarget", None),
            ("sms", "social_proof", None),
            ("email", "social_proof", None),
            ("human", "merchandising_review", None),
        ],
    ),
    (
        "price_sensitive",
        Profile(),
        {"shipping": Decimal("12.00"), "total": Decimal("322.00")},
        [
            ("email", "reminder", None),
            ("ads", "retarget", None),
            ("sms", "reminder_sms", None),
            ("email", "offer", "percent_off"),
            ("human", "merchandising_review", None),
        ],
    ),
    (
        "returning",
        Profile(orders_count=1, lifetime_value=Decimal("80")),
        {},
        [
            ("email", "reminder", None),
            ("ads", "retarget", None),
            ("sms", "reminder_sms", None),
            ("email", "last_call", None),
            ("human", "merchandising_review", None),
        ],
    ),
]


@pytest.mark.parametrize(("segment", "profile", "cart_kw", "expected"), SEGMENT_PATHS)
def test_seed_003_segment_paths_in_the_core(policy, segment, profile, cart_kw, expected):
    plan = plan_recovery(profile, a_cart(**cart_kw), "s1:a", policy, AT)
    assert plan.segment == segment
    assert templates_and_offers(plan) == expected
    offered = [t for t in plan.touches if t.incentive_kind]
    if segment == "price_sensitive":
        [offer] = offered
        assert offer.incentive_value == 12 and offer.due_at == AT + 48 * H
    else:
        withheld = [t.incentive_withheld_reason for t in plan.touches]
        assert f"segment: {segment} gets no price incentive (12% off)" in withheld


def test_mid_band_offer_goes_to_the_price_sensitive_only(policy):
    """The mid band's 10% on touch two: the price-sensitive and the new shopper get it; the
    returning, hesitant and repeat shoppers get the SMS without a discount."""
    mid = {"total": "120"}
    got = {}
    for segment, profile in [
        ("price_sensitive", Profile(orders_count=2, discount_orders=1)),
        ("new", Profile()),
        ("returning", Profile(orders_count=2)),
        ("hesitant", Profile(abandonments=(AT - 24 * H, AT - 48 * H))),
        ("repeat_vip", Profile(orders_count=4)),
    ]:
        plan = plan_recovery(profile, a_cart(**mid), "s1:a", policy, AT)
        assert plan.segment == segment
        got[segment] = [(t.template, t.incentive_value) for t in plan.touches]
    assert got["price_sensitive"] == [("reminder", None), ("offer_sms", Decimal("10"))]
    assert got["new"] == got["price_sensitive"]
    assert got["returning"] == [("reminder", None), ("reminder_sms", None)]
    assert got["hesitant"] == [("social_proof", None), ("social_proof", None)]
    assert got["repeat_vip"] == [("gentle_reminder", None), ("gentle_reminder_sms", None)]


def test_the_price_sensitive_discount_is_capped_modest(policy):
    high = policy.bands[2]
    rich = high.model_copy(
        update={
            "sequence": [
                s.model_copy(update={"incentive": Incentive(kind="percent_off", value=25)})
                if s.incentive
                else s
                for s in high.sequence
            ]
        }
    )
    margin = policy.margin.model_copy(update={"max_discount_share_of_margin": Decimal(1)})
    generous = policy.model_copy(
        update={"bands": [*policy.bands[:2], rich, policy.bands[3]], "margin": margin}
    )
    profile = Profile(orders_count=1, discount_orders=1)
    [offer] = [
        t
        for t in plan_recovery(profile, a_cart(), "s1:a", generous, AT).touches
        if t.incentive_kind
    ]
    assert (
        offer.incentive_value == 12 and "capped from 25% to 12% for price_sensitive" in offer.reason
    )


@pytest.mark.parametrize(
    ("profile", "cart_kw", "reason"),
    [
        (
            Profile(orders_count=2, discount_orders=2),
            {},
            "segment: price_sensitive (2 of 2 past orders used a discount code)",
        ),
        (
            Profile(),
            {"shipping": Decimal("9.95"), "total": Decimal("319.95")},
            "segment: price_sensitive (abandoned after a shipping charge of 9.95 USD was shown)",
        ),
        (
            Profile(),
            {"peak_total": Decimal("420")},
            "segment: price_sensitive (the cart shrank from 420 to 310, at least 0.2 below "
            "its peak)",
        ),
    ],
)
def test_the_segment_reason_names_the_signal(policy, profile, cart_kw, reason):
    assert segment_of(profile, a_cart(**cart_kw), policy, AT) == ("price_sensitive", reason)


def test_each_signal_can_be_turned_off(policy):
    rule = policy.segments.price_sensitive.model_copy(
        update={"min_discount_orders": 0, "shipping_shown": False, "min_shrink_share": None}
    )
    off = policy.model_copy(
        update={"segments": policy.segments.model_copy(update={"price_sensitive": rule})}
    )
    shopper = Profile(orders_count=2, discount_orders=2)
    signals = a_cart(shipping=Decimal("9.95"), total=Decimal("319.95"), peak_total=Decimal("900"))
    assert segment_of(shopper, signals, off, AT)[0] == "returning"
    assert segment_of(Profile(), signals, off, AT)[0] == "new"


# --- each signal from canonical records, through stage A and stage B -------------------------


def segment_in_pipeline(*events: dict[str, Any], checkout: str) -> str:
    touches = [t for t in sim(*events).touches if t["cart"] == checkout]
    assert touches, "the abandoned cart got no touch"
    [segment] = {t["segment"] for t in touches}
    return segment


def coded_order(checkout: str, at: float, codes: list[str]) -> dict[str, Any]:
    event = order(checkout, "40.00", at, customer="pat")
    event["discount_codes"] = codes
    return event


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(coded=st.lists(st.booleans(), max_size=2))
def test_orders_with_discount_codes_make_a_shopper_price_sensitive(coded):
    # at most two orders of 40: below repeat_vip's three orders and its lifetime value
    orders = [
        coded_order(f"o{n}", T0 - (n + 1) * DAY, ["SAVE10"] if used else [])
        for n, used in enumerate(coded)
    ]
    events = [*orders, cart("h1", "310", customer="pat")]
    used = sum(coded)
    if used >= 1 and 2 * used >= len(coded):
        expected = "price_sensitive"
    else:
        expected = "returning" if coded else "new"
    assert segment_in_pipeline(*events, checkout="h1") == expected


@pytest.mark.parametrize(
    ("shipping", "segment"),
    [("12.00", "price_sensitive"), ("0.00", "new"), (None, "new")],
)
def test_a_cart_abandoned_after_shipping_was_shown(shipping, segment):
    event = cart("h1", "322.00")
    if shipping is not None:
        event["shipping"] = shipping
    assert segment_in_pipeline(event, checkout="h1") == segment


def updates(checkout: str, totals: list[int]) -> list[dict[str, Any]]:
    """One checkout's successive snapshots, a minute apart (totals in cents)."""
    return [
        cart(checkout, str(Decimal(total) / 100), T0 + 60 * n, event_id=f"u{n}")
        for n, total in enumerate(totals)
    ]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(totals=st.lists(st.integers(min_value=500, max_value=90_000), min_size=1, max_size=5))
def test_a_cart_shrunk_below_its_peak(totals):
    events = updates("h1", totals)
    peak, last = max(totals), totals[-1]
    # stage A carries the peak on the abandoned cart exactly when the cart shrank
    state = None
    for event in events:
        state, _ = stage_a.apply_event(state, event, 0, SIM_POLICY.defaults)
    assert state is not None
    _, effects = stage_a.apply_tick(state, "pipe:h1", T0 + 2 * DAY)
    [record] = [wire(e.record) for e in effects if e.kind == "abandoned"]
    carried = record["cart"].get("peak_total")
    assert carried == (str(Decimal(peak) / 100) if peak > last else None)
    shrunk = (peak - last) * 5 >= peak  # the default min_shrink_share, 0.2
    expected = "price_sensitive" if shrunk else "new"
    assert segment_in_pipeline(*events, checkout="h1") == expected


def test_a_shrink_counts_goods_not_a_shipping_line_added_later():
    first = cart("h1", "300.00", event_id="u0")
    with_shipping = cart("h1", "290.00", T0 + 60, event_id="u1")
    with_shipping["subtotal"] = "240.00"  # items for 300 became 240, shipping 50 was added
    with_shipping["shipping"] = "50.00"
    assert segment_in_pipeline(first, with_shipping, checkout="h1") == "price_sensitive"
    grew = cart("h1", "330.00", T0 + 60, event_id="u1")
    grew["subtotal"], grew["shipping"] = "300.00", "0.00"
    assert segment_in_pipeline(first, grew, checkout="h1") == "new"


def test_a_cart_shrunk_after_the_shopper_came_back():
    first = cart("h1", "400.00", event_id="u0")
    back = cart("h1", "250.00", T0 + 5 * HOUR, event_id="u1")  # after its first abandonment
    touches = sim(first, back).touches
    cycles = {(t["plan_version"], t["segment"]) for t in touches}
    assert cycles == {(1, "new"), (2, "price_sensitive")}


# --- the state the signals need stays small ---------------------------------------------------


def test_coded_orders_are_one_counter_counted_once_and_erased_with_the_shopper():
    policy = SIM_POLICY.defaults
    shopper = "pipe:pat"
    state = None
    for n in range(30):
        record = {
            "type": "cart_converted", "store": "pipe", "shopper": shopper, "checkout": f"o{n}",
            "occurred_at": iso(T0 + n * HOUR), "currency": "USD", "total": "40.00",
            "discount_codes": ["SAVE10"] if n % 3 else [],
        }  # fmt: skip
        state, _ = stage_b.apply_record(state, shopper, shopper_event(record), 0, policy)
        again, out = stage_b.apply_record(
            state, shopper, shopper_event(record), 0, policy
        )  # a repeat
        assert again == state and out.counts == [("duplicate", "converted", "")]
    assert state is not None
    assert state.pr.oc == 30 and state.pr.dc == 20
    assert profile_of(state).discount_orders == 20
    erased, _ = stage_b.apply_record(
        state,
        shopper,
        shopper_event(
            {"type": "shopper_redacted", "store": "pipe", "occurred_at": iso(T0 + DAY * 3)}
        ),
        0,
        policy,
    )
    assert erased.pr is None


def test_a_poison_peak_total_is_refused_with_its_field():
    record = {
        "type": "cart_abandoned", "store": "pipe", "shopper": "pipe:x", "checkout": "h1",
        "cycle": 1, "abandoned_at": iso(T0), "occurred_at": iso(T0),
        "cart": {**cart("h1", "310"), "peak_total": "1e400"},
    }  # fmt: skip
    with pytest.raises(stage_a.BadEvent, match=r"cart\.peak_total"):
        stage_b.apply_record(None, "pipe:x", shopper_event(record), 0, SIM_POLICY.defaults)


def test_stage_a_keeps_the_peak_only_while_the_cart_is_below_it():
    policy = SIM_POLICY.defaults
    state = None
    for n, total in enumerate(["300.00", "200.00", "350.00"]):
        state, _ = stage_a.apply_event(
            state, cart("h1", total, T0 + 60 * n, event_id=f"u{n}"), 0, policy
        )
        assert state is not None
        assert state.pk == {0: None, 1: "300.00", 2: None}[n]


@pytest.mark.parametrize(
    ("update", "path", "words"),
    [
        ({"min_shrink_share": "0"}, "min_shrink_share", "above 0"),
        ({"min_shrink_share": "1.5"}, "min_shrink_share", "between 0 and 1"),
        ({"min_discount_share": "2"}, "min_discount_share", "between 0 and 1"),
        ({"min_discount_orders": -1}, "min_discount_orders", "greater than or equal"),
        ({"max_percent_off": "lots"}, "max_percent_off", ""),
        ({"shiping_shown": True}, "shiping_shown", ""),
    ],
)
def test_price_sensitive_settings_are_checked_by_path(update, path, words):
    data = yaml.safe_load(DEFAULT_POLICY.read_text())
    data["defaults"]["segments"]["price_sensitive"].update(update)
    with pytest.raises(PolicyError) as info:
        parse_policy(data, "p.yaml")
    found = [str(p) for p in info.value.problems]
    where = f"defaults.segments.price_sensitive.{path}:"
    assert any(p.startswith(where) and words in p for p in found), found
