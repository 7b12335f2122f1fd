"""The senders' last-moment view of ``shopper-events``: opt-outs, redactions, conversions.

Stage B already stops touches when a shopper opts out, is redacted or orders; but a touch
emitted a moment earlier may still wait on its channel topic. The senders follow
``shopper-events`` themselves and refuse such a touch at the last moment:

- ``consent_changed``: the latest event per contact (email, phone, customer id) and channel wins;
  a withdrawal on the touch's channel or on ``all`` suppresses it (an SMS STOP stops email too
  when the gateway says ``all``);
- ``shopper_redacted`` / ``store_redacted``: touches due before the redaction are not sent;
- ``cart_converted``: touches about the converted cart are not sent (an ``audience_remove``
  touch, the consequence of a conversion, always goes).

Pure: records in, verdicts out. Contacts are kept as salted digests, not in the clear.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from recovery.ids import normalize_email, normalize_phone
from schemas.records import TouchCommand
from senders.compose import AUDIENCE_REMOVE
from senders.decide import Verdict
from senders.outcomes import Outcome

ALL = "all"


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
        self.redacted: dict[str, datetime] = {}
        self.store_redacted: dict[str, datetime] = {}
        self.converted: dict[tuple[str, str], datetime] = {}

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
        return False

    def check(self, command: TouchCommand, channel: str) -> Verdict | None:
        """Why this touch must not go out given what shopper-events said, or None."""
        store = command.store
        removal = channel == "ads" and command.template == AUDIENCE_REMOVE
        redacted_store = self.store_redacted.get(store)
        if redacted_store is not None and command.due_at <= redacted_store:
            return Verdict(Outcome.SUPPRESSED, "the store's data was redacted")
        contact = command.contact
        digests = [
            _digest(store, *ident)
            for ident in _identities(contact.customer_id, contact.email, contact.phone)
            + _identities(None, None, contact.sms_phone)
        ]
        for digest in digests:
            redacted = self.redacted.get(digest)
            if redacted is not None and command.due_at <= redacted:
                return Verdict(Outcome.SUPPRESSED, "the shopper's data was redacted")
        if removal:
            return None
        converted = self.converted.get((store, command.cart))
        if converted is not None:
            return Verdict(Outcome.SUPPRESSED, f"the cart converted at {converted.isoformat()}")
        for digest in digests:
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
