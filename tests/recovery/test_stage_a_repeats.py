"""Stage A re-opens an abandoned checkout only on an update that is newer: a platform that
delivers the same body again under a new webhook id must not start a second plan."""

from __future__ import annotations

from config.policyfile import load_policy
from recovery import checkouts as a
from tests.pipeline.helpers import T0, cart

POLICY = load_policy().defaults
HOUR = 3600.0
KEY = "pipe:s1"


def abandoned_checkout() -> dict:
    state, _ = a.apply_event(None, cart("s1", "310", event_id="w-1"), 0, POLICY)
    assert state is not None
    state, (effect,) = a.apply_tick(state, KEY, T0 + HOUR)
    assert state is not None and effect.kind == "abandoned"
    return state


def test_the_same_body_under_a_new_webhook_id_does_not_reopen():
    state = abandoned_checkout()
    again, effects = a.apply_event(state, cart("s1", "310", event_id="w-2"), 0, POLICY)
    assert again is not None and again.st == "abandoned" and a.next_due(again) == state.fa
    assert [e.kind for e in effects] in (["stale"], ["duplicate"])
    _, later = a.apply_tick(again, KEY, T0 + 3 * HOUR)
    assert not [e for e in later if e.kind == "abandoned"]


def test_an_update_at_the_same_time_does_not_reopen():
    state = abandoned_checkout()
    changed = cart("s1", "320", event_id="w-3")  # same updated_at, other content
    again, effects = a.apply_event(state, changed, 0, POLICY)
    assert again is not None and again.st == "abandoned"
    assert [e.kind for e in effects] == ["stale"]


def test_the_same_content_later_does_not_reopen():
    state = abandoned_checkout()
    again, effects = a.apply_event(state, cart("s1", "310", T0 + 2 * HOUR, event_id="w-4"), 0,
                                   POLICY)  # fmt: skip
    assert again is not None and again.st == "abandoned"
    assert [e.kind for e in effects] == ["duplicate"]


def test_a_newer_change_reopens_as_before():
    state = abandoned_checkout()
    again, effects = a.apply_event(state, cart("s1", "330", T0 + 2 * HOUR, event_id="w-5"), 0,
                                   POLICY)  # fmt: skip
    assert again is not None and again.st == "open"
    assert [e.kind for e in effects] == ["reopened"]


def test_through_the_simulator_the_shopper_gets_one_plan(tmp_path) -> None:
    from config.policyfile import DEFAULT_POLICY
    from recovery.simulate import Simulation
    from streams.app import code_secret
    from tests.pipeline.helpers import without_holdout

    policies = load_policy(without_holdout(DEFAULT_POLICY, tmp_path / "policy.yaml"))

    def run(*repeats: dict) -> list[tuple[str, int, int]]:
        sim = Simulation(policies, code_secret)
        sim.event(cart("s2", "310", event_id="w-1"))
        sim.tick(T0 + 2 * HOUR)
        for event in repeats:
            sim.event(event)
        sim.tick(T0 + 10 * 24 * HOUR)
        return sorted((t["touch_id"], t["plan_version"], t["step"]) for t in sim.touches)

    once = run()
    assert once
    assert run(cart("s2", "310", event_id="w-2"), cart("s2", "310", T0 + 3 * HOUR)) == once
