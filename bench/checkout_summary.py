"""The checkout summary the state-write references store per cart event.

bench/naive_faust.py writes it to its table and bench/quix_peer.py's ``minimal`` variant to
quixstreams' state, so both references do the same work per event. Imports no Faust: the
quixstreams peer runs in an interpreter without it.
"""

from __future__ import annotations

from typing import Any


def checkout_summary(event: dict[str, Any]) -> dict[str, Any]:
    """What a reference keeps of a decoded cart event, under its checkout's key."""
    return {
        "type": event.get("type"),
        "event_id": event.get("event_id"),
        "occurred_at": event.get("occurred_at"),
        "total": event.get("total"),
        "currency": event.get("currency"),
        "completed": event.get("type") == "cart_completed",
    }
