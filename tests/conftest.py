"""Shared fixtures: the broker (one per session) and a worker process factory.

The broker is the embedded tansu unless ``CARTBANDS_TEST_BROKER=kafka``: then it is a real
Apache Kafka (``cartbands.kafka_broker``) and only the tests that use the ``broker`` fixture
run (``make test-kafka``).
"""

from __future__ import annotations

import ast
import asyncio
import itertools
import os
import pkgutil
import sys
from collections.abc import Iterator
from pathlib import Path
from subprocess import Popen

import pytest

from bus.kafka import ensure_topics
from bus.topics import TopicNames
from cartbands.broker import BROKER_KINDS, Broker, make_broker
from cartbands.processes import spawn, stop, tail

ROOT = Path(__file__).resolve().parent.parent
_app_ids = itertools.count(1)
# Set by `make test-compiled` (.ci/test-compiled): the session must run an installed wheel
# with the core compiled by mypyc, never the sources of this checkout.
EXPECT_COMPILED_CORE = os.environ.get("CARTBANDS_EXPECT_COMPILED_CORE") == "1"
TEST_BROKER = os.environ.get("CARTBANDS_TEST_BROKER") or "tansu"
OWN_PACKAGES = (
    "recovery", "cartbands", "agents", "streams", "gateway", "senders", "telemetry", "bus",
    "config", "schemas",
)  # fmt: skip


def _check_compiled_core(when: str) -> None:
    from cartbands.runtime import compiled_core_modules

    sources = [
        f"{name} ({module.__file__})"
        for name, module in list(sys.modules.items())
        if name.partition(".")[0] in OWN_PACKAGES
        and Path(getattr(module, "__file__", None) or "/").resolve().is_relative_to(ROOT)
    ]
    if sources:
        pytest.exit(f"{when}: imported from the source tree, not the wheel: {sources[:5]}", 1)
    import recovery

    keep = _keep_python()
    expected = {
        info.name
        for info in pkgutil.iter_modules(recovery.__path__, "recovery.")
        if info.name.removeprefix("recovery.") not in keep
    }
    missing = sorted(expected - set(compiled_core_modules()))
    if missing:
        pytest.exit(f"{when}: core modules not compiled: {missing}", 1)


def _keep_python() -> set[str]:
    """The core modules setup.py leaves as Python (its ``KEEP_PYTHON``)."""
    for node in ast.parse((ROOT / "setup.py").read_text()).body:
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "KEEP_PYTHON":
            return set(ast.literal_eval(node.value))
    raise LookupError("setup.py: no KEEP_PYTHON")


def pytest_configure(config: pytest.Config) -> None:
    if TEST_BROKER not in BROKER_KINDS:
        pytest.exit(f"CARTBANDS_TEST_BROKER={TEST_BROKER!r}: expected one of {BROKER_KINDS}", 4)
    if EXPECT_COMPILED_CORE:
        _check_compiled_core("before the tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark ``broker`` every test that uses the session broker (``make test-fast`` runs the
    others); on Apache Kafka, run only those, and tests/kafka."""
    kafka_tests = ROOT / "tests" / "kafka"
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "broker" in fixtures or "workers" in fixtures or item.path.is_relative_to(kafka_tests):
            item.add_marker(pytest.mark.broker)
    if TEST_BROKER == "tansu":
        return
    keep, drop = [], []
    for item in items:
        wanted = "broker" in getattr(item, "fixturenames", ()) or item.path.is_relative_to(
            kafka_tests
        )
        (keep if wanted else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_report_header(config: pytest.Config) -> str:
    return f"broker: {TEST_BROKER} (CARTBANDS_TEST_BROKER)"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if EXPECT_COMPILED_CORE:
        _check_compiled_core("after the tests")


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    """The session's broker (tansu, or Apache Kafka); stopped even when tests fail."""
    local = make_broker(TEST_BROKER)
    local.start()
    try:
        yield local
    finally:
        local.close()


class Workers:
    """Start ``cartbands worker`` processes against the session broker; all stopped at teardown.

    Each test gets its own topic prefix and app id, so tests never see each other's records.
    """

    def __init__(self, broker: Broker, tmp_path: Path, partitions: int = 4) -> None:
        number = next(_app_ids)
        self.broker = broker
        self.tmp_path = tmp_path
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.partitions = partitions
        self.app_id = f"cartbands-test-{number}"
        self.names = TopicNames(f"t{number}-")
        self.processes: list[tuple[Popen[bytes], Path]] = []
        asyncio.run(ensure_topics(broker.bootstrap, self.names.pipeline_topics, partitions))

    def start(self, policy: Path, *extra: str, state: str = "state") -> Popen[bytes]:
        """A worker; workers sharing ``state`` share a state dir (a restart of the same one)."""
        index = len(self.processes)
        log = self.tmp_path / f"worker-{index}.log"
        args = [
            "worker",
            "--broker", self.broker.url,
            "--policy", str(policy),
            "--app-id", self.app_id,
            "--topic-prefix", self.names.prefix,
            "--partitions", str(self.partitions),
            "--state-dir", str(self.tmp_path / state),
            *extra,
        ]  # fmt: skip
        process = spawn(args, log)
        self.processes.append((process, log))
        return process

    def logs(self) -> str:
        return "\n".join(f"--- {log.name}\n{tail(log)}" for _, log in self.processes)

    def stop_all(self) -> None:
        for process, _ in self.processes:
            stop(process)


@pytest.fixture
def workers(broker: Broker, tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(broker, tmp_path)
    try:
        yield pool
    finally:
        pool.stop_all()


@pytest.fixture
def fast_policy() -> Path:
    """Default bands with offsets in seconds, for tests that watch whole sequences."""
    return ROOT / "tests" / "data" / "fast_policy.yaml"
