"""``cartbands sender`` checks what it needs before it works and stops when it is gone
(invariant 10): real sender processes against the embedded broker."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from bus.kafka import ensure_topics
from bus.topics import TopicNames
from cartbands.broker import EmbeddedBroker, free_port
from cartbands.processes import spawn, stop, tail
from tests.pipeline.test_startup_worker import (
    delete_topics,
    layout,
    wait_exit,
    wait_not_ready,
    wait_ready,
)


def sender_args(broker_url: str, names: TopicNames, tmp_path: Path, *extra: str) -> list[str]:
    return [
        "sender", "--channel", "email", "--broker", broker_url, "--topic-prefix", names.prefix,
        "--app-id", names.prefix + "app", "--outbox-dir", str(tmp_path / "outbox"),
        "--outbox-only", *extra,
    ]  # fmt: skip


def test_sender_refuses_topics_with_another_partition_count(broker, tmp_path: Path) -> None:
    names = TopicNames(f"snp-{uuid.uuid4().hex[:8]}-")
    asyncio.run(ensure_topics(broker.bootstrap, [names.touches("email")], 4))
    log = tmp_path / "sender.log"
    process = spawn(sender_args(broker.url, names, tmp_path, "--partitions", "2"), log)
    try:
        code = wait_exit(process, 60)
    finally:
        stop(process)
    assert code is not None and code != 0, tail(log)
    last = [line for line in tail(log).splitlines() if line.strip()][-1]
    assert f"{names.touches('email')} has 4 partitions, not 2" in last, tail(log)
    assert "Traceback" not in tail(log, 50_000)


def test_sender_stops_when_its_topics_are_gone(broker, tmp_path: Path) -> None:
    names = TopicNames(f"sng-{uuid.uuid4().hex[:8]}-")
    port = free_port()
    log = tmp_path / "sender.log"
    args = sender_args(
        broker.url, names, tmp_path, "--partitions", "2", "--metrics-port", str(port)
    )
    process = spawn(args, log)
    try:
        assert wait_ready(port, process), tail(log)
        found = asyncio.run(layout(broker.bootstrap))
        assert found.get(names.sender_dedup) == 2 and found.get(names.touch_results) == 2
        asyncio.run(delete_topics(broker.bootstrap, [names.sender_dedup, names.touches("email")]))
        # it says so before it stops; on Apache Kafka a consumer's metadata request may bring
        # the topics back with one partition first, and the sender stops on that at once,
        # sooner than a poll of /readyz can see it not ready
        said = wait_not_ready(port, process)
        code = wait_exit(process, 60)
        assert said or code not in (None, 0), tail(log)
    finally:
        stop(process)
    # the de-dup log is gone: going on could deliver a touch twice
    assert code is not None and code != 0, tail(log)
    assert "stopping the sender" in log.read_text(errors="replace"), tail(log)


@pytest.mark.broker  # starts its own, late
def test_sender_waits_for_the_broker_without_a_traceback(tmp_path: Path) -> None:
    port = free_port()
    names = TopicNames("snw-")
    log = tmp_path / "sender.log"
    url = f"kafka://127.0.0.1:{port}"
    args = [
        sys.executable,
        "-m",
        "cartbands",
        *sender_args(url, names, tmp_path, "--partitions", "2"),
    ]
    with log.open("ab") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    try:
        time.sleep(4)
        assert process.poll() is None, tail(log)
        waiting = [line for line in tail(log).splitlines() if "not reachable yet" in line]
        assert len(waiting) >= 2, tail(log)
        assert "Traceback" not in tail(log, 50_000)
        with EmbeddedBroker(port):
            deadline = time.monotonic() + 30
            found: dict[str, int] = {}
            while time.monotonic() < deadline and found.get(names.touches("email")) != 2:
                found = asyncio.run(layout(f"127.0.0.1:{port}"))
                time.sleep(0.5)
            assert found.get(names.touches("email")) == 2, (found, tail(log))
            assert process.poll() is None, tail(log)
    finally:
        stop(process)
