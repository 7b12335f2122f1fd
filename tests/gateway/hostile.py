"""A gateway on loopback with an in-memory output, raw HTTP requests, and captured logs.

For tests that send what no HTTP client library would (non-UTF-8 and control bytes in
headers) and check every answer, dead letter, metric and log line, without a broker: the
output serializes each record with the topics' codec, so a record the broker path could not
write fails here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bus.topics import TopicNames
from config.policyfile import load_policy
from gateway.app import Gateway
from gateway.bigcommerce_api import BigCommerceApi
from gateway.cli import bound_port, serve
from gateway.config import StoreIngest, build_config
from gateway.emit import Emit
from gateway.output import Output
from schemas.codec import dumps
from tests.gateway.helpers import ENV, write_policy


class MemoryOutput(Output):
    """Keeps what it is given; every record goes through the topics' JSON codec."""

    def __init__(self) -> None:
        super().__init__("memory:0", TopicNames("memory-"))
        self.sent: list[Emit] = []

    async def start(self, wait: bool = False) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def ready(self) -> bool:
        return True

    async def send(self, emits: Sequence[Emit]) -> None:
        for emit in emits:
            dumps(emit.value)
            emit.key.encode()
        self.sent.extend(emits)


class CannedBigCommerce(BigCommerceApi):
    """Answers every cart and order request with ``resource`` (``None``: not found)."""

    def __init__(self) -> None:
        super().__init__()
        self.resource: Any = None

    async def get_cart(self, store: StoreIngest, cart_id: str) -> Any | None:
        return self.resource

    async def get_order(self, store: StoreIngest, order_id: str) -> Any | None:
        return self.resource

    async def close(self) -> None:
        return None


class Captured(logging.Handler):
    """Every log record of the process, formatted with its traceback, as text."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@dataclass
class Answer:
    status: int
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Hostile:
    port: int
    gateway: Gateway
    output: MemoryOutput
    api: CannedBigCommerce
    logs: Captured
    answers: list[Answer] = field(default_factory=list)

    def send(self, path: str, headers: Sequence[tuple[bytes, bytes]], body: bytes) -> Answer:
        """POST ``body`` with exactly these header bytes; the answer (the server closes)."""
        own_host = any(name.lower() == b"host" for name, _ in headers)
        head = [
            f"POST {path} HTTP/1.1".encode(),
            *([] if own_host else [b"Host: 127.0.0.1"]),
            b"Connection: close",
            b"Content-Length: " + str(len(body)).encode(),
            *(name + b": " + value for name, value in headers),
        ]
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as conn:
            # refused before the whole body was read: the answer is still there
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                conn.sendall(b"\r\n".join(head) + b"\r\n\r\n" + body)
            received = b""
            while chunk := conn.recv(65536):
                received += chunk
        status_line, _, rest = received.partition(b"\r\n")
        _, _, payload = rest.partition(b"\r\n\r\n")
        answer = Answer(int(status_line.split()[1]), payload)
        self.answers.append(answer)
        return answer

    def count(self, metric: str) -> float:
        """The sum of a counter over all its labels."""
        total = 0.0
        for family in self.gateway.metrics.registry.collect():
            for sample in family.samples:
                if sample.name == metric:
                    total += sample.value
        return total

    def dead_letters(self) -> list[dict[str, Any]]:
        return [e.value for e in self.output.sent if e.stream == "ingest_dlq"]


@contextmanager
def hostile_gateway(directory: Path, max_body: int = 16 * 1024) -> Iterator[Hostile]:
    """The gateway of the tests' policy on its own loop in a thread, logs captured."""
    config = build_config(load_policy(write_policy(directory / "policy.yaml")), ENV)
    output = MemoryOutput()
    api = CannedBigCommerce()
    gateway = Gateway(config, output, max_body=max_body, bigcommerce_api=api)
    logs = Captured()
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", "aiohttp", "gateway")}
    root.addHandler(logs)
    for name in levels:
        logging.getLogger(name).setLevel(logging.DEBUG)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict[str, Any] = {}

    def run() -> None:
        asyncio.set_event_loop(loop)

        async def start() -> None:
            holder["runner"] = await serve(gateway, "127.0.0.1", 0)
            started.set()

        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        assert started.wait(60), "gateway did not start"
        yield Hostile(bound_port(holder["runner"]), gateway, output, api, logs)
    finally:
        if "runner" in holder:
            asyncio.run_coroutine_threadsafe(holder["runner"].cleanup(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(60)
        loop.close()
        root.removeHandler(logs)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
