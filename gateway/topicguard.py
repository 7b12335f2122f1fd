"""Acknowledge only what landed in a verified topic: readiness means "can persist".

A broker restarted without its data (tansu keeps everything in memory) acknowledges a produce
to a partition of a topic it no longer has, and stores nothing; Apache Kafka auto-creates the
topic with its own partition count. Either way the answer 200 would be a lie. So:

- every few seconds the guard checks that the gateway's topics exist with the expected
  partition count; topics found missing are created again (and checked), a topic with
  another count is fatal (the process exits with a one-line error);
- between a failed check and the next good one the gateway is not ready: ``/readyz`` answers
  503, and so does every request (the platform delivers again later);
- after the broker acknowledged a request's records, one check that *started after* that
  acknowledgement must find the topics, and no check may have failed since the request began
  (the topics may have been created again in between, after its records went nowhere),
  before the request is answered 2xx. Concurrent requests share a check (one metadata request
  per round, rounds back to back), as their records share produce batches, so the cost is a
  round trip per round, not per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from bus.kafka import TopicMismatch, TopicsMissing

log = logging.getLogger(__name__)

CHECK_INTERVAL = 2.0  # seconds between the background checks


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


class Rounds:
    """Run ``check`` in rounds; :meth:`after_now` waits for a round that starts after the call."""

    def __init__(self, check: Callable[[], Awaitable[None]]) -> None:
        self._check = check
        self._next: asyncio.Future[None] | None = None
        self._running: asyncio.Task[None] | None = None

    async def after_now(self) -> None:
        """Return once a round that started after this call passed; raise what it raised."""
        waiting = self._next
        if waiting is None:
            waiting = self._next = asyncio.get_running_loop().create_future()
            waiting.add_done_callback(_retrieve)
            if self._running is None:
                self._start()
        await asyncio.shield(waiting)

    def _start(self) -> None:
        waiting, self._next = self._next, None
        assert waiting is not None
        self._running = asyncio.get_running_loop().create_task(self._round(waiting))

    async def _round(self, waiting: asyncio.Future[None]) -> None:
        try:
            await self._check()
        except Exception as exc:
            if not waiting.done():
                waiting.set_exception(exc)
        else:
            if not waiting.done():
                waiting.set_result(None)
        finally:
            self._running = None
            if self._next is not None:
                self._start()


class TopicGuard:
    """The gateway's verdict on its topics, kept by a background check and by each request."""

    def __init__(
        self,
        check: Callable[[], Awaitable[None]],
        recreate: Callable[[], Awaitable[None]],
        on_fatal: Callable[[str], None],
        interval: float = CHECK_INTERVAL,
    ) -> None:
        self._check = check
        self._recreate = recreate
        self._on_fatal = on_fatal
        self.interval = interval
        self.verified = False
        self.reason = "topics not verified yet"
        self.failures = 0  # checks that failed so far: a request in flight across one is refused
        self._rounds = Rounds(self._checked)
        self._task: asyncio.Task[None] | None = None

    def start(self, verified: bool) -> None:
        """Begin the background checks (``verified``: the topics were just created/checked)."""
        self.verified = verified
        if verified:
            self.reason = ""
        self._task = asyncio.get_running_loop().create_task(self._watch(), name="topic-guard")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def confirm(self, since: int) -> None:
        """After an acknowledgement: raise unless a check started since finds the topics and
        no check failed since ``since`` (the :attr:`failures` seen before producing). The
        second condition covers topics created again (by this guard) between a record
        acknowledged into nothing and the check that followed it."""
        await self._rounds.after_now()
        if self.failures != since:
            raise TopicsMissing("the topics were missing or unverifiable while in flight")

    async def _checked(self) -> None:
        try:
            await self._check()
        except TopicMismatch as exc:
            self._fail(str(exc))
            self._on_fatal(str(exc))
            raise
        except TopicsMissing as exc:
            self._fail(str(exc))
            raise
        except Exception as exc:
            self._fail(f"broker did not answer a metadata request: {type(exc).__name__}")
            raise
        if not self.verified:
            log.info("topics verified again; ready")
        self.verified, self.reason = True, ""

    def _fail(self, reason: str) -> None:
        if self.verified:
            log.warning("not ready: %s", reason)
        self.verified, self.reason = False, reason
        self.failures += 1

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self._rounds.after_now()
            except TopicsMissing:
                try:
                    await self._recreate()
                    log.warning("topics were missing (broker restarted empty?); created again")
                    await self._rounds.after_now()
                except TopicMismatch as exc:
                    self._fail(str(exc))
                    self._on_fatal(str(exc))
                except Exception as exc:
                    log.warning("could not create the missing topics: %s", type(exc).__name__)
            except Exception:  # already recorded as the reason for not being ready
                pass
