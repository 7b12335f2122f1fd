"""What happens when an agent raises: the worker stops with a non-zero exit code.

Faust's default supervisor restarts a crashed agent, and a restarted agent whose input or
output is broken (e.g. topics with another partition count) dies again or idles: the process
stays up, consumes nothing, and looks healthy (invariant 10). A crash here takes the app down
instead, so the platform restarts the process and an operator sees why. A cancellation (Faust
cancels actors at a rebalance) is not a crash: those actors are restarted as before.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import faust
from mode import OneForOneSupervisor, ServiceT

log = logging.getLogger(__name__)

SHUTDOWN_GRACE = 15.0  # seconds Faust gets to stop cleanly after a crash before a hard exit
CRASH_CHECK_TIMEOUT = 3.0  # seconds each crash check may take before the crash goes on


def exit_after(grace: float = SHUTDOWN_GRACE, code: int = 1) -> None:
    """Exit with ``code`` in ``grace`` seconds if a clean shutdown has not ended the process:
    Faust's stop can hang on a broker that lost the topics. Nothing is lost by the hard exit
    (offsets are committed only after what they produced was acknowledged)."""

    def hard_exit() -> None:
        log.critical("the worker did not stop within %.0fs; exiting", grace)
        logging.shutdown()
        os._exit(code)

    timer = threading.Timer(grace, hard_exit)
    timer.daemon = True
    timer.start()


async def stop_app(app: Any, reason: BaseException) -> None:
    """Crash ``app``: the worker then stops and exits non-zero (:class:`ExitingApp`)."""
    await app.crash(reason)


class ExitingApp(faust.App):
    """A Faust app whose every crash ends the process with a non-zero code.

    Besides a dead agent, a timer or task that raises (a produce to a partition the broker no
    longer has, say) crashes the app; Faust then logs it and may hang in its stop while the
    process stays up, consuming nothing. Each crash tells ``crash_listeners`` (readiness) and
    arms the hard exit once. The first crash also runs ``crash_checks``, each for at most
    CRASH_CHECK_TIMEOUT seconds, so that an operator reads what caused it (topics gone, say)
    rather than only the error it surfaced as.
    """

    crash_listeners: list[Callable[[BaseException], None]]
    crash_checks: list[Callable[[BaseException], Awaitable[None]]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.crash_listeners = []
        self.crash_checks = []
        self._exit_armed = False

    async def crash(self, reason: BaseException) -> None:
        for listener in self.crash_listeners:
            listener(reason)
        try:
            if not self._exit_armed:
                self._exit_armed = True
                exit_after()
                for check in self.crash_checks:
                    try:
                        await asyncio.wait_for(check(reason), CRASH_CHECK_TIMEOUT)
                    except Exception as exc:  # a check must never keep the worker from stopping
                        log.debug("crash check %r failed: %r", check, exc)
        finally:
            # also when the task crashing the app is cancelled during a check
            await super().crash(reason)


class StopOnCrash(OneForOneSupervisor):
    """Restart actors that were cancelled; crash the whole app when one raised."""

    mundane_level = "debug"  # its "Starting..." / "Stopping..." lines say nothing to an operator

    async def restart_services(self, services: list[ServiceT]) -> None:
        died = [s for s in services if not isinstance(s.crash_reason, asyncio.CancelledError)]
        if not died:
            app = getattr(getattr(services[0], "agent", None), "app", None) if services else None
            if app is not None and app.should_stop:
                return  # cancelled because the worker is stopping: nothing to restart
            await super().restart_services(services)
            return
        service = died[0]
        reason = service.crash_reason
        agent = getattr(service, "agent", None)
        name = getattr(agent, "name", None) or repr(service)
        log.critical(
            "agent %s died (%s: %s); stopping the worker",
            name,
            type(reason).__name__,
            str(reason).splitlines()[0][:300] if str(reason) else "",
        )
        app = getattr(agent, "app", None)
        if app is None or reason is None:
            raise SystemExit(1)
        await stop_app(app, reason)
