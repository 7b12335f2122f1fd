"""Last-moment checks before a touch is sent (pure: ``now`` is an argument)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from schemas.records import TouchCommand, TouchResult
from senders.compose import AUDIENCE_REMOVE
from senders.outcomes import Outcome, is_expired

SENDING = "sending"
DONE = "done"
REPORTED = "reported"


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str


def kept_result(state: str, result: dict[str, Any] | None) -> TouchResult | None:
    """The result a ``done`` record kept, to publish again (see :mod:`senders.dedup`), or None.

    A kept result that does not read back as a result (another version's, a damaged record) is
    None: the touch is then answered as a repeat, never sent again.
    """
    if state != DONE or result is None:
        return None
    try:
        kept = TouchResult.from_data(result)
        Outcome(kept.outcome)
    except (TypeError, ValueError, KeyError):
        return None
    return kept if isinstance(kept.at, datetime) else None


def after_previous(state: str, previous_outcome: str | None) -> Verdict:
    """What to answer for a touch id already in the de-dup log, when no result is to be
    published again (:func:`kept_result`); the touch is never sent again.

    ``reported`` (or ``done`` without a readable kept result): deduplicated. ``sending``
    without an outcome: a process stopped between intent and outcome, so the provider may or
    may not have the message; we choose at most once and report ``unknown`` rather than risk a
    second delivery.
    """
    if state in (DONE, REPORTED):
        return Verdict(Outcome.DEDUPLICATED, f"already handled ({previous_outcome or 'done'})")
    return Verdict(
        Outcome.UNKNOWN,
        "an earlier attempt began sending but recorded no outcome; not resent (at most once)",
    )


def precheck(
    command: TouchCommand, channel: str, now: datetime, max_lateness: timedelta | None
) -> Verdict | None:
    """Why this touch must not go out now, or None when it may.

    Lateness applies to what the shopper would see: a stale reminder is worse than none. Taking
    a converted shopper out of a retargeting audience (``audience_remove``) is never stale:
    late is better than showing them ads for what they already bought.
    """
    if command.channel != channel:
        return Verdict(Outcome.DEAD_LETTERED, f"a {command.channel} touch on the {channel} topic")
    removal = channel == "ads" and command.template == AUDIENCE_REMOVE
    if max_lateness is not None and not removal and is_expired(command.due_at, now, max_lateness):
        late = now - command.due_at
        return Verdict(
            Outcome.EXPIRED,
            f"due {command.due_at.isoformat()}, {late} late (max_lateness {max_lateness})",
        )
    if channel == "sms" and not command.contact.sms_consent:
        return Verdict(Outcome.SUPPRESSED, "no SMS consent on record")
    return None
