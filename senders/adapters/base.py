"""What every adapter offers, the shared HTTP call and credential lookup."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import aiohttp

from schemas.records import TouchCommand
from senders.messages import Message
from senders.outcomes import TransientError, http_error, parse_retry_after


class ConfigError(Exception):
    """An adapter cannot be built (missing credential variable, wrong message kind)."""


class Adapter(Protocol):
    provider: str

    async def deliver(self, message: Message, touch: TouchCommand) -> str | None:
        """Deliver; return the provider's id for the message when it gives one."""
        ...

    async def close(self) -> None: ...


def secret(name: str, environ: Mapping[str, str] | None = None) -> str:
    """The value of environment variable ``name``; :class:`ConfigError` when unset or empty."""
    env = os.environ if environ is None else environ
    value = env.get(name, "")
    if not value:
        raise ConfigError(f"environment variable {name} is not set")
    return value


def basic_auth(user: str, password: str) -> dict[str, str]:
    """An HTTP basic ``Authorization`` header."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}"}


def utcnow() -> datetime:
    return datetime.now(UTC)


class HttpResult:
    def __init__(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        self.status = status
        self.body = body
        self.headers = headers

    def json(self) -> Any:
        import orjson

        try:
            return orjson.loads(self.body) if self.body else None
        except orjson.JSONDecodeError:
            return None


def error_detail(body: bytes) -> str:
    return body[:300].decode("utf-8", errors="replace").strip() or "(empty body)"


async def http_call(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    timeout: float,
    clock: Callable[[], datetime] = utcnow,
    classify: Callable[[HttpResult], Exception | None] | None = None,
    **kwargs: Any,
) -> HttpResult:
    """One HTTP request; network trouble and timeouts are transient, statuses classified.

    ``classify`` may map a provider's error body to a more precise error (or None to use the
    status class).
    """
    try:
        async with session.request(
            method, url, timeout=aiohttp.ClientTimeout(total=timeout), **kwargs
        ) as response:
            body = await response.read()
            result = HttpResult(response.status, body, dict(response.headers))
    except TimeoutError as exc:
        raise TransientError(f"timeout after {timeout:g}s") from exc
    except aiohttp.ClientError as exc:
        raise TransientError(f"{type(exc).__name__}: {exc}") from exc
    if 200 <= result.status < 300:
        return result
    if classify is not None:
        special = classify(result)
        if special is not None:
            raise special
    retry_after = parse_retry_after(result.headers.get("Retry-After"), clock())
    raise http_error(result.status, error_detail(result.body), retry_after)
