"""Create a touch's code before it is delivered; withdraw codes whose plan ended.

:meth:`CodeService.provision` runs in the sender after the last-moment checks and before the
message is composed: a touch carrying a code goes out only once its store has the code
(created now, or found from an earlier attempt and checked to be ours). A permanent refusal
dead-letters the touch at once; transient failures are retried with the store's retry policy
(``delivery.retry``), then the touch fails (dead-lettered too). A store with ``platform: none``
creates nothing: the code is only printed, as before.

:meth:`CodeService.observe` takes each ``shopper-events`` record the sender follows and queues
the removal of the codes it ends (:mod:`senders.codes.ends`); :meth:`CodeService.run` removes
them one at a time, with the same retries, and records each removal in the ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from recovery.code_spec import CodeSpecError, code_spec
from recovery.delivery_policy import RetryPolicy
from recovery.policyset import PolicySet
from schemas.records import TouchCommand
from senders.codes.ends import ended
from senders.codes.ledger import CodeLedger, Issued
from senders.codes.metrics import CODES
from senders.codes.registry import CodeRoutes
from senders.codes.retry import GaveUp, retried
from senders.decide import Verdict
from senders.outcomes import Outcome

log = logging.getLogger(__name__)
RETRY_LATER = 60.0  # seconds before a removal that failed on transient errors is tried again


class CodeService:
    def __init__(
        self,
        routes: CodeRoutes,
        policies: PolicySet,
        ledger: CodeLedger,
        clock: Callable[[], datetime],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.routes = routes
        self.policies = policies
        self.ledger = ledger
        self.clock = clock
        self.sleep = sleep
        self._queue: asyncio.Queue[tuple[Issued, str]] = asyncio.Queue()
        self._queued: set[str] = set()

    def _retry(self, store: str) -> RetryPolicy:
        return self.policies.for_store(store).delivery.retry

    async def provision(self, command: TouchCommand) -> Verdict | None:
        """None when the touch may go on (no code, a printed-only code, or the code exists);
        otherwise why it must not be delivered."""
        incentive = command.incentive
        if incentive is None or not incentive.code:
            return None
        provisioner = self.routes.for_store(command.store)
        if provisioner is None:
            return None
        code = incentive.code
        if self.ledger.was_removed(code):
            return Verdict(
                Outcome.DEAD_LETTERED, f"code {code} was withdrawn: its plan ended; not sent"
            )
        if self.ledger.known(code) is not None:
            return None  # created by an earlier attempt of this touch
        policy = self.policies.for_store(command.store)
        band_min = next((b.min for b in policy.bands if b.name == command.band), None)
        codes = policy.delivery.codes
        contact = command.contact
        try:
            spec = code_spec(
                code=code,
                kind=incentive.kind,
                value=incentive.value,
                service=incentive.service,
                expires_at=incentive.expires_at,
                starts_at=command.due_at,
                currency=policy.currency,
                touch_id=command.touch_id,
                store=command.store,
                shopper=command.shopper,
                cart=command.cart,
                band_min=band_min,
                min_subtotal=codes.min_subtotal,
                restrict_to_shopper=codes.restrict_to_shopper,
                customer_id=contact.customer_id,
                email=contact.email,
            )
        except CodeSpecError as exc:
            return Verdict(Outcome.DEAD_LETTERED, f"code {code}: {exc}")
        if spec is None:
            return None
        what = f"{provisioner.platform} code for {command.touch_id}"
        try:
            made, _ = await retried(
                lambda: provisioner.ensure(spec), self._retry(command.store), what, self.sleep
            )
        except GaveUp as exc:
            failed = "refused" if exc.outcome is Outcome.DEAD_LETTERED else "failed"
            CODES.labels(provisioner.platform, failed).inc()
            return Verdict(exc.outcome, f"code provisioning ({provisioner.platform}): {exc.reason}")
        CODES.labels(provisioner.platform, "created" if made.created else "found").inc()
        issued = Issued(
            code=code,
            store=command.store,
            shopper=command.shopper,
            cart=command.cart,
            platform=provisioner.platform,
            ref=made.ref,
            touch_id=command.touch_id,
            due_at=spec.starts_at.timestamp(),
            expires_at=spec.expires_at.timestamp(),
        )
        await self.ledger.issued(issued, self.clock())
        log.info(
            "%s code for touch %s %s", provisioner.platform, command.touch_id,
            "created" if made.created else "found (created before)",
        )  # fmt: skip
        return None

    def withdraw(self, code: str, why: str) -> None:
        """Queue the removal of a code this sender created (e.g. its touch was not delivered)."""
        issued = self.ledger.known(code)
        if issued is not None:
            self._enqueue(issued, why)

    def observe(self, record: Any) -> None:
        """Queue the removal of the codes a ``shopper-events`` record ends."""
        for issued, why in ended(record, self.ledger):
            self._enqueue(issued, why)

    def _enqueue(self, issued: Issued, why: str) -> None:
        if issued.code not in self._queued:
            self._queued.add(issued.code)
            self._queue.put_nowait((issued, why))

    async def run(self) -> None:
        """Remove queued codes until cancelled."""
        while True:
            issued, why = await self._queue.get()
            try:
                await self._remove(issued, why)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("removing code of touch %s failed", issued.touch_id)
            finally:
                self._queued.discard(issued.code)

    async def _remove(self, issued: Issued, why: str) -> None:
        now = self.clock()
        self.ledger.prune(now)
        if self.ledger.known(issued.code) is None:
            return  # expired meanwhile (the platform ended it), or removed already
        provisioner = self.routes.for_store(issued.store)
        if provisioner is None:
            await self.ledger.gone(issued.code, f"{why}; the store creates no codes now", now)
            return
        what = f"removing {issued.platform} code of {issued.touch_id}"
        try:
            existed, _ = await retried(
                lambda: provisioner.remove(issued.code, issued.ref),
                self._retry(issued.store),
                what,
                self.sleep,
            )
        except GaveUp as exc:
            if exc.outcome is Outcome.FAILED:
                log.warning("%s: %s; trying again in %.0fs", what, exc.reason, RETRY_LATER)
                self._later(issued, why)
                return
            log.warning("%s: %s; given up", what, exc.reason)
            CODES.labels(issued.platform, "not_removed").inc()
            await self.ledger.gone(issued.code, f"{why}; not removed: {exc.reason}", self.clock())
            return
        await self.ledger.gone(issued.code, why, self.clock())
        CODES.labels(issued.platform, "removed").inc()
        log.info("code of touch %s removed (%s)%s", issued.touch_id, why,
                 "" if existed else "; it was gone already")  # fmt: skip

    def _later(self, issued: Issued, why: str) -> None:
        async def again() -> None:
            await self.sleep(RETRY_LATER)
            self._enqueue(issued, why)

        task = asyncio.get_running_loop().create_task(again())
        task.add_done_callback(lambda t: None if t.cancelled() else t.exception())


async def stop(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
