"""Token buckets: pure refill/take math plus a small asyncio limiter around it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Bucket:
    """``tokens`` available at monotonic time ``at``; holds at most ``burst``."""

    rate: float
    burst: int
    tokens: float
    at: float

    @classmethod
    def full(cls, rate: float, burst: int, now: float) -> Bucket:
        return cls(rate=rate, burst=burst, tokens=float(burst), at=now)

    def refilled(self, now: float) -> Bucket:
        elapsed = max(0.0, now - self.at)
        tokens = min(float(self.burst), self.tokens + elapsed * self.rate)
        return Bucket(self.rate, self.burst, tokens, max(now, self.at))


def take(bucket: Bucket, now: float) -> tuple[Bucket, float]:
    """Take one token at ``now``: the new bucket and how long to wait first (0 if none).

    The token is reserved even when a wait is needed (tokens may go negative), so callers
    that each wait their returned delay are served in order at exactly ``rate``.
    """
    current = bucket.refilled(now)
    tokens = current.tokens - 1.0
    wait = 0.0 if tokens >= 0 else -tokens / current.rate
    return Bucket(current.rate, current.burst, tokens, current.at), wait


class Limiter:
    """Async token bucket shared by everyone sending through one provider account."""

    def __init__(
        self,
        rate: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._bucket = Bucket.full(rate, burst, clock())

    async def acquire(self) -> float:
        """Wait for a token; returns the seconds waited."""
        self._bucket, wait = take(self._bucket, self._clock())
        if wait > 0:
            await self._sleep(wait)
        return wait
