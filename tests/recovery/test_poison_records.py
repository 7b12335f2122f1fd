"""Invariant 5 in the core: a record it cannot take (replays and other producers reach
cart-events and shopper-events directly) is refused with its reason, and the shopper's later
records still work; one never raises in a plan later or leaves a shopper stuck."""

from __future__ import annotations

from decimal import Decimal

import pytest

from config.policyfile import load_policy
from recovery import checkouts as stage_a
from recovery import shopper_holds as holding
from recovery import shoppers as stage_b
from recovery.checkouts import BadEvent
from recovery.ids import shopper_key
from recovery.money import MoneyError, bounded_amount
from recovery.shopper_records import shopper_event
from recovery.simulate import Simulation
from streams.app import code_secret
from tests.pipeline.helpers import T0, cart, iso

HOUR = 3600.0
DAY = 86400.0
STORE = "poison"
POISON = ["1e400", "9" * 30, "1" * 5000, "-1e20", "0.0000001", "1e-400"]


@pytest.mark.parametrize("value", ["310.00", "0", "999999999999999.99", "1.5000000000", 12])
def test_amounts_the_core_takes(value) -> None:
    assert bounded_amount(value) == Decimal(str(value))


@pytest.mark.parametrize("value", POISON)
def test_amounts_the_core_refuses(value) -> None:
    with pytest.raises(MoneyError):
        bounded_amount(value)


@pytest.mark.parametrize("value", POISON)
def test_stage_a_refuses_a_poison_total_naming_it(value) -> None:
    with pytest.raises(BadEvent, match=r"^total: "):
        stage_a.validate(cart("x-1", value, store=STORE))


@pytest.mark.parametrize(
    ("field", "value"),
    [("price", "1e400"), ("cost", "9" * 30), ("quantity", "²"), ("quantity", "1" * 5000),
     ("quantity", -1), ("quantity", 2.5)],
)  # fmt: skip
def test_stage_b_refuses_an_abandoned_cart_with_a_poison_line_item(field, value) -> None:
    event = cart("x-2", "10", store=STORE, customer="eve")
    event["line_items"] = [{"title": "a", "quantity": 1, "price": "10", field: value}]
    policy = load_policy().for_store(STORE)
    state, _ = stage_a.apply_event(None, event, 0, policy)
    assert state is not None
    _, (effect,) = stage_a.apply_tick(state, f"{STORE}:x-2", T0 + 2 * HOUR)
    assert effect.key is not None and effect.record is not None
    with pytest.raises(BadEvent, match=rf"^cart\.line_items\[0\]\.{field}: "):
        stage_b.apply_record(None, effect.key, effect.record, 0, policy)


def test_stage_a_refuses_a_line_item_field_of_the_wrong_type_naming_it() -> None:
    event = cart("x-3", "10", store=STORE, customer="eve")
    event["line_items"] = [{"title": "a", "quantity": True, "price": "10"}]
    with pytest.raises(BadEvent, match=r"^line_items\[0\]\.quantity: expected .*, got bool$"):
        stage_a.apply_event(None, event, 0, load_policy().for_store(STORE))


def test_stage_b_refuses_a_poison_order_history() -> None:
    event = {**cart("x-4", "10", store=STORE), "customer": {"orders_count": "²"}}
    with pytest.raises(BadEvent, match=r"^cart\.customer\.orders_count: "):
        holding.hold(
            None, shopper_event(poison_abandonment("s:x", "x-4", "10") | {"cart": event}), 0
        )


@pytest.mark.parametrize("value", [1e300, "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"])
def test_a_time_no_datetime_can_hold_is_refused(value) -> None:
    with pytest.raises(BadEvent, match=r"^occurred_at: "):
        stage_a.validate({**cart("x-3", "10", store=STORE), "occurred_at": value})


def test_poison_carts_are_refused_and_the_shopper_s_next_cart_gets_its_sequence() -> None:
    sim = Simulation(load_policy(), code_secret)
    for n, total in enumerate(POISON[:3]):
        sim.event(cart(f"x-p{n}", total, store=STORE, customer="ann"))
    sim.event(cart("x-good", "310.00", T0 + 60, store=STORE, customer="ann"))
    sim.tick(T0 + 2 * HOUR)
    sim.tick(T0 + 8 * DAY)
    assert [reason.split(":")[0] for _, reason in sim.rejected] == ["total"] * 3
    assert {t["cart"] for t in sim.touches} == {"x-good"} and len(sim.touches) >= 3


def poison_abandonment(shopper: str, checkout: str, total: str = "1e400") -> dict:
    return {
        "type": "cart_abandoned",
        "store": STORE,
        "shopper": shopper,
        "checkout": checkout,
        "cycle": 1,
        "abandoned_at": iso(T0 + HOUR),
        "cart": {**cart(checkout, total, store=STORE), "type": None},
        "sk": [T0 + HOUR, 0],
    }


def valid_abandonment(shopper: str, checkout: str) -> dict:
    return poison_abandonment(shopper, checkout, "310.00")


def test_stage_b_refuses_a_poison_abandonment_from_elsewhere_and_goes_on() -> None:
    policy = load_policy().for_store(STORE)
    shopper = shopper_key(STORE, "bo")
    assert shopper is not None
    bad = poison_abandonment(shopper, "x-b1")
    with pytest.raises(BadEvent, match=r"^cart\.total: "):
        stage_b.apply_record(None, shopper, shopper_event(bad), 0, policy)
    with pytest.raises(BadEvent, match=r"^cart\.total: "):
        holding.hold(None, shopper_event(bad), 0)  # never held, to block the records after it
    sim = Simulation(load_policy(), code_secret)
    sim.shopper_events([bad], shopper)
    sim.event(cart("x-b2", "310.00", T0 + 60, store=STORE, customer="bo"))
    sim.tick(T0 + 8 * DAY)
    assert [reason.split(":")[0] for _, reason in sim.rejected] == ["cart.total"]
    assert {t["cart"] for t in sim.touches} == {"x-b2"}


@pytest.mark.skipif(
    not str(holding.__file__).endswith(".py"),
    reason="a compiled core calls its own functions: a patched module global never reaches them",
)
def test_a_held_record_that_fails_is_rejected_and_the_others_are_applied(monkeypatch) -> None:
    """A last resort for a bug: the record goes to the shell to dead-letter, with the reason."""
    policy = load_policy().for_store(STORE)
    shopper = shopper_key(STORE, "cy")
    assert shopper is not None
    applied = stage_b.apply_record

    def failing(state, key, record, partition, policy):  # type: ignore[no-untyped-def]
        if record.checkout == "x-c1":
            raise ArithmeticError("a bug")
        return applied(state, key, record, partition, policy)

    monkeypatch.setattr(holding, "apply_record", failing)
    first, good = (valid_abandonment(shopper, checkout) for checkout in ("x-c1", "x-c2"))
    held = holding.hold(
        holding.hold(None, shopper_event(first), 0),
        shopper_event({**good, "sk": [T0 + HOUR, 1]}),
        0,
    )
    state, outs = holding.release(held, shopper, T0 + 2 * HOUR, 0, policy)
    assert [(r["checkout"], why) for o in outs for r, why in o.rejected] == [
        ("x-c1", "internal error: ArithmeticError: a bug")
    ]
    assert state is not None and state.pl.ck == "x-c2" and not state.q
