"""Run a platform call with the store's delivery retry policy (see :mod:`senders.outcomes`)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from recovery.delivery_policy import RetryPolicy
from senders.outcomes import DeliveryError, Outcome, PermanentError, TransientError, next_step

log = logging.getLogger(__name__)
T = TypeVar("T")


class GaveUp(Exception):
    """The call failed for good: ``outcome`` is ``dead_lettered`` (a permanent error) or
    ``failed`` (transient errors until the retry policy gave up)."""

    def __init__(self, outcome: Outcome, reason: str, attempts: int) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason
        self.attempts = attempts


async def retried(
    call: Callable[[], Awaitable[T]],
    retry: RetryPolicy,
    what: str,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    draw: Callable[[], float] = random.random,
) -> tuple[T, int]:
    """``call()``'s result and the attempts it took; :class:`GaveUp` when it failed for good."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call(), attempt
        except DeliveryError as exc:
            error: DeliveryError = exc
        except Exception as exc:  # a bug must not kill the channel: retry, then give up
            log.exception("%s raised unexpectedly", what)
            error = TransientError(f"unexpected {type(exc).__name__}: {exc}")
        step = next_step(attempt, error, retry, draw())
        if not step.retry:
            permanent = isinstance(error, PermanentError)
            outcome = Outcome.DEAD_LETTERED if permanent else Outcome.FAILED
            raise GaveUp(outcome, step.reason, attempt)
        log.info("%s: %s; retry %d in %.2fs", what, error.reason, attempt + 1, step.delay)
        await sleep(step.delay)
