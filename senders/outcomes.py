"""Pure delivery decisions: outcomes, HTTP status classes, retry schedule, lateness.

No I/O and no clock: ``now`` and random draws come in as arguments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum

from recovery.delivery_policy import RetryPolicy


class Outcome(StrEnum):
    """What happened to a touch; published on ``touch-results`` and counted."""

    DELIVERED = "delivered"
    DEDUPLICATED = "deduplicated"
    UNKNOWN = "unknown"
    FAILED = "failed"
    DEAD_LETTERED = "dead_lettered"
    SUPPRESSED = "suppressed"
    EXPIRED = "expired"


_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_PHONE = re.compile(r"\+\d[\d ().-]{5,}\d")


def without_contacts(text: str) -> str:
    """``text`` with email addresses and international phone numbers masked.

    Providers echo the recipient in their error messages ("The 'To' number +1212... is not
    valid", an SMTP server's refusal of an address); reasons travel to logs, ``touch-results``
    and metrics labels' neighbours, so they carry no personal data.
    """
    return _PHONE.sub("<phone>", _EMAIL.sub("<email>", text))


class DeliveryError(Exception):
    """A provider did not take the message; ``reason`` says why in a few words (contacts
    masked: see :func:`without_contacts`)."""

    def __init__(self, reason: str) -> None:
        reason = without_contacts(reason)
        super().__init__(reason)
        self.reason = reason


class TransientError(DeliveryError):
    """Worth retrying (timeout, 429, 5xx); ``retry_after`` seconds when the provider said."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class PermanentError(DeliveryError):
    """Retrying cannot help (4xx other than 429, an invalid address, a bad template)."""


class SuppressedError(PermanentError):
    """The provider refuses because the recipient opted out (e.g. Twilio 21610 after STOP)."""


@dataclass(frozen=True)
class StatusClass:
    ok: bool
    transient: bool


def classify_status(status: int) -> StatusClass:
    """2xx delivered; 408, 425, 429 and 5xx transient; every other status permanent."""
    if 200 <= status < 300:
        return StatusClass(ok=True, transient=False)
    if status in (408, 425, 429) or status >= 500:
        return StatusClass(ok=False, transient=True)
    return StatusClass(ok=False, transient=False)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date (RFC 9110); None if absent/bad."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


def http_error(status: int, detail: str, retry_after: float | None = None) -> DeliveryError:
    """The error a non-2xx response stands for (call only for non-2xx statuses)."""
    reason = f"HTTP {status}: {detail}"[:500]
    if classify_status(status).transient:
        return TransientError(reason, retry_after)
    return PermanentError(reason)


def backoff_delay(attempt: int, policy: RetryPolicy, draw: float) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): full jitter.

    ``draw`` is a uniform random number in [0, 1); the ceiling grows as base * 2**(attempt-1)
    up to ``max_delay``. Full jitter spreads retries of many senders apart.
    """
    base = policy.base_delay.total_seconds()
    ceiling = min(policy.max_delay.total_seconds(), base * 2 ** (attempt - 1))
    return ceiling * min(max(draw, 0.0), 1.0)


@dataclass(frozen=True)
class RetryStep:
    """After a failed attempt: wait ``delay`` seconds and try again, or give up."""

    retry: bool
    delay: float = 0.0
    reason: str = ""


def next_step(attempt: int, error: DeliveryError, policy: RetryPolicy, draw: float) -> RetryStep:
    """Decide what follows failed attempt ``attempt``.

    Permanent errors stop at once. Transient ones retry until ``max_attempts``; a
    ``Retry-After`` is honoured as given unless it exceeds ``max_delay`` (then waiting would
    hold the channel too long, so the touch fails with that reason).
    """
    if isinstance(error, PermanentError):
        return RetryStep(retry=False, reason=error.reason)
    if attempt >= policy.max_attempts:
        return RetryStep(retry=False, reason=f"gave up after {attempt} attempts: {error.reason}")
    retry_after = error.retry_after if isinstance(error, TransientError) else None
    if retry_after is not None:
        if retry_after > policy.max_delay.total_seconds():
            return RetryStep(
                retry=False,
                reason=f"provider asked to retry after {retry_after:g}s, more than max_delay: "
                f"{error.reason}",
            )
        return RetryStep(retry=True, delay=retry_after)
    return RetryStep(retry=True, delay=backoff_delay(attempt, policy, draw))


def is_expired(due_at: datetime, now: datetime, max_lateness: timedelta) -> bool:
    """A touch more than ``max_lateness`` past its due time is stale: better unsent."""
    return now - due_at > max_lateness
