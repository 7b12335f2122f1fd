"""Stage B's transitions: one shopper's state changed by a record or by time, pure.

The state is a :class:`recovery.shopper_state.ShopperState`, stored in the ``shoppers`` table.
The plan itself is not stored: it is re-derived by :func:`recovery.plan.plan_recovery` from the
stored inputs (a pure function, so the same touches, ids and times every time), which keeps a
pending shopper well under 1 KiB (:mod:`recovery.shopper_plan`). Every transition here returns
``(new_state, outputs)`` and leaves the state it was given as it was; the profile and the
abandonments taken in are :mod:`recovery.shopper_profile`'s, what is read of a record
:mod:`recovery.shopper_records`'.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec

from recovery.checkouts import checkout_redaction, iso
from recovery.decide import choose_plan, consent_exit, decide_touch
from recovery.ids import phone_e164
from recovery.model import Cart, Decision, Plan, PlannedTouch
from recovery.plan import plan_recovery
from recovery.plan_records import plan_record, recovered_margin
from recovery.policy import StorePolicy
from recovery.redemption import attribute
from recovery.shopper_plan import (
    PLAN_CART_DROP,
    bump,
    cart_of,
    derive_plan,
    effective_due,
    plan_country,
    remember_plan,
)
from recovery.shopper_profile import (
    MAX_CONVERTED,
    decimal_amount,
    known_abandonment,
    merge_history,
    new_state,
    profile_of,
    prune_history,
    remember_abandonment,
    utc_datetime,
)
from recovery.shopper_records import abandonment_of, given_at, record_time, used_discounts
from recovery.shopper_state import (
    EndedPlan,
    PlanInputs,
    PlanningProfile,
    ShopperState,
    StoredProfile,
    copied,
)
from recovery.stored_cart import pack
from schemas.shopper_events import (
    AnyShopperEvent,
    CartAbandoned,
    CartConverted,
    CartLeft,
    ConsentChanged,
    ShopperRedacted,
)

# Exits after which a shopper is taken back out of retargeting audiences.
AUDIENCE_EXITS = frozenset({"converted", "unsubscribe", "redacted"})


@dataclass(frozen=True, slots=True)
class Emission:
    """A touch that goes out now: what was planned, what was decided, and when it was due."""

    touch: PlannedTouch
    plan: Plan
    cart: Cart
    decision: Decision
    due: float


@dataclass
class Outputs:
    """What a transition asks the shell to do."""

    touches: list[Emission] = field(default_factory=list)
    recoveries: list[dict[str, Any]] = field(default_factory=list)
    # ``plan`` records: one per cart given a plan, for the ledger (recovery.ledger); the shell
    # writes them to the ``recoveries`` topic beside the ``recovery`` records
    plans: list[dict[str, Any]] = field(default_factory=list)
    # records for cart-events that erase one checkout each (checkouts.checkout_redaction)
    redact_checkouts: list[dict[str, Any]] = field(default_factory=list)
    # plan, cart, why and at: the time the plan ended, the removal commands' due time
    audience_removals: list[dict[str, Any]] = field(default_factory=list)
    planned: list[Plan] = field(default_factory=list)  # plans of newly abandoned carts
    # records for every partition of cart-events (e.g. erase all of a shopper's checkouts)
    to_every_checkout_partition: list[dict[str, Any]] = field(default_factory=list)
    counts: list[tuple[str, str, str]] = field(default_factory=list)  # (what, reason, channel)
    # records that could not be applied, with the reason: the shell dead-letters them
    rejected: list[tuple[dict[str, Any], str]] = field(default_factory=list)

    def count(self, what: str, detail: str = "", channel: str = "") -> None:
        self.counts.append((what, detail, channel))


def _store(shopper: str) -> str:
    return shopper.partition(":")[0]


def _end_plan(
    state: ShopperState, shopper: str, policy: StorePolicy, why: str, at: float, out: Outputs
) -> None:
    pl = state.pl
    if pl is None:
        return
    derived = derive_plan(state, shopper, policy)
    summary = EndedPlan(ck=pl.ck, cy=pl.cy, end=at, why=why)
    if derived is not None:
        plan, _cart = derived
        sent = sorted(int(s) for s, o in pl.done.items() if o == "sent")
        summary.band = plan.band
        summary.seg = plan.segment
        summary.ho = plan.holdout
        summary.sent = sent
        summary.codes = list(pl.codes)
        summary.cc = dict(pl.cc)
        leaves_audience = why.split(":", 1)[0] in AUDIENCE_EXITS
        if leaves_audience and any(t.channel == "ads" and t.step in sent for t in plan.touches):
            out.audience_removals.append({"plan": plan, "cart": _cart, "why": why, "at": at})
    state.lp = summary
    state.pl = None
    out.count("plan_ended", why.split(":", 1)[0])


def _own(state: ShopperState | None, partition: int) -> ShopperState:
    """A copy of ``state`` (a new shopper's state if none) to change, on ``partition``."""
    st = copied(state) if state is not None else new_state(partition)
    st.pt = partition
    return st


def _own_profile(st: ShopperState) -> StoredProfile:
    """A copy of the shopper's profile to change, set in ``st`` (itself a copy)."""
    pr = copied(st.pr) if st.pr is not None else StoredProfile()
    st.pr = pr
    return pr


def apply_abandoned(
    state: ShopperState | None,
    shopper: str,
    record: CartAbandoned,
    partition: int,
    policy: StorePolicy,
) -> tuple[ShopperState, Outputs]:
    out = Outputs()
    at, checkout, cycle, cart_snapshot = abandonment_of(record)
    if state is not None and known_abandonment(state, checkout, cycle, at):
        # stage A sends again after a crash: a plan is its cart and abandonment, and one
        # taken in (active, ended or passed over) is never planned again (invariant 8)
        out.count("duplicate", "abandoned")
        return state, out
    st = _own(state, partition)
    if st.rd is not None and given_at(record) <= st.rd:
        # the cart was given before the redaction, whenever the tick that abandoned it came:
        # nothing derived from it goes out, and stage A forgets the checkout (invariant 6)
        out.count("ignored", "redacted")
        out.redact_checkouts.append(checkout_redaction(_store(shopper), checkout, st.rd))
        return st, out
    remember_abandonment(st, checkout, cycle, at)
    pr = _own_profile(st)
    contact = cart_snapshot.get("contact") or {}
    if pr.ec is None and "email_consent" in contact:
        pr.ec = bool(contact["email_consent"])
    if contact.get("sms_consent"):
        pr.sc = True if pr.sc is None else pr.sc
    merge_history(pr, cart_snapshot.get("customer"))
    pr.ab = [*pr.ab, at]
    prune_history(pr, at)
    candidate = PlanInputs(
        ck=checkout,
        cy=cycle,
        at=at,
        c=pack(cart_snapshot, drop=PLAN_CART_DROP),
        pp=PlanningProfile(oc=pr.oc, ltv=pr.ltv, dc=pr.dc, ab=pr.ab[:-1]),
    )
    new_cart = cart_of(cart_snapshot, shopper.partition(":")[0], checkout, at, cycle)
    new_plan = plan_recovery(
        profile_of(st, candidate.pp), new_cart, shopper, policy, utc_datetime(at), version=cycle
    )
    remember_plan(shopper, candidate, pr.lo, policy, (new_plan, new_cart))
    active = derive_plan(st, shopper, policy)
    if active is not None:
        chosen, why = choose_plan(active[0], new_plan, policy.caps.on_new_cart)
        if chosen is active[0]:
            out.count("plan_kept", why)
            out.plans.append(plan_record(new_plan, policy, kept=active[0]))
            return bump(st, shopper, policy), out
        _end_plan(st, shopper, policy, f"replaced: {why}", at, out)
    st.pl = candidate
    out.planned.append(new_plan)
    out.plans.append(plan_record(new_plan, policy))
    out.count("planned", new_plan.band)
    if new_plan.holdout:
        out.count("holdout", new_plan.band)
    if new_plan.rejected:
        out.count("rejected", new_plan.rejected.split(":", 1)[0])
    return bump(st, shopper, policy), out


def apply_converted(
    state: ShopperState | None,
    shopper: str,
    record: CartConverted,
    partition: int,
    policy: StorePolicy,
) -> tuple[ShopperState, Outputs]:
    """An order by the shopper: count it in the profile, end the plan, attribute it.

    Stage A sends one ``cart_converted`` per checkout, at least once: one it sends again
    (a crash between its records and its state) changes nothing here."""
    out = Outputs()
    checkout = record.checkout
    if state is not None and state.pr is not None and checkout in state.pr.cv:
        out.count("duplicate", "converted")
        return state, out
    used = used_discounts(record)
    st = _own(state, partition)
    at = record_time(record)
    pr = _own_profile(st)
    total = decimal_amount(record.total)
    pr.oc += 1
    if record.discount_codes:
        pr.dc += 1
    pr.ltv = str(decimal_amount(pr.ltv) + total)
    pr.lo = max(at, pr.lo or at)
    pr.cv = [*pr.cv, checkout][-MAX_CONVERTED:]
    pl = st.pl
    if pl is not None and (pl.ck == checkout or at >= pl.at):
        _end_plan(st, shopper, policy, "converted: order placed", at, out)
    last = st.lp
    window = policy.attribution_window.total_seconds()
    if last is not None and (last.ck == checkout or 0 <= at - last.end <= window):
        spent = attribute(used, last.codes, last.cc)
        discount = Decimal(spent["discount"])
        out.recoveries.append(
            {
                "type": "recovery",
                "store": record.store,
                "shopper": shopper,
                "checkout": last.ck,
                "cycle": last.cy,
                "order_checkout": checkout,
                "order_id": record.order_id,
                "band": last.band,
                "segment": last.seg,
                "holdout": last.ho,
                "touches_sent": last.sent,
                **spent,
                "revenue": str(total),
                "margin": str(recovered_margin(total, discount, policy)),
                "currency": record.currency,
                "occurred_at": iso(at),
                "same_cart": last.ck == checkout,
            }
        )
        if last.ck == checkout:
            st.lp = msgspec.structs.replace(last, attributed=True)
        out.count("converted", "holdout" if last.ho else "treated")
    return bump(st, shopper, policy), out


def apply_cart_left(
    state: ShopperState | None,
    shopper: str,
    record: CartLeft,
    partition: int,
    policy: StorePolicy,
    why: str,
) -> tuple[ShopperState | None, Outputs]:
    """The shopper came back to (or emptied) the planned cart: its plan ends."""
    out = Outputs()
    if state is None or state.pl is None or state.pl.ck != record.checkout:
        return state, out
    if record.cycle is not None and record.cycle != state.pl.cy:
        out.count("stale", record.kind)  # it left an earlier cycle's cart
        return state, out
    st = copied(state)
    _end_plan(st, shopper, policy, why, record_time(record), out)
    return bump(st, shopper, policy), out


def apply_consent(
    state: ShopperState | None,
    shopper: str,
    record: ConsentChanged,
    partition: int,
    policy: StorePolicy,
) -> tuple[ShopperState, Outputs]:
    out = Outputs()
    st = _own(state, partition)
    pr = _own_profile(st)
    channel = record.channel
    granted = record.granted
    suppressed = set(pr.sup)
    channels = ("email", "sms") if channel == "all" else (channel,)
    if granted:
        suppressed -= {channel, "all"} if channel != "all" else suppressed
    else:
        suppressed.add(channel)
    for ch in channels:
        if ch == "email":
            pr.ec = granted
        elif ch == "sms":
            pr.sc = granted
    pr.sup = sorted(suppressed)
    phone = record.phone
    if channel in ("sms", "all") and phone is not None and phone.strip():
        numbers = set(pr.sn)
        number = phone_e164(phone, plan_country(st))
        numbers = numbers - {number} if granted else numbers | {number}
        pr.sn = sorted(numbers)
    out.count("consent", f"{channel}:{'granted' if granted else 'withdrawn'}")
    why = consent_exit(channel, granted, record.source or "")
    if why is not None and st.pl is not None:
        at = record_time(record)
        _end_plan(st, shopper, policy, why, at, out)
    return bump(st, shopper, policy), out


def apply_redacted(
    state: ShopperState | None,
    shopper: str,
    record: ShopperRedacted,
    partition: int,
    policy: StorePolicy,
) -> tuple[ShopperState, Outputs]:
    """Erase everything personal; remember only when, so older cart events stay ignored."""
    out = Outputs()
    at = record_time(record)
    if state is not None and state.rd is not None and at <= state.rd:
        # a repeat: what was given before it is gone already, and what came since stays
        out.count("duplicate", "redacted")
        return state, out
    known: list[str] = []
    if state is not None:
        if state.pl is not None:
            known.append(state.pl.ck)
            # Ends the plan and takes the shopper out of any audience it added them to.
            _end_plan(copied(state), shopper, policy, "redacted: personal data erased", at, out)
        if state.lp is not None:
            known.append(state.lp.ck)
    store = _store(shopper)
    out.redact_checkouts.extend(checkout_redaction(store, checkout, at) for checkout in known)
    out.to_every_checkout_partition.append(
        {"type": "shopper_redacted", "store": store, "shopper": shopper, "occurred_at": iso(at)}
    )
    out.count("redacted")
    seq = state.seq if state is not None else 0
    return ShopperState(pt=partition, seq=seq + 1, rd=at), out


def apply_due(
    state: ShopperState, shopper: str, now: float, policy: StorePolicy, secret: bytes
) -> tuple[ShopperState, Outputs]:
    """Time has reached ``now``: decide every touch due by then, in due order.

    Each touch is decided at its own due time (not the tick's), so the decisions and the
    emitted times do not depend on how often ticks come.
    """
    out = Outputs()
    derived = derive_plan(state, shopper, policy)
    if derived is None or state.pl is None:
        return state, out
    plan, cart = derived
    st = copied(state)
    pl = copied(state.pl)
    pl.done = dict(pl.done)
    pl.due = dict(pl.due)
    st.pl = pl
    pr = _own_profile(st)
    if plan.holdout or plan.rejected:
        for t in plan.touches:
            pl.done[str(t.step)] = "control" if plan.holdout else "rejected"
    for _ in range(4 * max(1, len(plan.touches)) + 8):
        pending = [
            (effective_due(pl, t), t.step, t) for t in plan.touches if str(t.step) not in pl.done
        ]
        if not pending:
            break
        due, _step, touch = min(pending, key=lambda p: (p[0], p[1]))
        if due > now:
            break
        profile = profile_of(st)
        decision = decide_touch(plan, touch, profile, cart, policy, utc_datetime(due), secret)
        if decision.action == "send":
            pl.done[str(touch.step)] = "sent"
            pr.se = [*pr.se, (touch.channel, due)]
            if decision.code:
                pl.codes = [*pl.codes, decision.code]
                cost = touch.incentive_cost if touch.incentive_cost is not None else Decimal(0)
                pl.cc = {**pl.cc, decision.code: str(cost)}
            out.touches.append(Emission(touch, plan, cart, decision, due))
            out.count("emitted", touch.channel)
        elif (
            decision.action == "defer" and decision.at is not None and decision.at.timestamp() > due
        ):
            pl.due[str(touch.step)] = decision.at.timestamp()
            out.count("deferred", decision.key, touch.channel)
        else:
            pl.done[str(touch.step)] = "skip"
            out.count("suppressed", decision.key, touch.channel)
    prune_history(pr, now)
    if all(str(t.step) in pl.done for t in plan.touches):
        _end_plan(st, shopper, policy, "completed: sequence finished", now, out)
    return bump(st, shopper, policy), out


CART_LEFT = {
    "cart_reopened": "returned: shopper came back",
    "cart_emptied": "emptied: cart emptied",
}


def apply_record(
    state: ShopperState | None,
    shopper: str,
    record: AnyShopperEvent,
    partition: int,
    policy: StorePolicy,
) -> tuple[ShopperState | None, Outputs]:
    """One ``shopper-events`` record (not a tick), read already, through its transition."""
    if isinstance(record, CartAbandoned):
        return apply_abandoned(state, shopper, record, partition, policy)
    if isinstance(record, CartConverted):
        return apply_converted(state, shopper, record, partition, policy)
    if isinstance(record, ConsentChanged):
        return apply_consent(state, shopper, record, partition, policy)
    if isinstance(record, ShopperRedacted):
        return apply_redacted(state, shopper, record, partition, policy)
    return apply_cart_left(state, shopper, record, partition, policy, CART_LEFT[record.kind])
