"""Whether this process can do its work now: the ``cartbands_ready`` gauge and ``/readyz``.

Ready means "can persist": the broker answers and every topic the process needs exists with
the expected partition count (and, for a worker, its agents are alive: a dead agent stops the
process). The process's own checks set it; the metrics server answers ``/readyz`` from it.
"""

from __future__ import annotations

import threading

from prometheus_client import Gauge

READY = Gauge(
    "cartbands_ready",
    "1 when this process can do its work (broker reachable, its topics present with the "
    "expected partitions), else 0.",
)


class Readiness:
    """The latest verdict and why; thread-safe (the metrics server reads it from a thread)."""

    def __init__(self, gauge: Gauge | None = READY) -> None:
        self._gauge = gauge
        self._lock = threading.Lock()
        self._ready = False
        self._reason = "starting"
        self._failed = False
        if gauge is not None:
            gauge.set(0)

    def set(self, ready: bool, reason: str = "") -> None:
        with self._lock:
            if self._failed:
                return
            self._ready = ready
            self._reason = "" if ready else (reason or "not ready")
        if self._gauge is not None:
            self._gauge.set(1 if ready else 0)

    def fail(self, reason: str) -> None:
        """Not ready for good: the process is stopping, whatever a later check finds."""
        self.set(False, reason)
        with self._lock:
            self._failed = True

    @property
    def ready(self) -> bool:
        with self._lock:
            return self._ready

    @property
    def reason(self) -> str:
        with self._lock:
            return self._reason


PROCESS = Readiness()
"""This process's readiness, served on ``/readyz`` by :mod:`telemetry.server`."""
