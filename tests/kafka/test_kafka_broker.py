"""cartbands/kafka_broker.py and ``cartbands broker --kafka``."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import signal
import socket
import time
import uuid
from pathlib import Path

import pytest

from bus.kafka import drain, ensure_topics, produce
from cartbands.broker import BrokerError, make_broker, wait_ready
from cartbands.kafka_broker import KafkaBroker, cluster_id, kafka_classpath, server_properties
from cartbands.processes import spawn, stop, tail


def test_server_properties_name_one_combined_node_on_the_given_ports(tmp_path):
    text = server_properties(9101, 9102, tmp_path, {"log.cleaner.backoff.ms": "500"})
    settings = dict(line.split("=", 1) for line in text.splitlines())
    assert settings["process.roles"] == "broker,controller"
    assert settings["listeners"] == "PLAINTEXT://127.0.0.1:9101,CONTROLLER://127.0.0.1:9102"
    assert settings["controller.quorum.bootstrap.servers"] == "127.0.0.1:9102"
    assert settings["log.dirs"] == str(tmp_path)
    assert settings["offsets.topic.replication.factor"] == "1"
    assert settings["transaction.state.log.replication.factor"] == "1"
    assert settings["log.cleaner.backoff.ms"] == "500"  # an override wins


def test_cluster_ids_are_16_random_bytes_in_url_safe_base64():
    ids = {cluster_id() for _ in range(50)}
    assert len(ids) == 50
    for value in ids:
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", value)
        assert len(base64.urlsafe_b64decode(value + "==")) == 16


def test_a_cluster_id_never_starts_with_a_dash(monkeypatch):
    # 0xf8 encodes as "-" first: the format command took such an id for an option
    drawn = iter([uuid.UUID(bytes=b"\xf8" + bytes(15)), uuid.UUID(bytes=b"\x10" + bytes(15))])
    monkeypatch.setattr(uuid, "uuid4", lambda: next(drawn))
    assert cluster_id() == base64.urlsafe_b64encode(b"\x10" + bytes(15)).decode().rstrip("=")


def test_without_java_or_maven_a_clear_error_and_nothing_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(BrokerError, match="Apache Kafka needs java and mvn on PATH"):
        kafka_classpath(tmp_path / "cache")
    assert not list((tmp_path / "cache").rglob("resolved"))


def test_unknown_broker_kind_is_refused():
    with pytest.raises(BrokerError, match="unknown broker kind 'redpanda'"):
        make_broker("redpanda")


# stop: a clean shutdown; kill: SIGKILL, as a crash (what was acknowledged is in the files)
@pytest.mark.kafka
@pytest.mark.parametrize("how", ["stop", "kill"])
def test_restarted_broker_keeps_its_topics_and_close_deletes_them(how):
    broker = KafkaBroker()
    try:
        broker.start()
        bootstrap = broker.bootstrap
        asyncio.run(ensure_topics(bootstrap, ["kept"], 2))
        asyncio.run(produce(bootstrap, "kept", [("a", {"n": 1}), ("b", {"n": 2})]))
        getattr(broker, how)()
        assert not broker.running
        broker.start()
        assert broker.bootstrap == bootstrap
        records = asyncio.run(drain(bootstrap, ["kept"], until=2, timeout=30))
        assert sorted(value["n"] for _, _, value in records) == [1, 2]
        data_dir = broker.data_dir
        assert data_dir is not None and data_dir.exists()
    finally:
        broker.close()
    assert not data_dir.exists()


@pytest.mark.kafka
def test_a_bad_setting_fails_the_start_with_kafka_s_own_words():
    broker = KafkaBroker(overrides={"num.partitions": "zero"})
    with pytest.raises(BrokerError) as failure:
        broker.start(timeout=30)
    broker.close()
    assert "num.partitions" in str(failure.value)


def answers(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def started_cli(tmp_path: Path, name: str):
    log = tmp_path / f"{name}.log"
    process = spawn(["broker", "--kafka"], log, env={"TMPDIR": str(tmp_path)})
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and process.poll() is None:
        found = re.search(r"^export CARTBANDS_BROKER=kafka://127\.0\.0\.1:(\d+)$", tail(log), re.M)
        if found:
            return process, log, int(found[1])
        time.sleep(0.2)
    stop(process)
    pytest.fail(f"cartbands broker --kafka printed no export line:\n{tail(log)}")


@pytest.mark.kafka
def test_broker_command_prints_the_export_line_and_cleans_up_on_sigterm(tmp_path):
    process, log, port = started_cli(tmp_path, "broker")
    wait_ready(f"127.0.0.1:{port}", timeout=10)
    assert f"kafka broker ready at kafka://127.0.0.1:{port}" in tail(log)
    assert list(tmp_path.glob("cartbands-kafka-*"))  # its log directory
    assert stop(process) == 0, tail(log)
    assert "broker stopped" in tail(log)
    assert not list(tmp_path.glob("cartbands-kafka-*"))
    assert not answers(port)


@pytest.mark.kafka
def test_kafka_dies_with_a_killed_broker_command(tmp_path):
    process, _log, port = started_cli(tmp_path, "killed")
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 30
    while answers(port) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not answers(port), "Apache Kafka outlived its parent"
