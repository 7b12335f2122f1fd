"""Stage B's state of one shopper (key ``store:shopper``), and its stored form.

A table holds the object; its changelog holds it as JSON with these short keys (defaults left
out), read back as a dict on a restore and taken again by :func:`stored_shopper`::

    pt  partition      seq  timer sequence      nd  next due (epoch s) or None
    pr  the profile (:class:`StoredProfile`)
    pl  the active plan's inputs (:class:`PlanInputs`), or None
    lp  the last ended plan, for attribution (:class:`EndedPlan`), or None
    ak  the abandonments taken in ``(checkout, cycle, abandoned_at)`` (planned, kept out or
        ended), within HISTORY_WINDOW and at most MAX_ABANDONMENTS; af the newest one of those
        dropped: a record at or before it is too old to tell from a repeat, and is ignored
    rd  redacted at (epoch s): everything personal from before it is gone, and a record of
        what was given before it is ignored (kept once activity starts anew)
    q   records held until the partition's watermark passes them (recovery.shopper_holds), in
        order, as stage B read them (schemas.shopper_events); qd the time of the first

A transition never changes a state it was given: it copies what it changes (:func:`copied`,
one level at a time), so a state a table still holds, or a snapshot a test kept, stays as it
was. The structs form no cycles (each part is held by one parent), so they stay out of the
cyclic collector (``gc=False``).
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from schemas.shopper_events import AnyShopperEvent, BadShopperEvent, read_shopper_event

_CONVERT = msgspec.convert
_BUILTINS = msgspec.to_builtins
_COPY = msgspec.structs.replace


class StoredProfile(msgspec.Struct, omit_defaults=True, gc=False):
    """What stage B knows of the shopper: plans and decisions read it.

    ``oc`` orders, ``ltv`` lifetime value (a decimal string), ``lo`` the last order (epoch s),
    ``ec``/``sc`` the email/SMS consents (None: unknown), ``sup`` suppressed channels, ``sn``
    suppressed SMS numbers (E.164), ``ab`` recent abandonment times, ``se`` recent sends
    ``(channel, at)``, ``cv`` checkouts whose order was counted (the last MAX_CONVERTED: an
    order stage A sends again after a crash is not counted twice), ``dc`` orders that used a
    discount code (price sensitivity)."""

    oc: int = 0
    ltv: str = "0"
    lo: float | None = None
    ec: bool | None = None
    sc: bool | None = None
    sup: list[str] = []
    sn: list[str] = []
    ab: list[float] = []
    se: list[tuple[str, float]] = []
    cv: list[str] = []
    dc: int = 0


class PlanningProfile(msgspec.Struct, omit_defaults=True, gc=False):
    """The profile as it was when the plan was made: orders, lifetime value, discount orders
    and the abandonments before this one (the plan is derived from these again)."""

    oc: int = 0
    ltv: str = "0"
    dc: int = 0
    ab: list[float] = []


class PlanInputs(msgspec.Struct, omit_defaults=True, gc=False):
    """The active plan's inputs: the plan is derived from them again (recovery.shopper_plan).

    ``ck`` checkout, ``cy`` cycle, ``at`` abandoned at (epoch s), ``c`` the cart
    (recovery.stored_cart form), ``pp`` the profile at planning time, ``done`` each decided
    step's outcome, ``due`` deferred steps' times, ``codes`` discount codes sent, ``cc`` each
    code's incentive cost (a decimal string)."""

    ck: str
    cy: int
    at: float
    c: Any
    pp: PlanningProfile = msgspec.field(default_factory=PlanningProfile)
    done: dict[str, str] = {}
    due: dict[str, float] = {}
    codes: list[str] = []
    cc: dict[str, str] = {}


class EndedPlan(msgspec.Struct, omit_defaults=True, gc=False):
    """The last plan that ended, for attribution: ``ck``, ``cy``, ``end`` (epoch s) and ``why``;
    when it could still be derived, its ``band``, segment (``seg``), holdout (``ho``), the steps
    ``sent``, the ``codes`` and their costs (``cc``); ``attributed`` once its own cart's order
    was attributed to it."""

    ck: str
    cy: int
    end: float
    why: str
    band: str | None = None
    seg: str | None = None
    ho: bool = False
    sent: list[int] = []
    codes: list[str] = []
    cc: dict[str, str] = {}
    attributed: bool = False


class ShopperState(msgspec.Struct, omit_defaults=True, gc=False):
    pt: int = -1
    seq: int = 0
    nd: float | None = None
    pr: StoredProfile | None = None
    pl: PlanInputs | None = None
    lp: EndedPlan | None = None
    ak: list[tuple[str, int, float]] = []
    af: float | None = None
    rd: float | None = None
    q: list[AnyShopperEvent] = []
    qd: float | None = None

    def __json__(self) -> dict[str, Any]:
        """The JSON form Faust's codec writes (a RocksDB store encodes the table's values)."""
        found: dict[str, Any] = _BUILTINS(self)
        return found


Part = TypeVar("Part", ShopperState, StoredProfile, PlanInputs, EndedPlan)


def copied(part: Part) -> Part:
    """A copy of ``part`` whose fields a transition may set; the containers in them are shared
    and must be replaced, never changed in place."""
    return _COPY(part)


def stored_shopper(stored: Any) -> ShopperState | None:
    """A state as a table holds it: the object, or the dict a changelog restore gives. A held
    record the shopper-events schema no longer takes is dropped rather than the shopper, as
    stage A drops a snapshot it no longer takes: the shopper's other records and its plan go
    on."""
    if stored is None or type(stored) is ShopperState:
        return stored
    try:
        state: ShopperState = _CONVERT(stored, ShopperState)
    except msgspec.ValidationError:
        held = stored.get("q") if isinstance(stored, dict) else None
        if not isinstance(held, list):
            raise
        kept = [(record, read) for record in held if (read := _read(record)) is not None]
        first = kept[0][1].sk if kept else None
        due = first[0] if first is not None else (stored.get("qd") if kept else None)
        state = _CONVERT({**stored, "q": [record for record, _ in kept], "qd": due}, ShopperState)
    return state


def _read(record: Any) -> AnyShopperEvent | None:
    try:
        return read_shopper_event(record)
    except BadShopperEvent:
        return None
