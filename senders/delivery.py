"""Deliver one message with retries: exponential backoff with jitter, Retry-After honoured."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from recovery.delivery_policy import RetryPolicy
from schemas.records import TouchCommand
from senders import metrics
from senders.adapters.base import Adapter
from senders.messages import Message
from senders.outcomes import (
    DeliveryError,
    Outcome,
    PermanentError,
    SuppressedError,
    TransientError,
    next_step,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Attempted:
    outcome: Outcome
    reason: str | None
    provider_id: str | None
    attempts: int


async def deliver_with_retries(
    adapter: Adapter,
    message: Message,
    touch: TouchCommand,
    retry: RetryPolicy,
    channel: str,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    draw: Callable[[], float] = random.random,
) -> Attempted:
    started = time.monotonic()
    attempt = 0
    try:
        while True:
            attempt += 1
            try:
                provider_id = await adapter.deliver(message, touch)
            except SuppressedError as exc:
                metrics.ATTEMPTS.labels(channel, adapter.provider, "permanent").inc()
                return Attempted(Outcome.SUPPRESSED, exc.reason, None, attempt)
            except DeliveryError as exc:
                error: DeliveryError = exc
            except Exception as exc:  # an adapter bug must not kill the channel: retry, then DLQ
                log.exception("adapter %s raised unexpectedly", adapter.provider)
                error = TransientError(f"unexpected {type(exc).__name__}: {exc}")
            else:
                metrics.ATTEMPTS.labels(channel, adapter.provider, "ok").inc()
                return Attempted(Outcome.DELIVERED, None, provider_id, attempt)
            permanent = isinstance(error, PermanentError)
            metrics.ATTEMPTS.labels(
                channel, adapter.provider, "permanent" if permanent else "transient"
            ).inc()
            step = next_step(attempt, error, retry, draw())
            if not step.retry:
                outcome = Outcome.DEAD_LETTERED if permanent else Outcome.FAILED
                return Attempted(outcome, step.reason, None, attempt)
            log.info(
                "touch %s: %s; retry %d in %.2fs",
                touch.touch_id,
                error.reason,
                attempt + 1,
                step.delay,
            )
            await sleep(step.delay)
    finally:
        metrics.LATENCY.labels(channel, adapter.provider).observe(time.monotonic() - started)
