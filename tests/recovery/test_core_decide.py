"""Table tests for due-touch decisions: consent, quiet hours and time zones, gaps, caps, exits."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from config.policyfile import load_policy
from recovery.codes import ALPHABET, AMBIGUOUS, discount_code
from recovery.decide import (
    choose_plan,
    decide_touch,
    end_plan,
    exit_reason,
    is_stop_keyword,
)
from recovery.model import Cart, ContactInfo, Item, Plan, PlannedTouch, Profile
from recovery.policy import StorePolicy, Window
from recovery.quiet import next_allowed

LA = ZoneInfo("America/Los_Angeles")
NY = ZoneInfo("America/New_York")
SECRET = b"store-secret"
LA_PHONE = "+14155550100"  # San Francisco area code
NY_PHONE = "+12125550100"


@pytest.fixture(scope="module")
def policy() -> StorePolicy:
    return load_policy().defaults


def local(zone: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=zone).astimezone(UTC)


def contact(**kw: object) -> ContactInfo:
    base: dict[str, object] = {
        "email": "a@example.com",
        "phone": LA_PHONE,
        "email_consent": True,
        "sms_consent": True,
    }
    base.update(kw)
    return ContactInfo(**base)  # type: ignore[arg-type]


def cart(abandoned: datetime, **kw: object) -> Cart:
    return Cart(
        store="s1",
        checkout="c1",
        currency="USD",
        total=Decimal("310"),
        abandoned_at=abandoned,
        items=(Item("x", 1, Decimal("310")),),
        contact=kw.pop("contact", contact()),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


def touch(channel: str, due: datetime, **kw: object) -> PlannedTouch:
    return PlannedTouch(
        touch_id=f"t_{channel}", step=1, channel=channel, template="x", due_at=due, **kw
    )  # type: ignore[arg-type]


def make_plan(**kw: object) -> Plan:
    base: dict[str, object] = {
        "store": "s1",
        "shopper": "s1:a",
        "cart": "c1",
        "band": "high",
        "segment": "new",
        "version": 1,
        "touches": (),
        "value": Decimal("310"),
        "currency": "USD",
    }
    base.update(kw)
    return Plan(**base)  # type: ignore[arg-type]


def decide(policy, channel, now, *, profile=None, c=None, due=None, **touch_kw):
    due = due or now
    c = c or cart(due - timedelta(hours=1))
    t = touch(channel, due, **touch_kw)
    return decide_touch(make_plan(), t, profile or Profile(), c, policy, now, SECRET)


@pytest.mark.parametrize(
    ("when", "action", "at"),
    [
        (local(LA, 2026, 6, 10, 20, 59), "send", None),
        (local(LA, 2026, 6, 10, 20, 59, 59), "send", None),
        (local(LA, 2026, 6, 10, 21, 0), "defer", local(LA, 2026, 6, 11, 8, 0)),
        (local(LA, 2026, 6, 10, 23, 30), "defer", local(LA, 2026, 6, 11, 8, 0)),
        (local(LA, 2026, 6, 11, 7, 59), "defer", local(LA, 2026, 6, 11, 8, 0)),
        (local(LA, 2026, 6, 11, 8, 0), "send", None),
        # on the DST change days themselves, the edges stay at 20:59 / 21:00 local
        (local(LA, 2026, 3, 8, 20, 59), "send", None),
        (local(LA, 2026, 3, 8, 21, 0), "defer", local(LA, 2026, 3, 9, 8, 0)),
        (local(LA, 2026, 11, 1, 20, 59), "send", None),
        (local(LA, 2026, 11, 1, 21, 0), "defer", local(LA, 2026, 11, 2, 8, 0)),
        (local(LA, 2026, 3, 8, 7, 59), "defer", local(LA, 2026, 3, 8, 8, 0)),
        (local(LA, 2026, 11, 1, 8, 0), "send", None),
        # Spring forward (8 March 2026): 21:30 PST -> 08:00 PDT, 15:00 UTC
        (local(LA, 2026, 3, 7, 21, 30), "defer", datetime(2026, 3, 8, 15, 0, tzinfo=UTC)),
        # Fall back (1 November 2026): 21:00 PDT -> 08:00 PST, 16:00 UTC
        (local(LA, 2026, 10, 31, 21, 0), "defer", datetime(2026, 11, 1, 16, 0, tzinfo=UTC)),
        # 01:30 happens twice on the fall-back night; both are quiet
        (
            datetime(2026, 11, 1, 8, 30, tzinfo=UTC),
            "defer",
            datetime(2026, 11, 1, 16, 0, tzinfo=UTC),
        ),
        (
            datetime(2026, 11, 1, 9, 30, tzinfo=UTC),
            "defer",
            datetime(2026, 11, 1, 16, 0, tzinfo=UTC),
        ),
    ],
)
def test_sms_quiet_hours_in_the_recipients_zone(policy, when, action, at):
    d = decide(policy, "sms", when)
    assert d.action == action, d
    assert d.at == at
    if action == "defer":
        assert d.key == "quiet_hours" and "America/Los_Angeles" in d.reason


def test_email_has_no_window_by_default(policy):
    assert decide(policy, "email", local(LA, 2026, 6, 10, 23, 30)).action == "send"


@pytest.mark.parametrize(
    ("kw", "when", "action"),
    [
        # Florida: 08:00-20:00 (the address province names the region)
        ({"phone": "+13055550100", "country_code": "US", "province_code": "FL"}, (19, 59), "send"),
        ({"phone": "+13055550100", "country_code": "US", "province_code": "FL"}, (20, 0), "defer"),
        # a Florida area code is under Florida's rules without any address ...
        ({"phone": "+13055550100", "country_code": "US"}, (20, 30), "defer"),
        ({"phone": "+13055550100"}, (19, 59), "send"),
        ({"phone": "+13055550100"}, (20, 0), "defer"),
        # ... and with an address in another state
        ({"phone": "+13055550100", "country_code": "US", "province_code": "NY"}, (20, 0), "defer"),
        # a New York number shipping to Florida is under Florida's rules too
        ({"phone": NY_PHONE, "country_code": "US", "province_code": "FL"}, (20, 0), "defer"),
        # Oklahoma (405) in its own zone: 20:00 Central is 21:00 in New York
        ({"phone": "+14055550100"}, (20, 59), "send"),
        ({"phone": "+14055550100"}, (21, 0), "defer"),
        # New York: the default 08:00-21:00
        ({"phone": NY_PHONE}, (20, 30), "send"),
    ],
)
def test_region_override(policy, kw, when, action):
    c = cart(local(NY, 2026, 6, 10, 10, 0), contact=contact(**kw))
    now = local(NY, 2026, 6, 10, *when)
    assert decide(policy, "sms", now, c=c).action == action


@pytest.mark.parametrize(
    ("kw", "zone"),
    [
        ({"phone": LA_PHONE}, "America/Los_Angeles"),
        ({"phone": NY_PHONE, "country_code": "US", "province_code": "CA"}, "America/New_York"),
        ({"phone": None, "country_code": "US", "province_code": "CA"}, "America/Los_Angeles"),
        ({"phone": None, "country_code": "DE"}, "Europe/Berlin"),
        ({"phone": "+15555", "country_code": None}, "America/New_York"),  # store zone
        ({"phone": None}, "America/New_York"),
    ],
)
def test_zone_from_phone_then_address_then_store(policy, kw, zone):
    c = cart(datetime(2026, 6, 10, tzinfo=UTC), contact=contact(**kw, sms_phone=None))
    if kw.get("phone") is None:
        c = dataclasses.replace(c, contact=dataclasses.replace(c.contact, sms_phone="+15555"))
    # 23:30 in the expected zone is quiet everywhere we test
    d = decide(policy, "sms", local(ZoneInfo(zone), 2026, 6, 10, 23, 30), c=c)
    assert d.action == "defer" and zone in d.reason, d.reason
    assert d.at == local(ZoneInfo(zone), 2026, 6, 11, 8, 0)


def test_window_start_in_a_spring_forward_gap():
    window = Window(start=2 * 60 + 30, end=5 * 60)
    now = local(NY, 2026, 3, 8, 0, 0)
    at = next_allowed(now, window, [NY])
    assert at == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)  # 03:30 EDT, the first real minute
    assert at.astimezone(NY).hour == 3


def test_no_sunday_rule(policy):
    regions = {
        **policy.regions,
        "US-XX": policy.regions["US-FL"].model_copy(
            update={"windows": {"sms": Window(start=480, end=1260, sundays=False)}}
        ),
    }
    p = policy.model_copy(update={"regions": regions})
    c = cart(
        local(LA, 2026, 6, 13, 10, 0),
        contact=contact(country_code="US", province_code="XX"),
    )
    sunday_noon = local(LA, 2026, 6, 14, 12, 0)
    d = decide(p, "sms", sunday_noon, c=c)
    assert d.action == "defer" and d.at == local(LA, 2026, 6, 15, 8, 0)


@pytest.mark.parametrize(
    ("channel", "contact_kw", "profile", "incentive", "transactional", "expected"),
    [
        ("email", {}, Profile(), None, False, "send"),
        ("email", {"email_consent": False}, Profile(), None, False, "no_consent"),
        ("email", {"email_consent": False}, Profile(), None, True, "send"),
        ("email", {"email_consent": False}, Profile(), "percent_off", True, "no_consent"),
        ("email", {"email_consent": False}, Profile(email_consent=True), None, False, "send"),
        ("email", {}, Profile(email_consent=False), None, False, "no_consent"),
        ("email", {"email": None}, Profile(), None, False, "no_contact"),
        ("email", {}, Profile(suppressed=frozenset({"email"})), None, False, "suppressed"),
        ("sms", {}, Profile(), None, False, "send"),
        ("sms", {"sms_consent": False}, Profile(), None, False, "no_consent"),
        ("sms", {"sms_consent": False}, Profile(sms_consent=True), None, False, "send"),
        ("sms", {}, Profile(sms_consent=False), None, False, "no_consent"),
        ("sms", {"phone": None}, Profile(), None, False, "no_contact"),
        ("sms", {}, Profile(suppressed=frozenset({"sms"})), None, False, "suppressed"),
        ("sms", {}, Profile(suppressed=frozenset({"all"})), None, False, "ended"),
        ("ads", {"email_consent": False}, Profile(), None, False, "no_consent"),
        ("ads", {}, Profile(), None, False, "send"),
        ("human", {"email_consent": False, "sms_consent": False}, Profile(), None, False, "send"),
    ],
)
def test_consent_and_suppression(
    policy, channel, contact_kw, profile, incentive, transactional, expected
):
    p = policy.model_copy(
        update={"consent": policy.consent.model_copy(update={"transactional_email": transactional})}
    )
    now = local(LA, 2026, 6, 10, 12, 0)
    c = cart(now - timedelta(hours=1), contact=contact(**contact_kw))
    extra = {"incentive_kind": incentive, "incentive_value": Decimal(10)} if incentive else {}
    d = decide(p, channel, now, profile=profile, c=c, **extra)
    assert (d.action if expected == "send" else d.key) == expected, d
    if expected != "send":
        assert d.action == "skip"


def test_per_channel_gap_defers(policy):
    now = local(LA, 2026, 6, 10, 12, 0)
    profile = Profile(sends=(("email", now - timedelta(hours=10)),))
    d = decide(policy, "email", now, profile=profile)
    assert d.action == "defer" and d.key == "gap" and d.at == now + timedelta(hours=6)
    # another channel is not held by the email gap
    assert decide(policy, "sms", now, profile=profile).action == "send"
    ok = Profile(sends=(("email", now - timedelta(hours=16)),))
    assert decide(policy, "email", now, profile=ok).action == "send"


def test_gap_ending_in_quiet_hours_defers_to_the_window(policy):
    now = local(LA, 2026, 6, 10, 12, 0)
    profile = Profile(sends=(("sms", now - timedelta(hours=14)),))  # gap ends 22:00 local
    d = decide(policy, "sms", now, profile=profile)
    assert d.action == "defer" and d.at == local(LA, 2026, 6, 11, 8, 0)
    assert "gap:" in d.reason and "quiet_hours:" in d.reason


def test_rolling_cap_across_carts(policy):
    now = local(LA, 2026, 6, 10, 12, 0)
    sends = (
        ("sms", now - timedelta(hours=23)),
        ("sms", now - timedelta(hours=20)),
        ("ads", now - timedelta(hours=2)),  # not a counted channel
        ("email", now - timedelta(hours=17)),  # past the 16 h email gap
    )
    d = decide(policy, "email", now, profile=Profile(sends=sends))
    assert d.action == "defer" and d.key == "cap"
    assert d.at == now + timedelta(hours=1)  # when the oldest counted send leaves the window
    assert decide(policy, "email", now, profile=Profile(sends=sends[1:])).action == "send"
    assert decide(policy, "human", now, profile=Profile(sends=sends)).action == "send"


@pytest.mark.parametrize(
    ("plan_kw", "key"),
    [
        ({"holdout": True}, "holdout"),
        ({"rejected": "currency: GBP"}, "rejected"),
        ({"ended": "order: #1"}, "ended"),
    ],
)
def test_plan_state_skips(policy, plan_kw, key):
    now = local(LA, 2026, 6, 10, 12, 0)
    d = decide_touch(
        make_plan(**plan_kw), touch("email", now), Profile(), cart(now), policy, now, SECRET
    )
    assert (d.action, d.key) == ("skip", key)


def test_order_since_abandonment_and_emptied_cart_end_it(policy):
    now = local(LA, 2026, 6, 10, 12, 0)
    abandoned = now - timedelta(hours=2)
    ordered = Profile(orders_count=1, last_order_at=now - timedelta(hours=1))
    d = decide(policy, "email", now, profile=ordered, c=cart(abandoned))
    assert (d.action, d.key) == ("skip", "ended") and "order" in d.reason
    before = Profile(orders_count=1, last_order_at=abandoned - timedelta(days=1))
    assert decide(policy, "email", now, profile=before, c=cart(abandoned)).action == "send"
    empty = dataclasses.replace(cart(abandoned), items=(), total=Decimal(0))
    d = decide(policy, "email", now, c=empty)
    assert d.action == "skip" and "cart_emptied" in d.reason


def test_not_due_and_stale(policy):
    now = local(LA, 2026, 6, 10, 12, 0)
    d = decide(policy, "email", now, due=now + timedelta(minutes=5))
    assert (d.action, d.key, d.at) == ("defer", "not_due", now + timedelta(minutes=5))
    d = decide(policy, "email", now, due=now - timedelta(days=3, seconds=1))
    assert (d.action, d.key) == ("skip", "stale")


def test_send_carries_code_and_expiry(policy):
    now = local(LA, 2026, 6, 10, 12, 0)
    d = decide(
        policy, "email", now, incentive_kind="percent_off", incentive_value=Decimal(12),
        incentive_validity_s=48 * 3600,
    )  # fmt: skip
    assert d.action == "send" and d.expires_at == now + timedelta(hours=48)
    assert d.code == discount_code("t_email", SECRET)
    d = decide(
        policy, "email", now, incentive_kind="service",
        incentive_service="free_expedited_shipping", incentive_validity_s=3600,
    )  # fmt: skip
    # free expedited shipping is honoured with a free-shipping code in the store
    assert d.code == discount_code("t_email", SECRET) and d.expires_at == now + timedelta(hours=1)
    d = decide(
        policy, "email", now, incentive_kind="service", incentive_service="concierge_call",
        incentive_validity_s=3600,
    )  # fmt: skip
    assert d.code is None and d.expires_at == now + timedelta(hours=1)
    assert decide(policy, "email", now).code is None


def test_discount_codes():
    code = discount_code("t_abc", SECRET)
    assert code == discount_code("t_abc", SECRET)
    assert len(code) == 12 and set(code) <= set(ALPHABET)
    assert len({len(discount_code(f"t_{n}", SECRET)) for n in range(200)}) == 1  # fixed length
    assert not set("0OQD1IL2Z5S8BGUV") & set(ALPHABET) and not AMBIGUOUS & set(ALPHABET)
    assert len(set(ALPHABET)) == len(ALPHABET) == 20 and ALPHABET.isupper()
    assert code != discount_code("t_abd", SECRET)
    assert code != discount_code("t_abc", b"other")
    assert len(discount_code("t_abc", SECRET, length=16)) == 16
    assert len({discount_code(f"t_{n}", SECRET) for n in range(5000)}) == 5000
    with pytest.raises(ValueError):
        discount_code("t_abc", b"")


@pytest.mark.parametrize(
    ("active", "new", "winner", "key"),
    [
        (None, {"cart": "c2", "value": Decimal(10)}, "new", "no active plan"),
        ({"value": Decimal(100)}, {"cart": "c2", "value": Decimal(300)}, "new", "worth more"),
        ({"value": Decimal(300)}, {"cart": "c2", "value": Decimal(100)}, "active", "kept"),
        ({"value": Decimal(300)}, {"cart": "c2", "value": Decimal(300)}, "active", "kept"),
        ({"value": Decimal(300)}, {"value": Decimal(100), "version": 2}, "new", "re-planned"),
        ({"value": Decimal(300), "ended": "order"}, {"cart": "c2"}, "new", "no active plan"),
        ({"value": Decimal(5)}, {"cart": "c2", "rejected": "currency"}, "active", "rejected"),
        (
            {"value": Decimal(300)},
            {"cart": "c2", "value": Decimal(100), "currency": "EUR"},
            "new",
            "not compared",
        ),
    ],
)
def test_choose_plan_keeps_the_higher_value_cart(active, new, winner, key):
    a = make_plan(**active) if active is not None else None
    n = make_plan(**new)
    chosen, reason = choose_plan(a, n)
    assert chosen is (n if winner == "new" else a)
    assert reason.startswith("choose:") and key in reason


def test_choose_newest_rule():
    a, n = make_plan(value=Decimal(300)), make_plan(cart="c2", value=Decimal(10))
    assert choose_plan(a, n, rule="newest")[0] is n


def test_exits():
    assert exit_reason("order", "#1001") == "order: #1001"
    assert exit_reason("redaction") == "redaction"
    with pytest.raises(ValueError):
        exit_reason("bored")  # type: ignore[arg-type]
    p = end_plan(make_plan(), exit_reason("unsubscribe", "sms STOP"))
    assert p.ended == "unsubscribe: sms STOP" and not p.active
    assert end_plan(p, "redaction").ended == "unsubscribe: sms STOP"
    for text in ("STOP", " stop ", "Opt-Out", "unsubscribe", "Cancel", "QUIT", "end"):
        assert is_stop_keyword(text), text
    for text in ("stop it please", "hello", ""):
        assert not is_stop_keyword(text)


def _with_regions(policy: StorePolicy, **windows: Window | None) -> StorePolicy:
    regions = dict(policy.regions)
    for key, window in windows.items():
        regions[key.replace("_", "-")] = policy.regions["US-FL"].model_copy(
            update={"windows": {"sms": window}}
        )
    return policy.model_copy(update={"regions": regions})


def test_two_subdivisions_apply_together(policy):
    # a Florida number (08:00-20:00) shipping to a state that allows 10:00-22:00: 10:00-20:00
    p = _with_regions(policy, US_CA=Window(start=600, end=1320))
    c = cart(
        local(NY, 2026, 6, 10, 6, 0),
        contact=contact(phone="+13055550100", country_code="US", province_code="CA"),
    )
    d = decide(p, "sms", local(NY, 2026, 6, 10, 9, 0), c=c)
    assert d.action == "defer" and d.at == local(NY, 2026, 6, 10, 10, 0), d
    assert "allowed 10:00-20:00" in d.reason
    assert decide(p, "sms", local(NY, 2026, 6, 10, 20, 0), c=c).action == "defer"
    # a subdivision lifting its window does not lift the other one's
    lifted = _with_regions(policy, US_CA=None)
    assert decide(lifted, "sms", local(NY, 2026, 6, 10, 20, 30), c=c).action == "defer"


def test_no_minute_fits_every_rule_skips_instead_of_failing(policy):
    # disjoint subdivision windows: never allowed
    p = _with_regions(policy, US_CA=Window(start=360, end=480))
    c = cart(
        local(NY, 2026, 6, 10, 6, 0),
        contact=contact(phone="+13055550100", country_code="US", province_code="CA"),
    )
    d = decide(p, "sms", local(NY, 2026, 6, 10, 12, 0), c=c)
    assert (d.action, d.key) == ("skip", "quiet_hours"), d
    # a number whose country spans zones 2 h apart, under a 1-hour window
    narrow = policy.model_copy(update={"send_windows": {"sms": Window(start=480, end=540)}})
    abandoned = datetime(2026, 6, 10, tzinfo=UTC)
    kiribati = cart(abandoned, contact=contact(phone="+68672001234"))
    d = decide(narrow, "sms", abandoned + timedelta(hours=1), c=kiribati)
    assert (d.action, d.key) == ("skip", "quiet_hours") and "Pacific/Tarawa" in d.reason, d


@pytest.mark.parametrize(
    ("phones", "suppressed", "action"),
    [
        ({"phone": "+1 415 555 0100"}, {"+14155550100"}, "suppressed"),
        ({"phone": "+14155550100", "sms_phone": "+14155550199"}, {"+14155550100"}, "send"),
        (
            {"phone": "+14155550100", "sms_phone": "(+1) 415-555-0199"},
            {"+14155550199"},
            "suppressed",
        ),
        ({"phone": "+14155550100"}, {"+12125550100"}, "send"),
    ],
)
def test_never_sms_a_suppressed_number(policy, phones, suppressed, action):
    now = local(LA, 2026, 6, 10, 12, 0)
    c = cart(now - timedelta(hours=1), contact=contact(**phones))
    profile = Profile(sms_consent=True, suppressed_numbers=frozenset(suppressed))
    d = decide(policy, "sms", now, profile=profile, c=c)
    assert (d.action if action == "send" else d.key) == action, d
    # the suppression list is about SMS: email still goes
    assert decide(policy, "email", now, profile=profile, c=c).action == "send"


def test_human_follow_up_needs_a_way_to_reach_the_shopper(policy):
    now = local(LA, 2026, 6, 10, 12, 0)
    nobody = cart(now - timedelta(hours=1), contact=ContactInfo())
    d = decide(policy, "human", now, c=nobody)
    assert (d.action, d.key) == ("skip", "no_contact")


def test_any_withdrawal_ends_the_plan_with_its_reason():
    from recovery.decide import consent_exit

    assert consent_exit("sms", False, "STOP") == "unsubscribe: sms STOP"
    assert consent_exit("email", False, "unsubscribe link") == "unsubscribe: email unsubscribe link"
    assert consent_exit("all", False) == "unsubscribe: all"
    assert consent_exit("sms", True, "START") is None


def test_a_national_number_is_read_in_the_address_country(policy):
    # "(305) 555-0100" with a US address is a Florida number: 08:00-20:00 New York time
    c = cart(
        local(NY, 2026, 6, 10, 10, 0),
        contact=contact(phone="(305) 555-0100", country_code="US"),
    )
    d = decide(policy, "sms", local(NY, 2026, 6, 10, 20, 0), c=c)
    assert (
        d.action == "defer" and "08:00-20:00" in d.reason and "phone America/New_York" in d.reason
    )
