"""The worker's Faust monitor: what the lag gauge and Faust's own warnings read, no more."""

from __future__ import annotations

from config.policyfile import load_policy
from streams.app import create_app
from streams.monitor import OffsetsMonitor


def test_the_app_uses_the_lean_monitor() -> None:
    pipeline = create_app(broker="kafka://127.0.0.1:9", policies=load_policy())
    assert isinstance(pipeline.app.monitor, OffsetsMonitor)


def test_the_monitor_keeps_what_the_lag_gauge_reads() -> None:
    monitor = OffsetsMonitor()
    monitor.on_message_in("tp", 41, object())
    monitor.on_tp_commit({"tp": 40})
    assert monitor.tp_read_offsets == {"tp": 41}
    assert monitor.tp_committed_offsets == {"tp": 40}
