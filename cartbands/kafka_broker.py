"""A real Apache Kafka broker (KRaft, one node) for tests and local development, without Docker.

Its classpath is resolved once with Maven from Maven Central (``org.apache.kafka:kafka_2.13``
and its dependencies) into a cache directory and reused after that. Each broker formats a
fresh log directory with ``kafka.tools.StorageTool`` as a standalone controller, listens on
free loopback ports (one for clients, one for the controller), is ready once a Kafka client
can fetch metadata, and dies with its parent like the embedded tansu broker.

Unlike tansu it keeps its data on disk: ``stop()`` then ``start()`` restarts the same broker
on the same port with its topics and offsets; leaving the context manager (or ``close()``)
also deletes the log directory it created.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO

from cartbands.broker import BrokerError, BrokerProcess, _die_with_parent, free_port

KAFKA_VERSION = "4.4.0"
SCALA_VERSION = "2.13"
# Kafka logs through SLF4J 1.x; without a binding it would log nothing, not even why it failed.
LOG4J_VERSION = "2.25.5"

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>cartbands</groupId>
  <artifactId>kafka-broker-classpath</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_{scala}</artifactId>
      <version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version>
    </dependency>
  </dependencies>
</project>
"""

_LOG4J2 = """status = error
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.console.ref = console
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = info
"""

# Settings of a single-node broker; anything else is Kafka's default, as in production.
_DEFAULTS: dict[str, str] = {
    "process.roles": "broker,controller",
    "node.id": "1",
    "inter.broker.listener.name": "PLAINTEXT",
    "controller.listener.names": "CONTROLLER",
    "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
    # one replica of every internal topic: there is one broker
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "4",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "transaction.state.log.num.partitions": "4",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    # a group's first member starts at once instead of waiting 3 s for others
    "group.initial.rebalance.delay.ms": "0",
    # the cleaner looks for work every second, so compaction is observable within a test
    "log.cleaner.backoff.ms": "1000",
}

JVM_OPTIONS = (
    "-Xms128m",
    "-Xmx768m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Djava.awt.headless=true",
)


def cache_dir() -> Path:
    """Where the classpath is kept: ``CARTBANDS_CACHE_DIR``, else the user's cache."""
    explicit = os.environ.get("CARTBANDS_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cartbands"


def missing_tools() -> list[str]:
    """The programs a Kafka broker needs that are not on PATH (java, mvn)."""
    return [tool for tool in ("java", "mvn") if shutil.which(tool) is None]


def kafka_classpath(cache: Path | None = None) -> Path:
    """The directory of Kafka's jars, resolved with Maven on first use and cached."""
    home = (cache or cache_dir()) / f"kafka-{SCALA_VERSION}-{KAFKA_VERSION}"
    lib = home / "lib"
    done = home / "resolved"
    if done.exists():
        return lib
    home.mkdir(parents=True, exist_ok=True)
    with (home / "lock").open("w") as lock:
        # two test sessions may resolve at once: the second waits and reuses the first's jars
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            return lib
        missing = missing_tools()
        if missing:
            raise BrokerError(f"Apache Kafka needs {' and '.join(missing)} on PATH")
        # a minute or more on a cold Maven repository: say why nothing seems to happen
        print(f"resolving Apache Kafka {KAFKA_VERSION} with Maven into {home}", file=sys.stderr)
        _resolve(home, lib)
        done.write_text(f"kafka_{SCALA_VERSION} {KAFKA_VERSION}\n")
    return lib


def _resolve(home: Path, lib: Path) -> None:
    pom = home / "pom.xml"
    pom.write_text(_POM.format(scala=SCALA_VERSION, kafka=KAFKA_VERSION, log4j=LOG4J_VERSION))
    staging = home / "lib.partial"
    shutil.rmtree(staging, ignore_errors=True)
    command = [
        "mvn", "-q", "-B", "-f", str(pom),
        "dependency:copy-dependencies", f"-DoutputDirectory={staging}",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = (result.stdout + result.stderr)[-2000:]
        raise BrokerError(f"Maven could not resolve Apache Kafka {KAFKA_VERSION}: {output}")
    shutil.rmtree(lib, ignore_errors=True)
    staging.rename(lib)


def cluster_id() -> str:
    """A random cluster id as Kafka makes one: 16 bytes, URL-safe base64, no padding, and
    never starting with "-", which the format command would take for an option."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def server_properties(
    port: int, controller_port: int, log_dir: Path, overrides: Mapping[str, str] | None = None
) -> str:
    client = f"127.0.0.1:{port}"
    controller = f"127.0.0.1:{controller_port}"
    settings = {
        **_DEFAULTS,
        "listeners": f"PLAINTEXT://{client},CONTROLLER://{controller}",
        "advertised.listeners": f"PLAINTEXT://{client},CONTROLLER://{controller}",
        "controller.quorum.bootstrap.servers": controller,
        "log.dirs": str(log_dir),
        **(overrides or {}),
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


class KafkaBroker(BrokerProcess):
    """An Apache Kafka broker process on ``127.0.0.1:port``; use as a context manager.

    Its data stays across :meth:`stop` and :meth:`kill` then :meth:`start`; :meth:`close`
    deletes the log directory it created.
    """

    kind = "kafka"
    name = "Apache Kafka"
    start_timeout = 60.0
    stop_timeout = 15.0

    def __init__(
        self,
        port: int | None = None,
        log_path: Path | None = None,
        data_dir: Path | None = None,
        overrides: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(port, log_path)
        self.controller_port = free_port()
        self.overrides = dict(overrides or {})
        self._own_dir = data_dir is None
        self.data_dir = data_dir

    def _launch(self, log: IO[bytes]) -> subprocess.Popen[bytes]:
        lib = kafka_classpath()
        if self.data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix="cartbands-kafka-"))
        config = self.data_dir / "server.properties"
        logs = self.data_dir / "logs"
        (self.data_dir / "log4j2.properties").write_text(_LOG4J2)
        if not (logs / "meta.properties").exists():
            config.write_text(
                server_properties(self.port, self.controller_port, logs, self.overrides)
            )
            self._format(lib, config)
        return subprocess.Popen(
            [*self._java(lib), "kafka.Kafka", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
            cwd=self.data_dir,
        )

    def _java(self, lib: Path) -> list[str]:
        assert self.data_dir is not None
        return [
            "java",
            *JVM_OPTIONS,
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
            "-cp",
            f"{lib}/*",
        ]

    def _format(self, lib: Path, config: Path) -> None:
        command = [
            *self._java(lib), "kafka.tools.StorageTool", "format",
            "--cluster-id", cluster_id(), "--standalone", "--config", str(config),
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            output = (result.stdout + result.stderr)[-2000:]
            raise BrokerError(f"kafka.tools.StorageTool format failed: {output}")

    def close(self) -> None:
        """Stop and delete the log directory this broker created."""
        self.stop()
        if self._own_dir and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir = None


@contextlib.contextmanager
def kafka_broker(port: int | None = None) -> Iterator[KafkaBroker]:
    broker = KafkaBroker(port)
    try:
        yield broker.start()
    finally:
        broker.close()
