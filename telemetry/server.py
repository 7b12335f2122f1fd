"""The ``/metrics`` HTTP endpoint: a threaded WSGI server serving a prometheus-client registry."""

from __future__ import annotations

import logging
import socket
import threading
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import REGISTRY, CollectorRegistry, make_wsgi_app

from telemetry.readiness import PROCESS, Readiness

DEFAULT_HOST = "127.0.0.1"

log = logging.getLogger(__name__)


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    """Scrapes arrive every few seconds: do not write an access-log line for each one."""

    def log_message(self, format: str, *args: Any) -> None:
        return


@dataclass
class MetricsServer:
    """A running ``/metrics`` endpoint; ``stop()`` closes the socket and joins the thread."""

    host: str
    port: int
    _httpd: WSGIServer = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def with_readyz(metrics: Any, readiness: Readiness) -> Any:
    """``/readyz`` (200 ``ready`` or 503 with the reason) beside the metrics WSGI app."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ.get("PATH_INFO") == "/readyz":
            ready = readiness.ready
            status = "200 OK" if ready else "503 Service Unavailable"
            body = b"ready\n" if ready else f"not ready: {readiness.reason}\n".encode()
            start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
            return [body]
        return metrics(environ, start_response)

    return app


def serve_metrics(
    port: int = 0,
    host: str = DEFAULT_HOST,
    registry: CollectorRegistry = REGISTRY,
    readiness: Readiness = PROCESS,
) -> MetricsServer:
    """Serve ``registry`` on ``host:port`` (port 0 picks a free one) in a daemon thread, and
    the process's readiness on ``/readyz``.

    Raises ``OSError`` when the port is taken, so a misconfigured process fails at start.
    """
    if not 0 <= port <= 65535:
        raise ValueError(f"metrics port out of range: {port}")
    server_class = _Server6 if ":" in host else _Server
    httpd = make_server(
        host,
        port,
        with_readyz(make_wsgi_app(registry), readiness),
        server_class,
        handler_class=_QuietHandler,
    )
    bound = int(httpd.server_address[1])
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.2}, name="metrics", daemon=True
    )
    thread.start()
    log.info("serving Prometheus metrics on http://%s:%d/metrics", host, bound)
    return MetricsServer(host, bound, httpd, thread)


def start_metrics_server(
    port: int = 0, host: str = DEFAULT_HOST, registry: CollectorRegistry = REGISTRY
) -> int:
    """Serve ``/metrics`` for the life of the process; returns the bound port."""
    return serve_metrics(port, host, registry).port
