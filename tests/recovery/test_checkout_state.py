"""Stage A's state: a window changes its own object, never the one a table holds."""

from __future__ import annotations

import orjson

from config.policyfile import load_policy
from recovery import checkouts as a
from recovery.checkout_state import CheckoutState, own_state
from schemas.codec import dumps
from tests.pipeline.helpers import T0, cart

POLICY = load_policy().defaults


def test_a_window_changes_its_own_copy_not_the_table_s_object() -> None:
    held, _ = a.apply_event(None, cart("c1", "120"), 0, POLICY)
    before = dumps(held)
    mine = own_state(held)
    a.apply_event(mine, cart("c1", "130", T0 + 60), 0, POLICY)
    assert dumps(held) == before
    assert mine.ids != held.ids and mine.seq == held.seq + 1


def test_a_state_restored_from_its_changelog_reads_back_equal() -> None:
    state, _ = a.apply_event(None, cart("c1", "120"), 0, POLICY)
    restored = own_state(orjson.loads(dumps(state)))
    assert restored == state and dumps(restored) == dumps(state)


def test_a_stored_snapshot_the_schema_refuses_drops_the_cart_not_the_checkout() -> None:
    state, _ = a.apply_event(None, cart("c1", "120"), 0, POLICY)
    stored = orjson.loads(dumps(state))
    stored["c"]["line_items"] = "not a list"
    restored = own_state(stored)
    assert restored.c is None
    assert (restored.st, restored.dl, restored.ids) == (state.st, state.dl, state.ids)


def test_a_dict_state_of_an_older_form_is_read() -> None:
    older = {"pt": 2, "st": "open", "u": 10, "ids": ["e1"], "cy": 0, "dl": None, "seq": 3}
    state = own_state(older)
    assert isinstance(state, CheckoutState)
    assert (state.pt, state.u, state.ids, state.seq, state.dl) == (2, 10.0, ["e1"], 3, None)
