"""The demo store's month for ``cartbands run``: seed 000's worked example as traffic.

The store model (:mod:`recovery.storemodel`, its defaults) gives a month of abandoned carts;
the shoppers who come back are the ones the response model (``policies/response.yaml``) says
would, answering the touches the core emits under the run's own policy
(:func:`recovery.whatif.run`). Carts and orders together are the events the run posts through
the gateway. Seeded: the same month, orders and codes on every run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from recovery.policyset import PolicySet
from recovery.response import ResponseModel
from recovery.storemodel import StoreModel, generate
from recovery.whatif import run

DEMO_START = datetime(2026, 11, 1, tzinfo=UTC)
DEMO_SEED = 0


def demo_month(
    policies: PolicySet,
    response: ResponseModel,
    secret: Callable[[str], bytes],
    seed: int = DEMO_SEED,
    model: StoreModel | None = None,
) -> tuple[list[tuple[float, dict[str, Any]]], list[dict[str, Any]]]:
    """The month's carts ``(epoch, cart_updated)`` and the orders its shoppers place."""
    traffic = generate(model or StoreModel(), seed, 1, DEMO_START)
    outcome = run(policies, traffic, response, seed, secret)
    return traffic, outcome.orders


def comparison_lines(policies: PolicySet, response: ResponseModel, seed: int = DEMO_SEED) -> str:
    """``cartbands simulate``'s table, flat baseline vs ``policies``, on the demo month."""
    from cartbands.simulate import FLAT_POLICY, SECRET, render
    from config.policyfile import load_policy
    from recovery.whatif import with_margin

    model = StoreModel()
    traffic = generate(model, seed, 1, DEMO_START)
    sets = [with_margin(p, model.gross_margin) for p in (load_policy(FLAT_POLICY), policies)]
    runs = (
        run(sets[0], traffic, response, seed, lambda _store: SECRET),
        run(sets[1], traffic, response, seed, lambda _store: SECRET),
    )
    bands = [(band.name, band.min) for band in sets[1].defaults.bands]
    text, _data = render(("flat", "tiered"), runs, bands, sets[1].defaults.currency)
    return (
        f"what if (cartbands simulate): the same month, {len(traffic)} abandoned carts, seed "
        f"{seed}, gross margin {model.gross_margin}, flat = {FLAT_POLICY.name}, tiered = the "
        f"run's policy\n{text}"
    )
