"""``cartbands worker --metrics-port`` serves /metrics with the consumer lag of its partitions."""

from __future__ import annotations

import re
import socket
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.broker


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            return str(response.read().decode())
    except OSError:
        return None


def test_worker_serves_metrics_with_consumer_lag_per_partition(
    workers: Any, fast_policy: Path
) -> None:
    port = free_port()
    workers.start(fast_policy, "--metrics-port", str(port))
    topic = workers.names.cart_events
    pattern = re.compile(
        r'^cartbands_consumer_lag_messages\{partition="(\d+)",topic="'
        + re.escape(topic)
        + r'"\} (\S+)$',
        re.MULTILINE,
    )
    # The leader's wall-clock ticks reach every cart-events partition, so each one gets read
    # and its lag (high-water mark - next offset) is sampled every few seconds.
    deadline = time.monotonic() + 45
    lags: dict[int, float] = {}
    body = None
    while time.monotonic() < deadline:
        body = scrape(port)
        if body is not None:
            lags = {int(p): float(v) for p, v in pattern.findall(body)}
            if len(lags) == workers.partitions:
                break
        time.sleep(0.5)
    assert body is not None, "the worker never served /metrics\n" + workers.logs()
    assert sorted(lags) == list(range(workers.partitions)), workers.logs()
    assert all(lag >= 0 and lag == int(lag) for lag in lags.values()), lags
    assert "# HELP cartbands_events_total" in body  # the pipeline metrics are registered
    # changelog topics and other apps' topics are never reported
    assert "-changelog" not in "".join(
        line for line in body.splitlines() if line.startswith("cartbands_consumer_lag")
    )
