"""A worker that cannot do its work says so and exits non-zero; it never idles looking healthy
(invariant 10). Real ``cartbands worker`` processes against the embedded broker."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from bus.kafka import ensure_topics, produce
from cartbands.broker import EmbeddedBroker, free_port
from cartbands.processes import stop, tail
from tests.conftest import ROOT, Workers

EXIT_WITHIN = 45.0  # seconds: start-up, a topic check or a crash, and Faust's shutdown


def wait_exit(process: subprocess.Popen[bytes], timeout: float = EXIT_WITHIN) -> int | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = process.poll()
        if code is not None:
            return code
        time.sleep(0.2)
    return None


def readyz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def wait_ready(port: int, process: subprocess.Popen[bytes], timeout: float = 40.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if readyz(port) == 200:
            return True
        time.sleep(0.3)
    return False


def wait_not_ready(port: int, process: subprocess.Popen[bytes], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if readyz(port) == 503:
            return True
        time.sleep(0.2)
    return False


async def layout(bootstrap: str) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        cluster = await admin._client.fetch_all_metadata()
        return {t: len(cluster.partitions_for_topic(t) or ()) for t in cluster.topics()}
    finally:
        await admin.close()


async def delete_topics(bootstrap: str, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics(names)
    finally:
        await admin.close()


def test_worker_refuses_topics_with_another_partition_count(
    workers: Workers, fast_policy: Path
) -> None:
    # the topics exist with 4 partitions (as a broker's auto-creation left them), the worker
    # is told 8: it used to start, its agents crashed on 'Unrecognized partition' and the
    # process stayed up, emitting nothing
    process = workers.start(fast_policy, "--partitions", "8")
    code = wait_exit(process)
    log = workers.logs()
    assert code is not None and code != 0, log
    last = [line for line in tail(workers.processes[0][1]).splitlines() if line.strip()][-1]
    assert f"{workers.names.cart_events} has 4 partitions, not 8" in last, log
    assert "Traceback" not in log


def run_crashing_worker(
    broker: EmbeddedBroker, tmp_path: Path, fast_policy: Path, kind: str
) -> tuple[int | None, str]:
    """``tests.pipeline.crashing_worker`` with a crash of ``kind``: (exit code, log)."""
    pool = Workers(broker, tmp_path)
    crash_topic = f"{pool.names.prefix}crash-me"
    asyncio.run(ensure_topics(broker.bootstrap, [crash_topic], pool.partitions))
    asyncio.run(produce(broker.bootstrap, crash_topic, [("k", {"any": "record"})]))
    log_path = tmp_path / "crashing-worker.log"
    env = {
        **os.environ,
        "CARTBANDS_BROKER": broker.url,
        "CARTBANDS_POLICY": str(fast_policy),
        "CARTBANDS_APP_ID": pool.app_id,
        "CARTBANDS_TOPIC_PREFIX": pool.names.prefix,
        "CARTBANDS_PARTITIONS": str(pool.partitions),
        "CARTBANDS_STATE_DIR": str(tmp_path / "state"),
        "CRASH_TOPIC": crash_topic,
        "CRASH_KIND": kind,
    }
    with log_path.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.pipeline.crashing_worker"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        code = wait_exit(process)
        return code, tail(log_path, 8000)
    finally:
        stop(process)


def test_worker_exits_when_an_agent_dies(
    broker: EmbeddedBroker, tmp_path: Path, fast_policy: Path
) -> None:
    code, log = run_crashing_worker(broker, tmp_path, fast_policy, "agent")
    # Faust's default supervisor restarted the agent and the process stayed up
    assert code is not None and code != 0, log
    assert "agent crash_on_first_record died (RuntimeError: an agent failed on purpose)" in log


def test_worker_exits_when_a_timer_crashes_the_app(
    broker: EmbeddedBroker, tmp_path: Path, fast_policy: Path
) -> None:
    # e.g. the wall clock's ship to a partition the broker no longer has: Faust logged the
    # crash and the process stayed up, consuming nothing
    code, log = run_crashing_worker(broker, tmp_path, fast_policy, "timer")
    assert code is not None and code != 0, log
    assert "a timer failed on purpose" in log


def test_worker_stops_when_its_topics_are_gone(workers: Workers, fast_policy: Path) -> None:
    port = free_port()
    process = workers.start(fast_policy, "--metrics-port", str(port))
    assert wait_ready(port, process), workers.logs()
    # as after a broker restarted without its data: what the worker reads and writes is gone
    asyncio.run(delete_topics(workers.broker.bootstrap, list(workers.names.pipeline_topics)))
    assert wait_not_ready(port, process), workers.logs()  # says so before it stops
    code = wait_exit(process)
    assert code is not None and code != 0, workers.logs()
    log = workers.processes[0][1].read_text(errors="replace")
    # the periodic check finds them gone, or a ship to one of them fails first (aiokafka finds
    # no partition on Apache Kafka, tansu refuses the batch with its error -1) and the crash's
    # check names them: missing, or (Apache Kafka creates a topic again when a client asks for
    # it) back with the broker's default partition count
    said = [
        line
        for line in log.splitlines()
        if "cartbands.worker" in line
        and "stopping the worker" in line
        and ("topics missing: " in line or f" partitions, not {workers.partitions}" in line)
    ]
    assert said, workers.logs()


def test_worker_waits_for_the_broker_without_a_traceback(tmp_path: Path, fast_policy: Path) -> None:
    port = free_port()
    url = f"kafka://127.0.0.1:{port}"
    log_path = tmp_path / "worker.log"
    args = [
        sys.executable, "-m", "cartbands", "worker", "--broker", url, "--policy",
        str(fast_policy), "--partitions", "2", "--topic-prefix", "wait-", "--app-id", "wait",
        "--state-dir", str(tmp_path / "state"),
    ]  # fmt: skip
    with log_path.open("ab") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    try:
        time.sleep(4)
        assert process.poll() is None, tail(log_path)
        waiting = [line for line in tail(log_path).splitlines() if "not reachable yet" in line]
        assert len(waiting) >= 2, tail(log_path)
        assert "Traceback" not in tail(log_path, 20000)
        with EmbeddedBroker(port):
            deadline = time.monotonic() + 30
            found: dict[str, int] = {}
            while time.monotonic() < deadline:
                found = asyncio.run(layout(f"127.0.0.1:{port}"))
                if found.get("wait-cart-events") == 2 and found.get("wait-touches.email") == 2:
                    break
                time.sleep(0.5)
            assert found.get("wait-cart-events") == 2, (found, tail(log_path))
            assert process.poll() is None, tail(log_path)
    finally:
        stop(process)
