"""Stage B decisions: one shopper's profile and active recovery plan, as pure transitions.

State is a compact dict stored in the ``shoppers`` table as-is::

    pt  partition      seq  timer sequence      nd  next due (epoch s) or None
    pr  profile: oc orders, ltv lifetime value, lo last order, ec/sc consents (None unknown),
        sup suppressed channels, sn suppressed SMS numbers (E.164), ab recent abandonment
        times, se recent sends [channel, ts], cv checkouts whose order was counted (the
        last MAX_CONVERTED: an order stage A sends again after a crash is not counted twice),
        dc orders that used a discount code (price sensitivity; absent when none)
    pl  active plan inputs: ck checkout, cy cycle, at abandoned_at, c cart (stored_cart form),
        pp profile at planning time (oc, ltv, ab, dc), done {step: outcome}, due {step:
        deferred ts},
        codes sent discount codes, cc {code: incentive cost}
    lp  the last ended plan, for attribution: ck, cy, band, seg, ho, sent [steps], codes, cc,
        end, why
    ak  the abandonments taken in [checkout, cycle, abandoned_at] (planned, kept out or
        ended), within HISTORY_WINDOW and at most MAX_ABANDONMENTS; af the newest one of those
        dropped: a record at or before it is too old to tell from a repeat, and is ignored
    rd  redacted at (epoch s): everything personal from before it is gone, and a record of
        what was given before it is ignored (kept once activity starts anew)
    q   records held until the partition's watermark passes them (recovery.shopper_holds), in
        order; qd the time of the first

The plan itself is not stored: it is re-derived by :func:`recovery.plan.plan_recovery` from the
stored inputs (a pure function, so the same touches, ids and times every time), which keeps a
pending shopper well under 1 KiB. Every function returns ``(new_state, outputs)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from recovery.checkouts import (
    BadEvent,
    check_amounts,
    checkout_redaction,
    epoch,
    iso,
)
from recovery.decide import choose_plan, consent_exit, decide_touch
from recovery.ids import phone_e164
from recovery.model import Cart, ContactInfo, Decision, Item, Plan, PlannedTouch, Profile
from recovery.money import bounded_amount
from recovery.plan import plan_recovery
from recovery.plan_cache import PlanCache
from recovery.plan_records import plan_record, recovered_margin
from recovery.policy import StorePolicy
from recovery.redemption import BadDiscount, attribute, order_discounts
from recovery.stored_cart import pack, unpack

State = dict[str, Any]
HISTORY_WINDOW = 90 * 86400  # abandonments kept for the hesitant segment
SENDS_WINDOW = 7 * 86400  # sends kept for caps and per-channel gaps
MAX_ABANDONMENTS = 20
MAX_CONVERTED = 8
# Exits after which a shopper is taken back out of retargeting audiences.
AUDIENCE_EXITS = frozenset({"converted", "unsubscribe", "redacted"})
# Snapshot fields a plan's cart does not keep: in the key and the plan already, or (the
# platform's order history) folded into the profile when the cart is abandoned.
PLAN_CART_DROP = frozenset({"store", "checkout", "occurred_at", "customer"})
# A plan depends on its stored inputs only (and the last order, read by the segment).
_plans = PlanCache()


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


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _dec(value: Any, default: str = "0") -> Decimal:
    try:
        return bounded_amount(value if value is not None else default)
    except ValueError:
        return Decimal(default)


def new_state(partition: int) -> State:
    return {"pt": partition, "seq": 0, "pr": {"oc": 0, "ltv": "0"}}


def profile_of(state: State, planning: dict[str, Any] | None = None) -> Profile:
    pr = state.get("pr") or {}
    base = planning or pr
    return Profile(
        orders_count=int(base.get("oc", 0)),
        lifetime_value=_dec(base.get("ltv")),
        last_order_at=_dt(pr["lo"]) if pr.get("lo") else None,
        email_consent=pr.get("ec"),
        sms_consent=pr.get("sc"),
        suppressed=frozenset(pr.get("sup", ())),
        suppressed_numbers=frozenset(pr.get("sn", ())),
        abandonments=tuple(_dt(t) for t in base.get("ab", ())),
        sends=tuple((ch, _dt(t)) for ch, t in pr.get("se", ())),
        discount_orders=int(base.get("dc", 0)),
    )


def cart_of(
    snapshot: dict[str, Any], store: str, checkout: str, abandoned_at: float, cycle: int
) -> Cart:
    contact = snapshot.get("contact") or {}
    address = snapshot.get("shipping_address") or snapshot.get("billing_address") or {}
    return Cart(
        store=store,
        checkout=checkout,
        currency=snapshot.get("currency", ""),
        total=_dec(snapshot.get("total")),
        subtotal=_dec(snapshot["subtotal"]) if snapshot.get("subtotal") is not None else None,
        shipping=_dec(snapshot["shipping"]) if snapshot.get("shipping") is not None else None,
        peak_total=(
            _dec(snapshot["peak_total"]) if snapshot.get("peak_total") is not None else None
        ),
        presentment_currency=snapshot.get("presentment_currency"),
        abandoned_at=_dt(abandoned_at),
        items=tuple(
            Item(
                title=str(i.get("title", "")),
                quantity=int(i.get("quantity", 1)),
                price=_dec(i.get("price")),
                cost=_dec(i["cost"]) if i.get("cost") is not None else None,
                product_id=i.get("product_id"),
                variant_id=i.get("variant_id"),
                sku=i.get("sku"),
            )
            for i in snapshot.get("line_items", ())
            if isinstance(i, dict)
        ),
        contact=ContactInfo(
            email=contact.get("email"),
            phone=contact.get("phone"),
            sms_phone=contact.get("sms_phone"),
            customer_id=contact.get("customer_id"),
            first_name=contact.get("first_name"),
            email_consent=bool(contact.get("email_consent", False)),
            sms_consent=bool(contact.get("sms_consent", False)),
            locale=contact.get("locale"),
            country_code=address.get("country_code"),
            province_code=address.get("province_code"),
        ),
        recovery_url=snapshot.get("recovery_url"),
        cycle=cycle,
    )


def derive_plan(state: State, shopper: str, policy: StorePolicy) -> tuple[Plan, Cart] | None:
    """The active plan and its cart, re-derived from the plan inputs kept in ``state``."""
    pl = state.get("pl")
    if not pl:
        return None

    def derive() -> tuple[Plan, Cart]:
        snapshot = unpack(pl["c"])
        cart = cart_of(snapshot, shopper.partition(":")[0], pl["ck"], pl["at"], pl["cy"])
        profile = profile_of(state, pl.get("pp"))
        plan = plan_recovery(profile, cart, shopper, policy, _dt(pl["at"]), version=pl["cy"])
        return plan, cart

    last_order = (state.get("pr") or {}).get("lo")
    return _plans.get(PlanCache.key(shopper, pl, last_order), policy, derive)


def _effective_due(pl: dict[str, Any], touch: PlannedTouch) -> float:
    deferred = pl.get("due", {}).get(str(touch.step))
    return float(deferred) if deferred is not None else touch.due_at.timestamp()


def next_due(state: State, shopper: str, policy: StorePolicy) -> float | None:
    derived = derive_plan(state, shopper, policy)
    if derived is None:
        return None
    plan, _ = derived
    done = state["pl"].get("done", {})
    dues = [_effective_due(state["pl"], t) for t in plan.touches if str(t.step) not in done]
    return min(dues) if dues else None


def _bump(state: State, shopper: str, policy: StorePolicy) -> State:
    state["seq"] = state.get("seq", 0) + 1
    state["nd"] = next_due(state, shopper, policy)
    return state


def _prune(pr: dict[str, Any], now: float) -> None:
    """Drop history older than its window; an empty history is not stored at all."""
    recent = [t for t in pr.get("ab", ()) if t >= now - HISTORY_WINDOW][-MAX_ABANDONMENTS:]
    sends = [s for s in pr.get("se", ()) if s[1] >= now - SENDS_WINDOW]
    for name, kept in (("ab", recent), ("se", sends)):
        if kept:
            pr[name] = kept
        else:
            pr.pop(name, None)


def _country(state: State) -> str | None:
    """The country of the active plan's cart address, to read a national phone number."""
    snapshot = unpack((state.get("pl") or {}).get("c") or {})
    address = snapshot.get("shipping_address") or snapshot.get("billing_address") or {}
    country = address.get("country_code") if isinstance(address, dict) else None
    return country if isinstance(country, str) and country else None


def _merge_history(pr: dict[str, Any], history: Any) -> None:
    """Fold the platform's order history of the customer into the profile.

    The platform's count and total cover orders from before cartbands saw the shopper; the
    orders seen in the stream since are in them too once the platform catches up, so the larger
    of the two figures is kept, never their sum.
    """
    if not isinstance(history, dict):
        return
    try:
        orders = int(history.get("orders_count") or 0)
    except (TypeError, ValueError):
        orders = 0
    pr["oc"] = max(int(pr.get("oc", 0)), orders)
    pr["ltv"] = str(max(_dec(pr.get("ltv")), _dec(history.get("total_spent"))))


def _end_plan(
    state: State, shopper: str, policy: StorePolicy, why: str, at: float, out: Outputs
) -> None:
    pl = state.get("pl")
    if not pl:
        return
    derived = derive_plan(state, shopper, policy)
    summary: dict[str, Any] = {"ck": pl["ck"], "cy": pl["cy"], "end": at, "why": why}
    if derived is not None:
        plan, _cart = derived
        sent = [int(s) for s, o in pl.get("done", {}).items() if o == "sent"]
        summary.update(
            band=plan.band,
            seg=plan.segment,
            ho=plan.holdout,
            sent=sorted(sent),
            codes=list(pl.get("codes", ())),
            cc=dict(pl.get("cc", {})),
        )
        leaves_audience = why.split(":", 1)[0] in AUDIENCE_EXITS
        if leaves_audience and any(t.channel == "ads" and t.step in sent for t in plan.touches):
            out.audience_removals.append({"plan": plan, "cart": _cart, "why": why, "at": at})
    state["lp"] = summary
    state["pl"] = None
    out.count("plan_ended", why.split(":", 1)[0])


def _known_abandonment(state: State, checkout: str, cycle: int, at: float) -> bool:
    """Whether the abandonment ``(checkout, cycle)`` was taken in already (or a later cycle of
    the same checkout was), or is older than what the shopper's row still remembers."""
    for seen in (state.get("pl"), state.get("lp")):
        if seen and seen.get("ck") == checkout and int(seen.get("cy", 0)) >= cycle:
            return True
    if any(ck == checkout and cy >= cycle for ck, cy, _ in state.get("ak", ())):
        return True
    floor = state.get("af")
    return floor is not None and at <= floor


def _remember_abandonment(st: State, checkout: str, cycle: int, at: float) -> None:
    """Add ``(checkout, cycle)`` to the abandonments seen; keep those of the history window,
    at most MAX_ABANDONMENTS, and raise the floor (``af``) to the newest one dropped."""
    seen = [*st.get("ak", ()), [checkout, cycle, at]]
    kept = [s for s in seen if s[2] >= at - HISTORY_WINDOW][-MAX_ABANDONMENTS:]
    dropped = [s[2] for s in seen if s not in kept]
    if dropped:
        st["af"] = max(st.get("af") or dropped[0], *dropped)
    st["ak"] = kept


def given_at(record: dict[str, Any]) -> float:
    """When the shopper gave what ``record`` carries: for an abandonment, the cart's last
    update (the tick that abandons it stamps the record later); else the record's own time."""
    if record.get("type") == "cart_abandoned":
        cart = record.get("cart")
        if isinstance(cart, dict) and cart.get("occurred_at") is not None:
            try:
                return epoch(cart["occurred_at"], "cart.occurred_at")
            except BadEvent:
                pass  # not stage A's (it validated the event): the abandonment's own time
        return epoch(record.get("abandoned_at") or record.get("occurred_at"), "abandoned_at")
    key = order_key(record)
    return key[0] if key is not None else epoch(record.get("occurred_at"), "occurred_at")


def _cycle(record: dict[str, Any]) -> int:
    value = record.get("cycle", 1)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadEvent("cycle: expected an integer")
    return value


def abandonment_of(record: dict[str, Any]) -> tuple[float, str, int, dict[str, Any]]:
    """The fields of a ``cart_abandoned`` stage B relies on: ``(abandoned_at, checkout,
    cycle, cart)``; BadEvent names the one it cannot take (a record may come from elsewhere
    than stage A: a replay, another producer)."""
    at = epoch(record.get("abandoned_at") or record.get("occurred_at"), "abandoned_at")
    cart = record.get("cart") or {}
    if not isinstance(cart, dict):
        raise BadEvent("cart: expected an object")
    check_amounts(cart, "cart.")
    return at, str(record.get("checkout")), _cycle(record), cart


def apply_abandoned(
    state: State | None, shopper: str, record: dict[str, Any], partition: int, policy: StorePolicy
) -> tuple[State, Outputs]:
    out = Outputs()
    at, checkout, cycle, cart_snapshot = abandonment_of(record)
    if state and _known_abandonment(state, checkout, cycle, at):
        # stage A sends again after a crash: a plan is its cart and abandonment, and one
        # taken in (active, ended or passed over) is never planned again (invariant 8)
        out.count("duplicate", "abandoned")
        return state, out
    st: State = dict(state) if state else new_state(partition)
    st["pt"] = partition
    if st.get("rd") is not None and given_at(record) <= st["rd"]:
        # the cart was given before the redaction, whenever the tick that abandoned it came:
        # nothing derived from it goes out, and stage A forgets the checkout (invariant 6)
        out.count("ignored", "redacted")
        out.redact_checkouts.append(checkout_redaction(_store(shopper), checkout, st["rd"]))
        return st, out
    _remember_abandonment(st, checkout, cycle, at)
    pr = dict(st.get("pr") or {})
    contact = cart_snapshot.get("contact") or {}
    if pr.get("ec") is None and "email_consent" in contact:
        pr["ec"] = bool(contact["email_consent"])
    if contact.get("sms_consent"):
        pr["sc"] = True if pr.get("sc") is None else pr["sc"]
    _merge_history(pr, cart_snapshot.get("customer"))
    pr["ab"] = [*pr.get("ab", ()), at]
    _prune(pr, at)
    st["pr"] = pr
    candidate: dict[str, Any] = {
        "ck": checkout,
        "cy": cycle,
        "at": at,
        "c": pack(cart_snapshot, drop=PLAN_CART_DROP),
        "pp": {"oc": pr.get("oc", 0), "ltv": pr.get("ltv", "0")},
    }
    if pr.get("dc"):
        candidate["pp"]["dc"] = pr["dc"]
    earlier = pr.get("ab", [])[:-1]
    if earlier:
        candidate["pp"]["ab"] = earlier
    new_cart = cart_of(cart_snapshot, shopper.partition(":")[0], checkout, at, cycle)
    new_plan = plan_recovery(
        profile_of(st, candidate["pp"]), new_cart, shopper, policy, _dt(at), version=cycle
    )
    _plans.put(PlanCache.key(shopper, candidate, pr.get("lo")), policy, (new_plan, new_cart))
    active = derive_plan(st, shopper, policy)
    if active is not None:
        chosen, why = choose_plan(active[0], new_plan, policy.caps.on_new_cart)
        if chosen is active[0]:
            out.count("plan_kept", why)
            out.plans.append(plan_record(new_plan, policy, kept=active[0]))
            return _bump(st, shopper, policy), out
        _end_plan(st, shopper, policy, f"replaced: {why}", at, out)
    st["pl"] = candidate
    out.planned.append(new_plan)
    out.plans.append(plan_record(new_plan, policy))
    out.count("planned", new_plan.band)
    if new_plan.holdout:
        out.count("holdout", new_plan.band)
    if new_plan.rejected:
        out.count("rejected", new_plan.rejected.split(":", 1)[0])
    return _bump(st, shopper, policy), out


def _order_discounts(record: dict[str, Any]) -> list[dict[str, str]]:
    """The codes a ``cart_converted`` used (stage A checked them; a record from elsewhere may
    carry anything: BadEvent, and the shell dead-letters it)."""
    try:
        return order_discounts(record)
    except BadDiscount as exc:
        raise BadEvent(str(exc)) from exc


def apply_converted(
    state: State | None, shopper: str, record: dict[str, Any], partition: int, policy: StorePolicy
) -> tuple[State, Outputs]:
    """An order by the shopper: count it in the profile, end the plan, attribute it.

    Stage A sends one ``cart_converted`` per checkout, at least once: one it sends again
    (a crash between its records and its state) changes nothing here."""
    out = Outputs()
    checkout = str(record.get("checkout"))
    if state and checkout in (state.get("pr") or {}).get("cv", ()):
        out.count("duplicate", "converted")
        return state, out
    used = _order_discounts(record)
    st: State = dict(state) if state else new_state(partition)
    st["pt"] = partition
    at = epoch(record.get("occurred_at"), "occurred_at")
    pr = dict(st.get("pr") or {})
    total = _dec(record.get("total"))
    pr["oc"] = int(pr.get("oc", 0)) + 1
    if record.get("discount_codes"):
        pr["dc"] = int(pr.get("dc", 0)) + 1
    pr["ltv"] = str(_dec(pr.get("ltv")) + total)
    pr["lo"] = max(at, pr.get("lo") or at)
    pr["cv"] = [*pr.get("cv", ()), checkout][-MAX_CONVERTED:]
    st["pr"] = pr
    pl = st.get("pl")
    if pl and (pl["ck"] == checkout or at >= pl["at"]):
        _end_plan(st, shopper, policy, "converted: order placed", at, out)
    last = st.get("lp")
    window = policy.attribution_window.total_seconds()
    if last and (last.get("ck") == checkout or 0 <= at - last.get("end", at) <= window):
        spent = attribute(used, last.get("codes", ()), last.get("cc", {}))
        discount = Decimal(spent["discount"])
        out.recoveries.append(
            {
                "type": "recovery",
                "store": record.get("store"),
                "shopper": shopper,
                "checkout": last.get("ck"),
                "cycle": last.get("cy"),
                "order_checkout": checkout,
                "order_id": record.get("order_id"),
                "band": last.get("band"),
                "segment": last.get("seg"),
                "holdout": bool(last.get("ho")),
                "touches_sent": last.get("sent", []),
                **spent,
                "revenue": str(total),
                "margin": str(recovered_margin(total, discount, policy)),
                "currency": record.get("currency"),
                "occurred_at": iso(at),
                "same_cart": last.get("ck") == checkout,
            }
        )
        st["lp"] = {**last, "attributed": True} if last.get("ck") == checkout else last
        out.count("converted", "holdout" if last.get("ho") else "treated")
    return _bump(st, shopper, policy), out


def apply_cart_left(
    state: State | None,
    shopper: str,
    record: dict[str, Any],
    partition: int,
    policy: StorePolicy,
    why: str,
) -> tuple[State | None, Outputs]:
    """The shopper came back to (or emptied) the planned cart: its plan ends."""
    out = Outputs()
    if not state or not state.get("pl") or state["pl"]["ck"] != str(record.get("checkout")):
        return state, out
    cycle = record.get("cycle")
    if isinstance(cycle, int) and cycle != state["pl"]["cy"]:
        out.count("stale", record.get("type") or "")  # it left an earlier cycle's cart
        return state, out
    st = dict(state)
    _end_plan(st, shopper, policy, why, epoch(record.get("occurred_at"), "occurred_at"), out)
    return _bump(st, shopper, policy), out


def apply_consent(
    state: State | None, shopper: str, record: dict[str, Any], partition: int, policy: StorePolicy
) -> tuple[State, Outputs]:
    out = Outputs()
    st: State = dict(state) if state else new_state(partition)
    st["pt"] = partition
    pr = dict(st.get("pr") or {})
    channel = str(record.get("channel", "all"))
    granted = bool(record.get("granted"))
    suppressed = set(pr.get("sup", ()))
    channels = ("email", "sms") if channel == "all" else (channel,)
    if granted:
        suppressed -= {channel, "all"} if channel != "all" else suppressed
    else:
        suppressed.add(channel)
    for ch in channels:
        key = {"email": "ec", "sms": "sc"}.get(ch)
        if key:
            pr[key] = granted
    pr["sup"] = sorted(suppressed)
    st["pr"] = pr
    phone = record.get("phone")
    if channel in ("sms", "all") and isinstance(phone, str) and phone.strip():
        numbers = set(pr.get("sn", ()))
        number = phone_e164(phone, _country(st))
        numbers = numbers - {number} if granted else numbers | {number}
        pr["sn"] = sorted(numbers)
    out.count("consent", f"{channel}:{'granted' if granted else 'withdrawn'}")
    why = consent_exit(channel, granted, str(record.get("source") or ""))
    if why is not None and st.get("pl"):
        at = epoch(record.get("occurred_at"), "occurred_at")
        _end_plan(st, shopper, policy, why, at, out)
    return _bump(st, shopper, policy), out


def apply_redacted(
    state: State | None, shopper: str, record: dict[str, Any], partition: int, policy: StorePolicy
) -> tuple[State, Outputs]:
    """Erase everything personal; remember only when, so older cart events stay ignored."""
    out = Outputs()
    at = epoch(record.get("occurred_at"), "occurred_at")
    if state and state.get("rd") is not None and at <= state["rd"]:
        # a repeat: what was given before it is gone already, and what came since stays
        out.count("duplicate", "redacted")
        return state, out
    known: list[str] = []
    if state:
        if state.get("pl"):
            known.append(state["pl"]["ck"])
            # Ends the plan and takes the shopper out of any audience it added them to.
            _end_plan(dict(state), shopper, policy, "redacted: personal data erased", at, out)
        if state.get("lp"):
            known.append(state["lp"]["ck"])
    store = _store(shopper)
    out.redact_checkouts.extend(checkout_redaction(store, checkout, at) for checkout in known)
    out.to_every_checkout_partition.append(
        {"type": "shopper_redacted", "store": store, "shopper": shopper, "occurred_at": iso(at)}
    )
    out.count("redacted")
    st: State = {"pt": partition, "seq": (state or {}).get("seq", 0) + 1, "rd": at, "nd": None}
    return st, out


def erased_by_store(record: dict[str, Any], key: str) -> bool:
    """Whether a ``store_redacted`` record erases the shopper stored under ``key``."""
    store = record.get("store")
    return (
        record.get("type") == "store_redacted"
        and isinstance(store, str)
        and key.startswith(f"{store}:")
    )


def apply_due(
    state: State, shopper: str, now: float, policy: StorePolicy, secret: bytes
) -> tuple[State, Outputs]:
    """Time has reached ``now``: decide every touch due by then, in due order.

    Each touch is decided at its own due time (not the tick's), so the decisions and the
    emitted times do not depend on how often ticks come.
    """
    out = Outputs()
    derived = derive_plan(state, shopper, policy)
    if derived is None:
        return state, out
    plan, cart = derived
    st = dict(state)
    pl = dict(st["pl"])
    pl["done"] = dict(pl.get("done", {}))
    pl["due"] = dict(pl.get("due", {}))
    st["pl"] = pl
    pr = dict(st.get("pr") or {})
    st["pr"] = pr
    if plan.holdout or plan.rejected:
        for t in plan.touches:
            pl["done"][str(t.step)] = "control" if plan.holdout else "rejected"
    for _ in range(4 * max(1, len(plan.touches)) + 8):
        pending = [
            (_effective_due(pl, t), t.step, t)
            for t in plan.touches
            if str(t.step) not in pl["done"]
        ]
        if not pending:
            break
        due, _step, touch = min(pending, key=lambda p: (p[0], p[1]))
        if due > now:
            break
        profile = profile_of(st)
        decision = decide_touch(plan, touch, profile, cart, policy, _dt(due), secret)
        if decision.action == "send":
            pl["done"][str(touch.step)] = "sent"
            pr["se"] = [*pr.get("se", ()), [touch.channel, due]]
            if decision.code:
                pl["codes"] = [*pl.get("codes", ()), decision.code]
                cost = touch.incentive_cost if touch.incentive_cost is not None else Decimal(0)
                pl["cc"] = {**pl.get("cc", {}), decision.code: str(cost)}
            out.touches.append(Emission(touch, plan, cart, decision, due))
            out.count("emitted", touch.channel)
        elif (
            decision.action == "defer" and decision.at is not None and decision.at.timestamp() > due
        ):
            pl["due"][str(touch.step)] = decision.at.timestamp()
            out.count("deferred", decision.key, touch.channel)
        else:
            pl["done"][str(touch.step)] = "skip"
            out.count("suppressed", decision.key, touch.channel)
    _prune(pr, now)
    if not pl["due"]:
        del pl["due"]  # nothing deferred: not stored
    if all(str(t.step) in pl["done"] for t in plan.touches):
        _end_plan(st, shopper, policy, "completed: sequence finished", now, out)
    return _bump(st, shopper, policy), out


TRANSITIONS = {
    "cart_abandoned": apply_abandoned,
    "cart_converted": apply_converted,
    "consent_changed": apply_consent,
    "shopper_redacted": apply_redacted,
}
CART_LEFT = {
    "cart_reopened": "returned: shopper came back",
    "cart_emptied": "emptied: cart emptied",
}
RECORD_TYPES = frozenset({*TRANSITIONS, *CART_LEFT})


def known_type(record: dict[str, Any]) -> str:
    kind = record.get("type")
    if not isinstance(kind, str) or kind not in RECORD_TYPES:
        raise BadEvent(f"type: unknown shopper event type {kind!r}")
    return kind


def apply_record(
    state: State | None, shopper: str, record: dict[str, Any], partition: int, policy: StorePolicy
) -> tuple[State | None, Outputs]:
    """One ``shopper-events`` record (not a tick) through its transition."""
    kind = known_type(record)
    if kind in CART_LEFT:
        return apply_cart_left(state, shopper, record, partition, policy, CART_LEFT[kind])
    return TRANSITIONS[kind](state, shopper, record, partition, policy)


def order_key(record: dict[str, Any]) -> tuple[float, int] | None:
    """Stage A's time of a record (``sk``, recovery.checkouts), or None if it has none."""
    value = record.get("sk")
    if not isinstance(value, list) or len(value) != 2:
        return None
    at, phase = value
    if isinstance(at, bool) or not isinstance(at, int | float) or phase not in (0, 1):
        return None
    return float(at), int(phase)
