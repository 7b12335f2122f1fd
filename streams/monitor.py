"""Faust's main sensor, reduced to what the worker reads from it.

Faust installs ``app.monitor`` as a sensor of every app and calls it several times per message:
when a message is fetched, when a stream takes and releases its event, when the message is
acknowledged, on every table read and write and every send. The default ``faust.sensors.Monitor``
counts and times all of it (per topic, per stream, per task, per table) for Faust's web
statistics pages, which the worker does not serve (``web_enabled=False``); our metrics are
Prometheus' (telemetry/), which read from the monitor only the offsets the lag gauge needs
(telemetry/lag.py: ``tp_read_offsets``, ``tp_committed_offsets``).

:class:`OffsetsMonitor` keeps those two mappings, the fetch high-water marks and each
partition's last stream activity (Faust's own slow-processing warning reads it), and makes
every other per-message hook a no-op. Rebalance, assignment and commit hooks, rare, are the
default Monitor's.
"""

from __future__ import annotations

from time import monotonic
from typing import Any

from faust.sensors import Monitor


class OffsetsMonitor(Monitor):
    """``app.monitor`` without the per-message statistics (``Monitor=`` app setting)."""

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        self.tp_read_offsets[tp] = offset

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        self.stream_inbound_time[tp] = monotonic()

    def on_stream_event_out(
        self, tp: Any, offset: int, stream: Any, event: Any, state: Any = None
    ) -> None:
        return None

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_topic_buffer_full(self, tp: Any) -> None:
        return None

    def on_table_get(self, table: Any, key: Any) -> None:
        return None

    def on_table_set(self, table: Any, key: Any, value: Any) -> None:
        return None

    def on_table_del(self, table: Any, key: Any) -> None:
        return None

    def on_send_initiated(
        self, producer: Any, topic: str, message: Any, keysize: int, valsize: int
    ) -> None:
        return None

    def on_send_completed(self, producer: Any, state: Any, metadata: Any) -> None:
        return None

    def on_send_error(self, producer: Any, exc: BaseException, state: Any) -> None:
        return None
