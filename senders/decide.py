"""Last-moment checks before a touch is sent (pure: ``now`` is an argument)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from schemas.records import TouchCommand
from senders.compose import AUDIENCE_REMOVE
from senders.outcomes import Outcome, is_expired

SENDING = "sending"
DONE = "done"


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str


def after_previous(state: str, previous_outcome: str | None) -> Verdict:
    """A touch id already in the de-dup log is never sent again.

    ``done``: deduplicated. ``sending`` without an outcome: a process stopped between intent
    and outcome, so the provider may or may not have the message; we choose at most once and
    report ``unknown`` rather than risk a second delivery.
    """
    if state == DONE:
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
