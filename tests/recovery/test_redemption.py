"""Attribution charges a recovery with the discount its codes redeemed, not what was issued."""

from __future__ import annotations

import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from config.policyfile import DEFAULT_POLICY, load_policy
from recovery.checkouts import BadEvent, apply_event, validate
from recovery.checkouts import epoch as to_epoch
from recovery.redemption import BadDiscount, attribute, normal_code, order_discounts
from recovery.shopper_records import shopper_event
from recovery.shopper_state import EndedPlan, ShopperState, StoredProfile
from recovery.shoppers import apply_converted
from recovery.simulate import simulate
from streams.app import code_secret
from tests.pipeline.helpers import T0, cart, order, without_holdout

HOUR = 3600.0
DAY = 86400.0
TREATED = load_policy(without_holdout(DEFAULT_POLICY, Path(tempfile.mkdtemp()) / "p.yaml"))


def _all_holdout() -> Any:
    data = yaml.safe_load(DEFAULT_POLICY.read_text())
    for band in data["defaults"]["bands"]:
        band["holdout"] = 1
    path = Path(tempfile.mkdtemp()) / "h.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_policy(path)


def run(policies: Any, *events: dict[str, Any]) -> Any:
    timed = sorted(((to_epoch(e["occurred_at"], "t"), e) for e in events), key=lambda p: p[0])
    return simulate(timed, policies, code_secret)


def _issued(policies: Any, checkout: str, total: str) -> dict[str, Any]:
    """The touch that carried a discount code to the cart, when nothing stops the plan."""
    (touch,) = [t for t in run(policies, cart(checkout, total)).touches if t["incentive"]]
    assert touch["incentive"]["code"]
    return touch


def _order_using(checkout: str, total: str, at: float, *discounts: dict[str, Any]) -> dict:
    return {**order(checkout, total, at), "discounts": list(discounts)}


def test_the_redeemed_amount_is_charged_and_the_issued_cost_kept_beside_it():
    touch = _issued(TREATED, "h1", "310")
    code = touch["incentive"]["code"]
    after = to_epoch(touch["due_at"], "due_at") + HOUR
    # the shopper came back with a smaller basket: the 12% took 24.00 off, not the 37.20 issued
    bought = _order_using("h1", "176.00", after, {"code": code.lower(), "amount": "24.00"})
    sim = run(TREATED, cart("h1", "310"), bought)
    (recovery,) = sim.recoveries
    assert recovery["discount_codes_used"] == [code], "matched whatever the case"
    assert recovery["discounts_redeemed"] == [{"code": code, "amount": "24.00"}]
    assert Decimal(recovery["discount"]) == Decimal("24.00")
    assert Decimal(recovery["discount_issued_cost"]) == Decimal("37.20")
    margin = Decimal("176.00") * TREATED.defaults.margin.gross_margin - Decimal("24.00")
    assert Decimal(recovery["margin"]) == margin.quantize(Decimal("0.01"))
    assert recovery["other_discount_codes"] == [] and Decimal(recovery["other_discount"]) == 0


def test_a_code_the_plan_did_not_issue_is_recorded_apart_and_not_charged():
    touch = _issued(TREATED, "h1", "310")
    code = touch["incentive"]["code"]
    after = to_epoch(touch["due_at"], "due_at") + HOUR
    bought = _order_using(
        "h1", "270.00", after, {"code": code, "amount": "33.00"}, {"code": "vip5", "amount": "7"}
    )
    (recovery,) = run(TREATED, cart("h1", "310"), bought).recoveries
    assert Decimal(recovery["discount"]) == Decimal("33.00")
    assert recovery["other_discount_codes"] == ["VIP5"]
    assert Decimal(recovery["other_discount"]) == Decimal("7")
    # an order with only the store's own code, before ours went out, charges nothing
    early = _order_using("h1", "300.00", T0 + 2 * HOUR, {"code": "VIP5", "amount": "10.00"})
    (first,) = run(TREATED, cart("h1", "310"), early).recoveries
    assert (first["discount"], first["discount_codes_used"]) == ("0", [])
    assert first["other_discount_codes"] == ["VIP5"] and first["other_discount"] == "10.00"


def test_a_holdout_cart_has_none_of_our_codes_so_nothing_is_charged():
    policies = _all_holdout()
    sim = run(policies, cart("h1", "310"))
    assert sim.touches == [], "a control cart gets no touch, so no code"
    guessed = _order_using("h1", "310", T0 + 3 * DAY, {"code": "ANYTHING", "amount": "37.20"})
    (recovery,) = run(policies, cart("h1", "310"), guessed).recoveries
    assert recovery["holdout"] is True
    assert (recovery["discount"], recovery["discount_issued_cost"]) == ("0", "0")
    assert recovery["other_discount"] == "37.20"


def test_an_order_outside_the_attribution_window_is_no_recovery():
    touch = _issued(TREATED, "h1", "310")
    code = touch["incentive"]["code"]
    late = _order_using("h9", "90", T0 + 30 * DAY, {"code": code, "amount": "10.80"})
    late["contact"] = cart("h1", "310")["contact"]  # the same shopper, another checkout
    sim = run(TREATED, cart("h1", "310"), late)
    assert sim.recoveries == []


def _last_plan(codes: dict[str, str]) -> ShopperState:
    last = EndedPlan(ck="c1", cy=1, end=T0, why="completed", band="mid", seg="new",
                     sent=[1, 2], codes=list(codes), cc=codes)  # fmt: skip
    return ShopperState(pt=0, seq=1, pr=StoredProfile(), lp=last)


def test_stage_b_attribution_with_a_code_whose_amount_is_unknown():
    state = _last_plan({"ABC": "9.00", "XYZ": "4.00"})
    record = {
        "type": "cart_converted", "store": "s", "shopper": "s:sh", "checkout": "c1",
        "occurred_at": "2026-11-03T15:00:00Z", "currency": "USD", "total": "81.00",
        "discounts": [{"code": "abc"}, {"code": "Xyz", "amount": "3.50"}],
    }  # fmt: skip
    _, out = apply_converted(state, "s:sh", shopper_event(record), 0, TREATED.defaults)
    (recovery,) = out.recoveries
    assert recovery["discounts_redeemed"] == [
        {"code": "ABC", "amount": "9.00", "estimated": True},
        {"code": "XYZ", "amount": "3.50"},
    ]
    assert (recovery["discount"], recovery["discount_issued_cost"]) == ("12.50", "13.00")
    bad = {**record, "checkout": "c2", "discounts": [{"code": "ABC", "amount": "-1"}]}
    with pytest.raises(BadEvent, match=r"discounts\[0\]\.amount"):
        apply_converted(state, "s:sh", shopper_event(bad), 0, TREATED.defaults)


def test_order_discounts_normalise_merge_and_refuse_what_the_core_cannot_take():
    assert normal_code("  welcome10 ") == "WELCOME10"
    event = {
        "discounts": [{"code": "a1", "amount": "1.50"}, {"code": "A1", "amount": "2"}],
        "discount_codes": ["b2", "A1"],
    }
    assert order_discounts(event) == [{"code": "A1", "amount": "3.50"}, {"code": "B2"}]
    for broken, where in [
        ({"discounts": {"code": "A"}}, "discounts"),
        ({"discounts": ["A"]}, r"discounts\[0\]"),
        ({"discounts": [{"code": ""}]}, r"discounts\[0\]\.code"),
        ({"discounts": [{"code": "A", "amount": "1e999"}]}, r"discounts\[0\]\.amount"),
        ({"discounts": [{"code": "A", "amount": 0.5}]}, r"discounts\[0\]\.amount"),
        ({"discount_codes": [7]}, r"discount_codes\[0\]"),
        ({"discounts": [{"code": f"C{n}"} for n in range(51)]}, "discounts"),
    ]:
        with pytest.raises(BadDiscount, match=where):
            order_discounts(broken)
    spent = attribute([{"code": "Q", "amount": "2"}], ["q"], {"q": "5"})
    assert (spent["discount"], spent["discount_codes_used"]) == ("2", ["Q"])


def test_stage_a_forwards_normalised_discounts_and_refuses_bad_ones():
    policy = TREATED.defaults
    state, _ = apply_event(None, cart("c1", "120"), 0, policy)
    used = {**order("c1", "108", T0 + HOUR), "discounts": [{"code": "ab c", "amount": "12.00"}]}
    used["discount_codes"] = ["legacy"]
    _, effects = apply_event(state, used, 0, policy)
    (converted,) = [e for e in effects if e.kind == "converted"]
    assert converted.record is not None
    assert converted.record.discounts == [
        {"code": "AB C", "amount": "12.00"},
        {"code": "LEGACY"},
    ]
    assert converted.record.discount_codes == ["AB C", "LEGACY"]
    broken = {**used, "discounts": [{"code": "X", "amount": "twelve"}]}
    with pytest.raises(BadEvent, match=r"discounts\[0\]\.amount"):
        validate(broken)


def test_the_canonical_order_record_carries_discounts_as_decimal_strings():
    import jsonschema

    from schemas.codec import loads
    from schemas.jsonschema import record_schema
    from schemas.records import CartCompleted

    wire = {
        **order("c1", "90.00", T0),
        "discounts": [{"code": "BACK10", "amount": "10.00"}, {"code": "FREESHIP"}],
    }
    record = CartCompleted.from_data(wire)
    assert record.discounts[0].amount == Decimal("10.00")
    back = loads(record.dumps())
    jsonschema.Draft202012Validator(record_schema(CartCompleted)).validate(back)
    assert back["discounts"][0] == {"code": "BACK10", "amount": "10.00"}
    assert back["discounts"][1]["code"] == "FREESHIP" and back["discounts"][1]["amount"] is None
    assert order_discounts(back) == [{"code": "BACK10", "amount": "10.00"}, {"code": "FREESHIP"}]
    invalid = {**back, "discounts": [{"code": "X", "amount": 10.5}]}
    assert not jsonschema.Draft202012Validator(record_schema(CartCompleted)).is_valid(invalid)
