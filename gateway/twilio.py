"""Inbound SMS from Twilio -> consent changes (pure).

STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPT OUT (case-insensitive, trimmed)
withdraw consent on every channel (``channel="all"``: a person who texts STOP wants no
sequence at all); START and UNSTOP grant SMS consent again. Any other text stands for no
record. The record goes to ``shopper-events`` keyed by the shopper key of the sender's phone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from gateway.emit import Emit
from recovery.ids import normalize_phone, shopper_key

STOP_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPT OUT", "OPTOUT"}
)
START_WORDS = frozenset({"START", "UNSTOP"})
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

Keyword = Literal["stop", "start"]


def keyword(body: str) -> Keyword | None:
    text = " ".join(body.split()).upper().rstrip(".!")
    if text in STOP_WORDS:
        return "stop"
    if text in START_WORDS:
        return "start"
    return None


def consent_event(
    store: str, phone: str, message_sid: str, word: Keyword, received_at: datetime
) -> Emit:
    normalized = normalize_phone(phone)
    key = shopper_key(store, phone=normalized)
    if key is None:
        raise ValueError("the sender has no phone number")
    value = {
        "type": "consent_changed",
        "store": store,
        "event_id": f"twilio:{message_sid}",
        "occurred_at": received_at,
        "channel": "all" if word == "stop" else "sms",
        "granted": word == "start",
        "source": "sms_stop" if word == "stop" else "sms_start",
        "phone": normalized,
    }
    return Emit("shopper_events", key, value)
