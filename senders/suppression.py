"""The senders' last-moment view of ``shopper-events``: opt-outs, redactions, conversions.

Stage B already stops touches when a shopper opts out, is redacted or orders; but a touch
emitted a moment earlier may still wait on its channel topic. The senders follow
``shopper-events`` themselves and refuse such a touch at the last moment:

- ``consent_changed``: the latest event per contact (email, phone, customer id) and channel wins;
  a withdrawal on the touch's channel or on ``all`` suppresses it (an SMS STOP stops email too
  when the gateway says ``all``);
- ``shopper_redacted`` / ``store_redacted``: a touch for a redacted contact (or store) is not
  sent unless its cart shows activity after the redaction. A touch command does not carry its
  cart's activity time, so the view takes it from the ``cart_abandoned`` record its plan came
  from (the cart snapshot's ``occurred_at``, matched on store, checkout and cycle, the touch's
  ``plan_version``); a touch whose abandonment the view has not seen counts as older than the
  redaction (the sender first waits for the follower to reach the end of ``shopper-events``,
  see :meth:`SuppressionView.awaits_activity`). An abandonment stamped after the redaction by a
  tick is still derived from what the shopper gave before it, hence the activity time, not the
  touch's due time or the abandonment's. Taking a redacted shopper out of an ads audience
  (``audience_remove``, the consequence of the redaction) always goes, unless the whole store
  was redacted;
- ``cart_converted``: touches about the converted cart are not sent (an ``audience_remove``
  touch, the consequence of a conversion, always goes).

Pure: records in, verdicts out. Contacts are kept as salted digests, not in the clear.
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from recovery.checkouts import BadEvent, epoch
from recovery.ids import normalize_email, normalize_phone, shopper_key
from schemas.records import TouchCommand
from senders.compose import AUDIENCE_REMOVE
from senders.decide import Verdict
from senders.outcomes import Outcome

ALL = "all"
# How long a cart's activity is kept after its abandonment: past every touch a plan can still
# send (the longest default sequence ends 72 h after abandonment, caps defer by at most 3 d).
# A touch older than that whose activity was dropped counts as unknown: blocked if redacted.
ACTIVITY_HORIZON = 30 * 86400.0


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _identities(customer_id: Any, email: Any, phone: Any) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if isinstance(customer_id, str | int) and str(customer_id).strip():
        found.append(("customer", str(customer_id).strip()))
    if isinstance(email, str) and email.strip():
        found.append(("email", normalize_email(email)))
    if isinstance(phone, str) and normalize_phone(phone).lstrip("+"):
        found.append(("phone", normalize_phone(phone)))
    return found


def _digest(store: str, kind: str, value: str) -> str:
    return hashlib.blake2b(f"{store}\x1f{kind}\x1f{value}".encode(), digest_size=16).hexdigest()


@dataclass(frozen=True)
class Consent:
    granted: bool
    at: datetime
    source: str


class SuppressionView:
    def __init__(self) -> None:
        self.consent: dict[tuple[str, str], Consent] = {}
        self.redacted: dict[str, datetime] = {}  # by contact digest
        self.redacted_shoppers: dict[str, datetime] = {}  # by shopper key (store:hash)
        self.store_redacted: dict[str, datetime] = {}
        self.converted: dict[tuple[str, str], datetime] = {}
        # (store, checkout, cycle) -> the cart's last activity and its abandonment (epoch s),
        # from cart_abandoned
        self.activity: dict[tuple[str, str, int], tuple[float, float]] = {}
        self._abandonments: deque[tuple[float, tuple[str, str, int]]] = deque()

    def apply(self, record: Any) -> bool:
        """Take one ``shopper-events`` value into account; False when it is not relevant."""
        if not isinstance(record, dict):
            return False
        kind, store = record.get("type"), record.get("store")
        at = _when(record.get("occurred_at"))
        if not isinstance(store, str) or at is None:
            return False
        ids = _identities(record.get("customer_id"), record.get("email"), record.get("phone"))
        if kind == "consent_changed":
            channel, granted = record.get("channel"), record.get("granted")
            if not isinstance(channel, str) or not isinstance(granted, bool):
                return False
            source = str(record.get("source") or "platform")
            for ident in ids:
                key = (_digest(store, *ident), channel)
                known = self.consent.get(key)
                if known is None or known.at <= at:
                    self.consent[key] = Consent(granted, at, source)
            return bool(ids)
        if kind == "shopper_redacted":
            for ident in ids:
                digest = _digest(store, *ident)
                self.redacted[digest] = max(at, self.redacted.get(digest, at))
            # The key stage B files the shopper under: covers a touch that carries none of the
            # redacted contacts (an SMS touch with only the phone, for a redaction by email).
            given = dict(ids)
            shopper = shopper_key(
                store, given.get("customer"), given.get("email"), given.get("phone")
            )
            if shopper is not None:
                self.redacted_shoppers[shopper] = max(at, self.redacted_shoppers.get(shopper, at))
            return bool(ids)
        if kind == "store_redacted":
            self.store_redacted[store] = max(at, self.store_redacted.get(store, at))
            return True
        if kind == "cart_converted":
            checkout = record.get("checkout")
            if not isinstance(checkout, str):
                return False
            self.converted[(store, checkout)] = at
            return True
        if kind == "cart_abandoned":
            return self._abandoned(store, record)
        return False

    def _abandoned(self, store: str, record: dict[str, Any]) -> bool:
        checkout, cycle, cart = record.get("checkout"), record.get("cycle"), record.get("cart")
        if not isinstance(checkout, str) or type(cycle) is not int or not isinstance(cart, dict):
            return False
        try:
            active = epoch(cart.get("occurred_at"), "cart.occurred_at")
            abandoned = epoch(record.get("occurred_at"), "occurred_at")
        except BadEvent:
            return False
        key = (store, checkout, cycle)
        self.activity[key] = (active, abandoned)
        self._abandonments.append((abandoned, key))
        # Records arrive about in time order: forget what the latest one left far behind (a
        # cart abandoned again since, e.g. a repeated record, stays).
        while self._abandonments and self._abandonments[0][0] < abandoned - ACTIVITY_HORIZON:
            old, old_key = self._abandonments.popleft()
            if self.activity.get(old_key, (0.0, None))[1] == old:
                del self.activity[old_key]
        return True

    def _digests(self, command: TouchCommand) -> list[str]:
        contact = command.contact
        return [
            _digest(command.store, *ident)
            for ident in _identities(contact.customer_id, contact.email, contact.phone)
            + _identities(None, None, contact.sms_phone)
        ]

    def _redacted_at(self, command: TouchCommand, channel: str) -> tuple[datetime, str] | None:
        """The latest redaction that covers this touch, and what it erased; None if none."""
        found: list[tuple[datetime, str]] = []
        store = self.store_redacted.get(command.store)
        if store is not None:
            found.append((store, "the store's data"))
        removal = channel == "ads" and command.template == AUDIENCE_REMOVE
        if not removal:
            by_contact = [self.redacted.get(digest) for digest in self._digests(command)]
            for shopper in (*by_contact, self.redacted_shoppers.get(command.shopper)):
                if shopper is not None:
                    found.append((shopper, "the shopper's data"))
        return max(found, key=lambda item: item[0]) if found else None

    def _activity(self, command: TouchCommand) -> float | None:
        known = self.activity.get((command.store, command.cart, command.plan_version))
        return known[0] if known is not None else None

    def awaits_activity(self, command: TouchCommand, channel: str) -> bool:
        """Whether a redaction covers this touch and its cart's activity is not known yet:
        worth waiting for ``shopper-events`` to be read to its end before :meth:`check`."""
        return self._redacted_at(command, channel) is not None and self._activity(command) is None

    def check(self, command: TouchCommand, channel: str) -> Verdict | None:
        """Why this touch must not go out given what shopper-events said, or None."""
        store = command.store
        removal = channel == "ads" and command.template == AUDIENCE_REMOVE
        redaction = self._redacted_at(command, channel)
        if redaction is not None:
            at, erased = redaction
            active = self._activity(command)
            if active is None:
                return Verdict(
                    Outcome.SUPPRESSED,
                    f"{erased} was redacted at {at.isoformat()}; no activity of the cart known "
                    "after it",
                )
            if active <= at.timestamp():
                return Verdict(
                    Outcome.SUPPRESSED,
                    f"{erased} was redacted at {at.isoformat()}, after the cart's last activity",
                )
        if removal:
            return None
        converted = self.converted.get((store, command.cart))
        if converted is not None:
            return Verdict(Outcome.SUPPRESSED, f"the cart converted at {converted.isoformat()}")
        for digest in self._digests(command):
            # The latest word on this channel, whether said of the channel or of all of them:
            # a STOP (all) then a START (sms) re-opens SMS but not email.
            said = [
                (consent.at, scope, consent)
                for scope in (channel, ALL)
                if (consent := self.consent.get((digest, scope))) is not None
            ]
            if not said:
                continue
            at, scope, latest = max(said, key=lambda item: item[0])
            if not latest.granted:
                return Verdict(
                    Outcome.SUPPRESSED,
                    f"consent withdrawn for {scope} ({latest.source}, {at.isoformat()})",
                )
        return None
