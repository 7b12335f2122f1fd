"""Invariant 6: a redaction removes the shopper's personal data from state and future messages."""

from __future__ import annotations

from config.policyfile import load_policy
from recovery.ids import shopper_key
from recovery.simulate import Simulation
from schemas.codec import dumps
from streams.app import code_secret
from tests.pipeline.helpers import T0, cart, iso

HOUR = 3600.0
STORE = "forget"


def simulation() -> Simulation:
    sim = Simulation(load_policy(), code_secret)
    # Ann: one cart that will be abandoned, one still open (never abandoned yet).
    sim.event(cart("ann-1", "310", T0, store=STORE, customer="ann"))
    sim.event(cart("bob-1", "120", T0, store=STORE, customer="bob"))
    sim.event(cart("other-1", "120", T0, store="elsewhere", customer="ann"))
    sim.tick(T0 + 2 * HOUR)  # abandoned; Ann's first email has gone out
    sim.event(cart("ann-2", "80", T0 + 2 * HOUR, store=STORE, customer="ann"))
    return sim


def state_text(sim: Simulation) -> str:
    return dumps({"carts": sim.carts, "shoppers": sim.shoppers}).decode()


def test_a_shopper_redaction_erases_every_checkout_and_stops_the_sequence() -> None:
    sim = simulation()
    ann = shopper_key(STORE, "ann")
    assert ann is not None
    assert "ann@example.com" in state_text(sim)
    sent_before = len(sim.touches)
    redaction = {"type": "shopper_redacted", "store": STORE, "occurred_at": iso(T0 + 3 * HOUR)}
    sim.shopper_events([redaction], ann)
    # at once, including the open cart that was never abandoned
    text = dumps({k: v for k, v in sim.carts.items() if k.startswith(STORE)}).decode()
    assert "ann@example.com" not in text
    sim.tick(T0 + 10 * 24 * HOUR)
    assert "ann@example.com" not in dumps(sim.shoppers.get(ann)).decode()
    later = [t for t in sim.touches[sent_before:] if t["shopper"] == ann]
    # only the audience removal of a shopper who was added to one may follow
    assert all(t["template"] == "audience_remove" for t in later), later
    # Bob, and Ann's identity at another store, are untouched.
    assert any(t["shopper"] == shopper_key(STORE, "bob") for t in sim.touches[sent_before:])
    assert "elsewhere:" in "".join(sim.carts)


def test_a_store_redaction_erases_the_store_and_nothing_else() -> None:
    sim = simulation()
    sent_before = len(sim.touches)
    sim.event({"type": "store_redacted", "store": STORE, "occurred_at": iso(T0 + 3 * HOUR)})
    assert not [k for k in [*sim.carts, *sim.shoppers] if k.startswith(f"{STORE}:")]
    assert [k for k in sim.carts if k.startswith("elsewhere:")]
    sim.tick(T0 + 10 * 24 * HOUR)
    assert not [t for t in sim.touches[sent_before:] if t["store"] == STORE]


def test_an_audience_removal_is_due_when_the_plan_ended(tmp_path) -> None:
    from config.policyfile import DEFAULT_POLICY
    from tests.pipeline.helpers import order, without_holdout

    sim = Simulation(load_policy(without_holdout(DEFAULT_POLICY, tmp_path / "p.yaml")), code_secret)
    sim.event(cart("vip-1", "900", T0, store=STORE, customer="vic"))
    sim.tick(T0 + 30 * HOUR)
    assert [t for t in sim.touches if t["channel"] == "ads"], sim.touches  # in an audience
    sent = len(sim.touches)
    sim.event(order("vip-1", "900", T0 + 31 * HOUR, store=STORE, customer="vic"))
    sim.tick(T0 + 32 * HOUR)  # stage B applies the order once its watermark passes it
    removals = [t for t in sim.touches[sent:] if t["template"] == "audience_remove"]
    assert removals and {t["due_at"] for t in removals} == {iso(T0 + 31 * HOUR)}
