"""Decisions on a due touch, on competing plans, and on exits.

:func:`decide_touch` re-checks a touch when it falls due: plan state, exits (an order since
abandonment, an emptied cart), consent and suppression, then timing: quiet hours in the
recipient's zone, the per-channel gap and the rolling cap across carts. It answers ``send``
(with the discount code and expiry), ``defer`` (with the earliest minute every timing rule
allows) or ``skip``. :func:`due_touches` walks a whole plan from its :class:`PlanState` up to
``now``: which touches are due, each one's decision, and the state after them.
:func:`choose_plan` keeps one sequence per shopper; :func:`exit_reason`, :func:`consent_exit`
and :func:`end_plan` end a plan with a recorded reason. Pure: ``now`` and the secret are given.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from recovery.code_spec import code_kind
from recovery.codes import discount_code
from recovery.durations import format_duration
from recovery.fast_constructors import fast_constructor
from recovery.ids import phone_e164
from recovery.model import Cart, Decision, Plan, PlannedTouch, Profile
from recovery.policy import StorePolicy
from recovery.policy_tables import PolicyTables, compile_policy
from recovery.quiet import NoAllowedMinute, next_allowed, window_for
from recovery.regions import Locale, locate_cached

ExitKind = Literal["order", "cart_emptied", "unsubscribe", "redaction"]
EXIT_KINDS: tuple[ExitKind, ...] = ("order", "cart_emptied", "unsubscribe", "redaction")
STOP_KEYWORDS = frozenset(
    {"STOP", "STOPALL", "QUIT", "END", "REVOKE", "OPT OUT", "OPTOUT", "CANCEL", "UNSUBSCRIBE"}
)
_MAX_ROUNDS = 8
_decision = fast_constructor(Decision)


def is_stop_keyword(text: str) -> bool:
    """An SMS reply that revokes consent (STOP, QUIT, END, REVOKE, OPT OUT, CANCEL, ...)."""
    return " ".join(text.strip().upper().replace("-", " ").split()) in STOP_KEYWORDS


def exit_reason(kind: ExitKind, detail: str = "") -> str:
    """The recorded reason for an exit: ``order: #1001``, ``unsubscribe: sms STOP``, ..."""
    if kind not in EXIT_KINDS:
        raise ValueError(f"unknown exit {kind!r}; expected one of {', '.join(EXIT_KINDS)}")
    return f"{kind}: {detail}" if detail else kind


def end_plan(plan: Plan, reason: str) -> Plan:
    """The plan ended for ``reason``; an already ended plan keeps its first reason."""
    return plan if plan.ended is not None else dataclasses.replace(plan, ended=reason)


def consent_exit(channel: str, granted: bool, source: str = "") -> str | None:
    """The exit a consent change causes: any withdrawal (an email unsubscribe, an SMS STOP,
    ``all``) ends the active plan, recorded as ``unsubscribe: sms STOP``; a grant ends
    nothing. The shopper's other channels stay suppressed or not as their consents say."""
    if granted:
        return None
    return exit_reason("unsubscribe", " ".join(x for x in (channel, source) if x))


def cart_emptied(cart: Cart) -> bool:
    return not cart.items and cart.total <= 0


def exit_for(profile: Profile, cart: Cart) -> str | None:
    """An exit visible in the profile or cart itself, else ``None``."""
    if profile.last_order_at is not None and profile.last_order_at >= cart.abandoned_at:
        return exit_reason("order", f"the shopper ordered at {profile.last_order_at.isoformat()}")
    if cart_emptied(cart):
        return exit_reason("cart_emptied", "the cart has no items left")
    if "all" in profile.suppressed:
        return exit_reason("unsubscribe", "the shopper is suppressed on every channel")
    return None


def choose_plan(
    active: Plan | None, new: Plan, rule: str = "keep_higher_value"
) -> tuple[Plan, str]:
    """One sequence per shopper: which of the active plan and a new cart's plan goes on.

    ``keep_higher_value`` keeps the cart worth more (ties keep the active one, so a shopper
    is not restarted); ``newest`` always takes the new cart. A new plan for the same cart
    (a re-plan) replaces the active one.
    """
    if active is None or active.ended is not None or active.rejected is not None:
        return new, "choose: no active plan"
    if active.cart == new.cart:
        return new, f"choose: same cart re-planned (version {active.version} -> {new.version})"
    if new.rejected is not None:
        return active, f"choose: kept the active cart; the new one was rejected ({new.rejected})"
    if new.currency != active.currency:
        # never compare amounts in different currencies (the store's currency changed)
        return new, (
            f"choose: new cart replaces the active one (values in {new.currency} and "
            f"{active.currency} are not compared)"
        )
    money = f"{new.value} vs active {active.value} {active.currency}"
    if rule == "newest":
        return new, f"choose: newest cart replaces the active one ({money})"
    if new.value > active.value:
        return new, f"choose: new cart is worth more ({money})"
    return active, f"choose: kept the active cart, worth at least as much ({money})"


def _number_suppressed(number: str, region: str | None, suppressed: frozenset[str]) -> bool:
    """Is ``number`` on the list, however either side writes it?"""
    mine = phone_e164(number, region)
    return any(phone_e164(entry, region) == mine for entry in suppressed)


def _permission(
    touch: PlannedTouch, profile: Profile, cart: Cart, policy: StorePolicy
) -> tuple[str | None, str]:
    """``(refusal, note)``: why the channel may not reach the shopper, or how it may."""
    channel = touch.channel
    if channel in profile.suppressed:
        return f"suppressed: {channel} (unsubscribed or stopped)", ""
    contact = cart.contact
    email_ok = profile.email_consent if profile.email_consent is not None else contact.email_consent
    if channel == "email":
        if not contact.email:
            return "no_contact: no email address", ""
        if email_ok:
            return None, "marketing consent"
        if policy.consent.transactional_email and touch.incentive_kind is None:
            return None, "transactional reminder (store allows it without marketing consent)"
        return "no_consent: email needs marketing consent", ""
    if channel == "sms":
        number = contact.sms_phone or contact.phone
        if not number:
            return "no_contact: no phone number", ""
        if profile.suppressed_numbers and _number_suppressed(
            number, contact.country_code, profile.suppressed_numbers
        ):
            return "suppressed: the phone number is on the suppression list", ""
        sms_ok = profile.sms_consent if profile.sms_consent is not None else contact.sms_consent
        if not sms_ok:
            return "no_consent: sms needs recorded sms consent", ""
        return None, "sms consent"
    if channel == "ads":
        if not (contact.email or contact.phone or contact.sms_phone):
            return "no_contact: nothing to match an audience on", ""
        if policy.consent.ads_need_marketing_consent and not email_ok:
            return "no_consent: ad audiences need marketing consent", ""
        return None, "audience"
    if not (contact.email or contact.phone or contact.sms_phone):
        return "no_contact: nothing for a person to follow up with", ""
    return None, "staff follow-up"


def locale_for(touch: PlannedTouch, cart: Cart, policy: StorePolicy) -> Locale:
    """Where the recipient of ``touch`` is (the SMS number first for SMS)."""
    contact = cart.contact
    phone = (
        (contact.sms_phone or contact.phone)
        if touch.channel == "sms"
        else (contact.phone or contact.sms_phone)
    )
    return locate_cached(
        phone,
        contact.country_code.upper() if contact.country_code else None,
        contact.province_code.upper() if contact.province_code else None,
        policy.timezone,
        compile_policy(policy).zone_overrides,
    )


def _gap_until(
    sends: tuple[tuple[str, datetime], ...], channel: str, gap: timedelta, at: datetime
) -> datetime | None:
    """When the per-channel gap after the last ``channel`` send ends, if after ``at``."""
    last = None
    for ch, sent in sends:
        if ch == channel and sent <= at and (last is None or sent > last):
            last = sent
    if last is not None and at < last + gap:
        return last + gap
    return None


def _cap_until(
    sends: tuple[tuple[str, datetime], ...], tables: PolicyTables, at: datetime
) -> datetime | None:
    """When the rolling cap frees a slot, if it is full at ``at``."""
    since = at - tables.cap_window
    counted = tables.counted
    times = [sent for ch, sent in sends if ch in counted and since < sent <= at]
    if len(times) < tables.max_touches:
        return None
    times.sort()
    return times[len(times) - tables.max_touches] + tables.cap_window


def decide_touch(
    plan: Plan,
    touch: PlannedTouch,
    profile: Profile,
    cart: Cart,
    policy: StorePolicy,
    now: datetime,
    secret: bytes,
) -> Decision:
    """May ``touch`` go out at ``now``? ``send``, ``defer`` until ``at``, or ``skip``."""
    if plan.rejected is not None:
        return Decision("skip", f"rejected: {plan.rejected}")
    if plan.ended is not None:
        return Decision("skip", f"ended: {plan.ended}")
    if plan.holdout:
        return Decision("skip", "holdout: control group gets no touches")
    ended = exit_for(profile, cart)
    if ended is not None:
        return Decision("skip", f"ended: {ended}")
    if now < touch.due_at:
        return Decision("defer", f"not_due: due at {touch.due_at.isoformat()}", at=touch.due_at)
    tables = compile_policy(policy)
    deadline = touch.due_at + tables.max_delay
    if now > deadline:
        return Decision("skip", f"stale: more than {tables.max_delay_text} past due")
    refusal, note = _permission(touch, profile, cart, policy)
    if refusal is not None:
        return Decision("skip", refusal)
    channel = touch.channel
    gap = tables.gaps.get(channel)
    counted = channel in tables.counted
    sends = profile.sends
    window = None
    if channel in tables.windowed:
        locale = locale_for(touch, cart, policy)
        window = window_for(policy, channel, locale.regions)
    at = now
    why: list[str] = []
    for _ in range(_MAX_ROUNDS):
        start = at
        if sends and gap is not None:
            gap_at = _gap_until(sends, channel, gap, at)
            if gap_at is not None:
                at = gap_at
                why.append(f"gap: one {channel} per {format_duration(gap)} until {at.isoformat()}")
        if sends and counted:
            cap_at = _cap_until(sends, tables, at)
            if cap_at is not None:
                at = cap_at
                why.append(f"cap: {tables.cap_text} until {at.isoformat()}")
        if window is not None:
            try:
                quiet_at = next_allowed(at, window, locale.zones)
            except NoAllowedMinute:
                return Decision(
                    "skip",
                    f"quiet_hours: no minute in the next days is inside {channel} {window} "
                    f"in every zone of {locale.zone_names} ({locale.source})",
                )
            if quiet_at != at:
                at = quiet_at
                why.append(
                    f"quiet_hours: {channel} allowed {window} in {locale.zone_names} "
                    f"({locale.source}), until {at.isoformat()}"
                )
        if at == start:
            break
    if at != now:
        if at > deadline:
            return Decision("skip", f"stale: the next allowed time {at.isoformat()} is too late")
        return Decision("defer", "; ".join(why), at=at)
    code = None
    expires_at = None
    if touch.incentive_kind is not None:
        if code_kind(touch.incentive_kind, touch.incentive_service) is not None:
            code = discount_code(touch.touch_id, secret)
        if touch.incentive_validity_s is not None:
            expires_at = now + timedelta(seconds=touch.incentive_validity_s)
    where = "any time" if window is None else f"{window} in {locale.zone_names} ({locale.source})"
    return _decision("send", f"send: {channel} ({note}), {where}", None, code, expires_at)


@dataclass(frozen=True, slots=True)
class PlanState:
    """How far a plan has gone: steps decided for good (sent or skipped) and the due time a
    deferral moved a step to. Both by step number, so the state survives a re-plan of the
    same cart (same steps, same touch ids)."""

    done: frozenset[int] = frozenset()
    deferred: tuple[tuple[int, datetime], ...] = ()

    def due_of(self, touch: PlannedTouch) -> datetime:
        """The touch's effective due time: its deferral if any, else its planned due time."""
        for step, at in self.deferred:
            if step == touch.step:
                return at
        return touch.due_at

    def pending(self, plan: Plan) -> list[PlannedTouch]:
        return [t for t in plan.touches if t.step not in self.done]


@dataclass(frozen=True, slots=True)
class TouchDecision:
    """One decision of :func:`due_touches`: the touch, when it was decided, and the verdict."""

    touch: PlannedTouch
    at: datetime
    decision: Decision


@dataclass(frozen=True, slots=True)
class Decisions:
    """What :func:`due_touches` decided, in order, and the state after it.

    ``profile`` carries this batch's sends appended to ``sends`` (so the caller's caps see
    them); ``next_due`` is the earliest pending due time, ``None`` when every step is done.
    """

    items: tuple[TouchDecision, ...]
    state: PlanState
    profile: Profile
    next_due: datetime | None

    @property
    def sent(self) -> tuple[TouchDecision, ...]:
        return tuple(d for d in self.items if d.decision.action == "send")

    @property
    def finished(self) -> bool:
        return self.next_due is None


def due_touches(
    plan: Plan,
    state: PlanState,
    profile: Profile,
    cart: Cart,
    policy: StorePolicy,
    now: datetime,
    secret: bytes,
) -> Decisions:
    """Decide every touch of ``plan`` due by ``now``, earliest first (ties by step).

    Each touch is decided by :func:`decide_touch` at its own effective due time, not at
    ``now``, so the outcome does not depend on how often the caller asks. A send is added to
    the profile before the next touch is decided (caps and gaps hold inside one batch); a
    deferral moves the step's due time, and the step is decided again once that time is
    reached (in this call when it is still before ``now``); a skip is final.
    """
    done = set(state.done)
    deferred = dict(state.deferred)
    sends = list(profile.sends)
    items: list[TouchDecision] = []
    current = profile

    def due(touch: PlannedTouch) -> datetime:
        return deferred.get(touch.step, touch.due_at)

    # Every round ends a step or moves it later; the bound stops a pathological ping-pong
    # (the remaining steps are simply decided on the next call).
    for _ in range(4 * len(plan.touches) + 8):
        pending = [t for t in plan.touches if t.step not in done]
        if not pending:
            break
        touch = min(pending, key=lambda t: (due(t), t.step))
        at = due(touch)
        if at > now:
            break
        decision = decide_touch(plan, touch, current, cart, policy, at, secret)
        items.append(TouchDecision(touch, at, decision))
        if decision.action == "send":
            done.add(touch.step)
            sends.append((touch.channel, at))
            current = dataclasses.replace(current, sends=tuple(sends))
        elif decision.action == "defer" and decision.at is not None and decision.at > at:
            deferred[touch.step] = decision.at
        else:
            done.add(touch.step)
    after = PlanState(
        frozenset(done),
        tuple(sorted((s, t) for s, t in deferred.items() if s not in done)),
    )
    pending_dues = [due(t) for t in plan.touches if t.step not in done]
    return Decisions(tuple(items), after, current, min(pending_dues) if pending_dues else None)
