"""What became of one abandoned cart: the row the ledger, the report and the simulator share.

Every abandoned cart that got a plan ends in exactly one outcome, in its group (``treated``: it
got the plan's touches; ``holdout``: kept as a control, no touches): ``recovered`` (an order
within the attribution window after the plan ended, or while it ran), ``ordered_later`` (an
order after the window), ``not_recovered`` (no order, and the window has passed) or ``open``
(the window has not passed yet: counted nowhere until it does). A cart abandoned while its
shopper's plan for another cart stays in force (one sequence per shopper) is ``passed_over``:
it appears once, but its shopper's touches and any order count in the plan that was kept, so
it is left out of recovery rates. Money is in the store's currency, exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal

Group = Literal["treated", "holdout"]
Outcome = Literal["recovered", "ordered_later", "not_recovered", "open", "passed_over"]
GROUPS: tuple[Group, ...] = ("treated", "holdout")
OUTCOMES: tuple[Outcome, ...] = (
    "recovered",
    "ordered_later",
    "not_recovered",
    "open",
    "passed_over",
)
# outcomes that are not a decided recovery attempt: left out of rates, lift and spend
UNDECIDED: frozenset[Outcome] = frozenset({"open", "passed_over"})
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class CartOutcome:
    """One abandoned cart's plan and what came of it.

    ``value``: the banded cart value. ``revenue``/``margin``: the recovering order's revenue and
    net margin (gross margin less the discount redeemed), zero unless ``recovered``.
    ``discount``: what the plan's own codes took off the order (redeemed, not issued).
    ``costs``: per channel, what the delivered touches of the plan cost. ``last_channel`` and
    ``last_step``: the touch delivered last before the order, when recovered after one.
    """

    store: str
    checkout: str
    band: str
    segment: str
    group: Group
    currency: str
    value: Decimal
    abandoned_at: datetime
    outcome: Outcome
    revenue: Decimal = ZERO
    margin: Decimal = ZERO
    discount: Decimal = ZERO
    costs: dict[str, Decimal] = field(default_factory=dict)
    last_channel: str | None = None
    last_step: int | None = None
    cycle: int = 1  # with store and checkout, the abandonment this is the outcome of

    @property
    def spend(self) -> Decimal:
        """Recovery spend on this cart: the discount redeemed plus the channel costs."""
        return self.discount + sum(self.costs.values(), ZERO)
