"""Table tests for planning: value, band, segment, holdout, sequence, incentives, margin."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from config.policyfile import load_policy
from recovery.holdout import holdout_bucket, in_holdout
from recovery.ids import touch_id
from recovery.model import Cart, ContactInfo, Item, Profile
from recovery.plan import plan_recovery
from recovery.policy import Incentive, StorePolicy

T0 = datetime(2026, 6, 10, 15, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def policy() -> StorePolicy:
    return no_holdout(load_policy().defaults)


def no_holdout(policy: StorePolicy) -> StorePolicy:
    bands = [b.model_copy(update={"holdout": Decimal(0)}) for b in policy.bands]
    return policy.model_copy(update={"bands": bands})


def with_(policy: StorePolicy, **update: object) -> StorePolicy:
    return policy.model_copy(update=update)


def cart(total: str = "310", currency: str = "USD", **kw: object) -> Cart:
    kw.setdefault("contact", ContactInfo(email="a@example.com", phone="+14155550100"))
    return Cart(
        store="s1",
        checkout=kw.pop("checkout", "c1"),  # type: ignore[arg-type]
        currency=currency,
        total=Decimal(total),
        abandoned_at=T0,
        **kw,  # type: ignore[arg-type]
    )


def plan(policy: StorePolicy, c: Cart | None = None, profile: Profile | None = None, **kw):
    return plan_recovery(profile or Profile(), c or cart(), "s1:shopper", policy, T0, **kw)


@pytest.mark.parametrize(
    ("total", "band", "channels"),
    [
        ("0", "low", ["email"]),
        ("49.99", "low", ["email"]),
        ("50", "mid", ["email", "sms"]),
        ("199.99", "mid", ["email", "sms"]),
        ("200", "high", ["email", "ads", "sms", "email", "human"]),
        ("599.99", "high", ["email", "ads", "sms", "email", "human"]),
        ("600", "vip", ["email", "human", "sms", "ads", "email"]),
    ],
)
def test_band_and_sequence_from_total(policy, total, band, channels):
    p = plan(policy, cart(total))
    assert p.band == band
    assert [t.channel for t in p.touches] == channels
    assert p.value == Decimal(total) and p.currency == "USD"
    assert any(r.startswith(f"band: {band}") for r in p.reasons)


def test_seed_incentives_sit_on_the_named_steps(policy):
    mid = plan(policy, cart("100")).touches
    assert [t.incentive_kind for t in mid] == [None, "percent_off"]
    assert mid[1].incentive_value == 10 and mid[1].due_at == T0 + timedelta(hours=24)
    high = plan(policy, cart("310")).touches
    assert [t.incentive_kind for t in high] == [None, None, None, "percent_off", None]
    assert high[3].incentive_value == 12 and high[3].due_at == T0 + timedelta(hours=48)
    assert high[3].incentive_validity_s == 48 * 3600
    assert high[4].channel == "human" and high[4].due_at == T0 + timedelta(hours=48)
    vip = plan(policy, cart("900")).touches
    assert vip[0].incentive_kind == "service"
    assert vip[0].incentive_service == "free_expedited_shipping"
    assert all(t.incentive_kind not in ("percent_off", "fixed_off") for t in vip)


def test_amount_basis_subtotal(policy):
    sub = with_(policy, amount_basis="subtotal")
    p = plan(sub, cart("210", subtotal=Decimal("190")))
    assert (p.band, p.value) == ("mid", Decimal("190"))
    # a cart without subtotal falls back to the total, and says so
    p = plan(sub, cart("210"))
    assert (p.band, p.value) == ("high", Decimal("210"))
    assert p.reasons[0].startswith("value: total")


@pytest.mark.parametrize(
    ("kw", "policy_update", "value", "rejected"),
    [
        ({}, {}, None, True),
        ({"shop_currency": "USD", "shop_total": Decimal("220")}, {}, Decimal("220"), False),
        ({}, {"fx_rates": {"EUR": Decimal("1.10")}}, Decimal("198.00"), False),
        ({"shop_currency": "CAD", "shop_total": Decimal("300")}, {}, None, True),
    ],
)
def test_foreign_currency_uses_shop_amount_or_rate_or_rejects(
    policy, kw, policy_update, value, rejected
):
    p = plan(with_(policy, **policy_update), cart("180", "EUR", **kw))
    if rejected:
        assert p.rejected and "EUR" in p.rejected and p.touches == ()
        assert p.band == ""
    else:
        assert p.rejected is None and p.value == value and p.currency == "USD"


@pytest.mark.parametrize(
    ("profile", "segment"),
    [
        (Profile(), "new"),
        (Profile(orders_count=1), "returning"),
        (Profile(orders_count=2), "returning"),
        (Profile(orders_count=3), "repeat_vip"),
        (Profile(lifetime_value=Decimal("999.99")), "new"),
        (Profile(lifetime_value=Decimal("1000")), "repeat_vip"),
        (Profile(abandonments=(T0 - timedelta(days=1),)), "new"),
        (Profile(abandonments=(T0 - timedelta(days=1), T0 - timedelta(days=2))), "hesitant"),
        # outside the 30-day window
        (Profile(abandonments=(T0 - timedelta(days=1), T0 - timedelta(days=31))), "new"),
        # an order since the earlier abandonments resets hesitation
        (
            Profile(
                orders_count=1,
                last_order_at=T0 - timedelta(hours=30),
                abandonments=(T0 - timedelta(days=2), T0 - timedelta(days=3)),
            ),
            "returning",
        ),
        # this cart's own abandonment is not counted twice
        (Profile(abandonments=(T0, T0 - timedelta(days=1))), "new"),
        # price sensitivity: half the orders used a discount code, not one in three
        (Profile(orders_count=2, discount_orders=1), "price_sensitive"),
        (Profile(orders_count=1, discount_orders=1), "price_sensitive"),
        (Profile(orders_count=2, discount_orders=0), "returning"),
        # repeat_vip and hesitant win over a price signal
        (Profile(orders_count=3, discount_orders=3), "repeat_vip"),
        (
            Profile(
                orders_count=1,
                discount_orders=1,
                last_order_at=T0 - timedelta(days=20),
                abandonments=(T0 - timedelta(days=1), T0 - timedelta(days=2)),
            ),
            "hesitant",
        ),
    ],
)
def test_segments(policy, profile, segment):
    assert plan(policy, profile=profile).segment == segment


def test_segment_refines_the_sequence(policy):
    vip = plan(policy, cart("310"), Profile(orders_count=5))
    assert vip.segment == "repeat_vip"
    assert all(t.incentive_kind is None for t in vip.touches)
    assert "gentle_reminder" in [t.template for t in vip.touches]
    withheld = [t for t in vip.touches if t.incentive_withheld_reason]
    assert withheld and withheld[0].incentive_withheld_reason.startswith("segment: repeat_vip")
    hesitant = plan(policy, cart("310"), Profile(abandonments=(T0 - timedelta(days=1),) * 1))
    assert hesitant.segment == "new"
    times = (T0 - timedelta(days=1), T0 - timedelta(days=2))
    hesitant = plan(policy, cart("310"), Profile(abandonments=times))
    assert hesitant.touches[0].template == "social_proof"
    assert hesitant.touches[3].incentive_kind is None
    assert hesitant.touches[3].incentive_withheld_reason.startswith("segment: hesitant")
    new = plan(policy, cart("100"))
    assert new.touches[1].incentive_kind == "percent_off"


def test_segment_percent_cap_and_skipped_channels(policy):
    segs = policy.segments.model_copy(
        update={
            "new": policy.segments.new.model_copy(
                update={"max_percent_off": Decimal("5"), "skip_channels": ["ads"]}
            )
        }
    )
    p = plan(with_(policy, segments=segs), cart("310"))
    assert [t.channel for t in p.touches] == ["email", "sms", "email", "human"]
    assert [t.step for t in p.touches] == [1, 3, 4, 5]  # ids stay tied to the band's step
    assert p.touches[2].incentive_value == 5
    assert "capped from 12% to 5%" in p.touches[2].reason
    assert any(r.startswith("skipped: step 2 ads") for r in p.reasons)


@pytest.mark.parametrize(
    ("gross", "items", "withheld"),
    [
        ("0.40", (), False),  # 12% of 310 = 37.20 <= 0.5 x 124.00
        ("0.20", (), True),  # 37.20 > 0.5 x 62.00 = 31.00
        ("0.24", (), False),  # 37.20 <= 0.5 x 74.40 = 37.20: equal is allowed
        ("0.2399", (), True),
        # line-item costs win over gross margin when every item has one
        ("0.40", (Item("a", 2, Decimal("155"), cost=Decimal("130")),), True),  # margin 50
        ("0.10", (Item("a", 2, Decimal("155"), cost=Decimal("100")),), False),  # margin 110
        # an item without cost: fall back to gross margin
        (
            "0.40",
            (Item("a", 1, Decimal("155"), cost=Decimal("150")), Item("b", 1, Decimal("155"))),
            False,
        ),
    ],
)
def test_margin_guard(policy, gross, items, withheld):
    margin = policy.margin.model_copy(update={"gross_margin": Decimal(gross)})
    touch = plan(with_(policy, margin=margin), cart("310", items=items)).touches[3]
    if withheld:
        assert touch.incentive_kind is None
        assert touch.incentive_withheld_reason.startswith("margin: 12% off costs 37.20")
    else:
        assert touch.incentive_kind == "percent_off" and touch.incentive_cost == Decimal("37.20")
        assert touch.incentive_withheld_reason is None


def test_service_cost_is_guarded_too(policy):
    margin = policy.margin.model_copy(
        update={"service_costs": {"free_expedited_shipping": Decimal("500")}}
    )
    touch = plan(with_(policy, margin=margin), cart("900")).touches[0]
    assert touch.incentive_kind is None
    assert "free_expedited_shipping costs 500" in touch.incentive_withheld_reason


def test_human_touch_carries_reason_and_cart_summary(policy):
    items = (Item("Espresso machine", 1, Decimal("300")), Item("Beans", 2, Decimal("5")))
    c = cart("310", items=items, recovery_url="https://shop/r/1")
    human = plan(policy, c).touches[4]
    assert human.channel == "human"
    assert "follow up by a person" in human.reason
    assert "1x Espresso machine @ 300" in human.summary and "https://shop/r/1" in human.summary


def test_touch_ids_are_hash_of_store_shopper_cart_version_step(policy):
    p = plan(policy, version=3)
    assert [t.touch_id for t in p.touches] == [
        touch_id("s1", "s1:shopper", "c1", 3, step) for step in range(1, 6)
    ]
    assert p.touches[0].touch_id != plan(policy, version=4).touches[0].touch_id


def test_holdout_share_is_respected_and_deterministic():
    shares = [in_holdout("s1", f"s1:{n}", "c", Decimal("0.05"))[0] for n in range(4000)]
    assert 0.03 < sum(shares) / len(shares) < 0.07
    assert holdout_bucket("s1", "a", "c") == holdout_bucket("s1", "a", "c")
    assert not in_holdout("s1", "a", "c", Decimal(0))[0]
    assert in_holdout("s1", "a", "c", Decimal(1))[0]


def test_holdout_plan_has_no_touches_but_band_and_value():
    everyone = load_policy().defaults
    bands = [b.model_copy(update={"holdout": Decimal(1)}) for b in everyone.bands]
    p = plan(with_(everyone, bands=bands), cart("310"))
    assert p.holdout and p.touches == () and p.band == "high" and p.value == Decimal("310")
    assert any(r.startswith("holdout: control group") for r in p.reasons)


@pytest.mark.parametrize(
    ("total", "shipping", "band", "value"),
    [
        ("205", "10", "mid", "195"),  # the default basis is the total before shipping
        ("209.99", "10", "mid", "199.99"),
        ("210", "10", "high", "200"),
        ("59.99", "10", "low", "49.99"),
        ("210", None, "high", "210"),  # no shipping reported: the total
        ("210", "0", "high", "210"),
        ("5", "10", "low", "5"),  # a nonsense shipping above the total is ignored
    ],
)
def test_total_before_shipping(policy, total, shipping, band, value):
    ship = Decimal(shipping) if shipping is not None else None
    p = plan(policy, cart(total, shipping=ship))
    assert (p.band, p.value) == (band, Decimal(value))
    if ship and ship <= Decimal(total):
        why = f"value: total before shipping {value} USD ({total} - shipping {shipping})"
        assert p.reasons[0] == why
    else:
        assert p.reasons[0] == f"value: total {value} USD"


@pytest.mark.parametrize(
    ("kw", "update", "value"),
    [
        # shop-currency total 220 for a 200 EUR cart with 20 EUR shipping: 198 USD before it
        ({"shop_currency": "USD", "shop_total": Decimal("220"), "shipping": Decimal("20")}, {},
         Decimal("198.00")),
        ({"shipping": Decimal("20")}, {"fx_rates": {"EUR": Decimal("1.10")}}, Decimal("198.00")),
        # subtotal basis with a shop-currency total but no shop-currency subtotal: scaled
        ({"shop_currency": "USD", "shop_total": Decimal("220"), "subtotal": Decimal("150")},
         {"amount_basis": "subtotal"}, Decimal("165.00")),
        ({"shop_currency": "USD", "shop_total": Decimal("220"), "subtotal": Decimal("150"),
          "shop_subtotal": Decimal("166")}, {"amount_basis": "subtotal"}, Decimal("166")),
    ],
)  # fmt: skip
def test_foreign_cart_with_shipping_or_subtotal(policy, kw, update, value):
    p = plan(with_(policy, **update), cart("200", "EUR", **kw))
    assert p.rejected is None and (p.value, p.currency) == (value, "USD"), p.reasons


def test_every_plan_decision_has_its_reason(policy):
    items = (Item("Espresso machine", 1, Decimal("310"), cost=Decimal("300")),)
    p = plan(policy, cart("310", items=items))
    keys = [r.split(":", 1)[0] for r in p.reasons]
    assert keys[:4] == ["value", "band", "segment", "holdout"]
    offer = p.touches[3]
    assert offer.incentive_kind is None
    assert offer.incentive_withheld_reason.startswith("margin: 12% off costs 37.20")
    assert "line-item costs 10.00" in offer.incentive_withheld_reason
    assert all(t.reason.startswith(f"step {t.step}: {t.channel}") for t in p.touches)


@pytest.mark.parametrize(
    ("shipping", "withheld"),
    [
        (None, False),  # the policy's 10.00 estimate <= 0.5 x 0.40 x 100 = 20.00
        (Decimal("19.99"), False),  # the cart's own shipping charge is what it costs
        (Decimal("20.01"), True),
    ],
)
def test_free_shipping_costs_the_carts_shipping_when_known(policy, shipping, withheld):
    band = policy.bands[1].model_copy(
        update={
            "sequence": [
                policy.bands[1]
                .sequence[0]
                .model_copy(update={"incentive": Incentive(kind="free_shipping")})
            ]
        }
    )
    bands = [policy.bands[0], band, *policy.bands[2:]]
    total = Decimal(100) + (shipping or 0)
    [touch] = plan(with_(policy, bands=bands), cart(str(total), shipping=shipping)).touches
    assert (touch.incentive_kind is None) == withheld
    if withheld:
        assert touch.incentive_withheld_reason.startswith("margin: free shipping costs 20.01")
    else:
        assert touch.incentive_cost == (shipping if shipping is not None else Decimal("10.00"))
