"""Table tests for ``due_touches``: which touches of a plan are due, and what happens to each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from config.policyfile import load_policy
from recovery.decide import PlanState, due_touches
from recovery.model import Cart, ContactInfo, Item, Plan, PlannedTouch, Profile
from recovery.plan import plan_recovery
from recovery.policy import StorePolicy

LA = ZoneInfo("America/Los_Angeles")
SECRET = b"store-secret"


@pytest.fixture(scope="module")
def policy() -> StorePolicy:
    everyone = load_policy().defaults
    bands = [b.model_copy(update={"holdout": Decimal(0)}) for b in everyone.bands]
    return everyone.model_copy(update={"bands": bands})


def la(*args: int) -> datetime:
    return datetime(*args, tzinfo=LA).astimezone(UTC)


def cart(total: str, abandoned: datetime, **contact: object) -> Cart:
    base: dict[str, object] = {
        "email": "a@example.com",
        "phone": "+14155550100",
        "email_consent": True,
        "sms_consent": True,
    }
    base.update(contact)
    return Cart(
        store="s1",
        checkout="c1",
        currency="USD",
        total=Decimal(total),
        abandoned_at=abandoned,
        items=(Item("x", 1, Decimal(total)),),
        contact=ContactInfo(**base),  # type: ignore[arg-type]
    )


def plan_for(policy: StorePolicy, c: Cart, profile: Profile | None = None) -> Plan:
    return plan_recovery(profile or Profile(), c, "s1:a", policy, c.abandoned_at)


def test_mid_band_walk_defers_the_sms_out_of_quiet_hours(policy):
    # abandoned 21:10 LA: the 24 h SMS (10% off) falls at 21:10 the next evening
    c = cart("100", la(2026, 6, 10, 21, 10))
    plan = plan_for(policy, c)
    first = due_touches(plan, PlanState(), Profile(), c, policy, la(2026, 6, 11, 23, 0), SECRET)
    assert [(i.touch.step, i.decision.action) for i in first.items] == [(1, "send"), (2, "defer")]
    assert first.items[1].decision.key == "quiet_hours"
    assert first.state.done == {1}
    assert first.state.deferred == ((2, la(2026, 6, 12, 8, 0)),)
    assert first.next_due == la(2026, 6, 12, 8, 0)
    assert first.profile.sends == (("email", la(2026, 6, 10, 22, 10)),)
    # later: the deferred SMS goes at 08:00 with its code, expiring 48 h after that send
    then = due_touches(plan, first.state, first.profile, c, policy, la(2026, 6, 12, 9, 0), SECRET)
    [sms] = then.items
    assert (sms.touch.step, sms.at, sms.decision.action) == (2, la(2026, 6, 12, 8, 0), "send")
    assert sms.decision.code and sms.decision.expires_at == la(2026, 6, 14, 8, 0)
    # the mid band is two touches (seed 000): the SMS ends the plan
    assert then.finished and then.next_due is None
    assert then.state == PlanState(frozenset({1, 2}))


def test_one_call_equals_many_ticks(policy):
    c = cart("310", la(2026, 3, 6, 19, 45))  # the high band across the spring-forward weekend
    plan = plan_for(policy, c)
    horizon = la(2026, 3, 20, 0, 0)
    once = due_touches(plan, PlanState(), Profile(), c, policy, horizon, SECRET)
    state, profile, items = PlanState(), Profile(), []
    tick = c.abandoned_at
    while tick < horizon:
        tick += timedelta(minutes=47)
        step = due_touches(plan, state, profile, c, policy, tick, SECRET)
        state, profile, items = step.state, step.profile, [*items, *step.items]
    assert items == list(once.items)
    assert state == once.state and profile == once.profile and once.finished


def test_sends_of_the_batch_count_against_gaps():
    policy = load_policy().defaults
    at = datetime(2026, 6, 10, 19, 0, tzinfo=UTC)
    touches = tuple(PlannedTouch(f"t_{n}", n, "email", "x", at, reason=f"step {n}") for n in (1, 2))
    plan = Plan("s1", "s1:a", "c1", "mid", "new", 1, touches, value=Decimal(100))
    c = cart("100", at - timedelta(hours=1))
    out = due_touches(plan, PlanState(), Profile(), c, policy, at + timedelta(days=1), SECRET)
    assert [(i.touch.step, i.decision.action, i.at) for i in out.items] == [
        (1, "send", at),
        (2, "defer", at),
        (2, "send", at + timedelta(hours=16)),  # the 16 h email gap after step 1
    ]
    assert out.items[1].decision.key == "gap"


@pytest.mark.parametrize(
    ("profile", "contact", "key"),
    [
        (Profile(orders_count=1, last_order_at=la(2026, 6, 10, 13, 0)), {}, "ended"),
        (Profile(suppressed=frozenset({"all"})), {}, "ended"),
        (Profile(), {"email_consent": False, "sms_consent": False}, "no_consent"),
    ],
)
def test_exits_and_refusals_are_final(policy, profile, contact, key):
    c = cart("100", la(2026, 6, 10, 12, 0), **contact)
    plan = plan_for(policy, c)
    out = due_touches(plan, PlanState(), profile, c, policy, la(2026, 6, 20, 0, 0), SECRET)
    assert {i.decision.action for i in out.items} == {"skip"}
    assert out.items[0].decision.key == key and out.finished and out.sent == ()


def test_nothing_due_yet_and_holdout(policy):
    c = cart("100", la(2026, 6, 10, 12, 0))
    plan = plan_for(policy, c)
    early = due_touches(plan, PlanState(), Profile(), c, policy, la(2026, 6, 10, 12, 30), SECRET)
    assert early.items == () and early.next_due == plan.touches[0].due_at
    held = plan_for(
        policy.model_copy(
            update={"bands": [b.model_copy(update={"holdout": Decimal(1)}) for b in policy.bands]}
        ),
        c,
    )
    out = due_touches(held, PlanState(), Profile(), c, policy, la(2026, 7, 1, 0, 0), SECRET)
    assert held.holdout and out.items == () and out.finished
