"""The HTTP server under the gateway, answering what aiohttp's parser refuses without echo.

aiohttp answers a request it cannot parse (a control character in a header, a bad request
line) from its protocol handler, before any route runs: its answer quotes the offending raw
bytes and its log line carries the parser's exception, and both can hold a whole header such
as ``Authorization: Bearer ...``. Here that answer is a fixed JSON problem naming no input,
the log line names the exception's type only, and the refusal is counted. An exception that
escapes a handler (none should: the gateway's frame turns every input into an answer) is
answered 400 the same way, since no input may get a 5xx.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

log = logging.getLogger(__name__)

Refused = Callable[[str], None]
_UNREADABLE = orjson.dumps({"error": "bad_http", "detail": "the HTTP request cannot be parsed"})
_UNPROCESSABLE = orjson.dumps({"error": "unprocessable", "detail": "the request was refused"})


def _ignore(_: str) -> None:
    return None


class _QuietHandler(RequestHandler):
    refused: Refused = _ignore

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        kind = type(exc).__name__ if exc is not None else "no exception"
        reason = "unprocessable" if status >= 500 else "bad_http"
        log.info("refused a request before routing: %s (%s)", reason, kind)
        self.refused(reason)
        if request.writer.output_size > 0:
            raise ConnectionError("the response was already started")
        response = web.Response(
            status=400 if status >= 500 else status,
            body=_UNPROCESSABLE if status >= 500 else _UNREADABLE,
            content_type="application/json",
        )
        response.force_close()
        return response

    def log_exception(self, *args: Any, **kw: Any) -> None:
        error = kw.get("exc_info")
        kind = type(error).__name__ if isinstance(error, BaseException) else "error"
        log.warning("HTTP connection: %s (%s)", args[0] if args else "error", kind)


class _QuietServer(web.Server):
    refused: Refused = _ignore

    def __call__(self) -> RequestHandler:
        handler = _QuietHandler(self, loop=self._loop, **self._kwargs)
        handler.refused = self.refused
        return handler


class QuietRunner(web.AppRunner):
    """An :class:`aiohttp.web.AppRunner` whose connections answer parser errors quietly;
    ``refused(reason)`` is called for each such refusal (to count it)."""

    def __init__(self, app: web.Application, refused: Refused = _ignore, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._refused = refused

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # The application builds a plain Server; its connections must be quiet handlers, and
        # Server makes them in __call__, so the instance takes the subclass that overrides it.
        server.__class__ = _QuietServer
        assert isinstance(server, _QuietServer)
        server.refused = self._refused
        return server
