"""Post canonical events to a running ingest gateway (``POST /events``), as a store would.

Used by ``cartbands run`` to feed its sample through the front door: a 2xx from the gateway
means the broker acknowledged every event of the request.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp

from schemas.codec import dumps
from senders.outcomes import parse_retry_after

MAX_RETRY_AFTER = 30.0  # seconds: a longer hint is not worth waiting for in a demo run


class IngestError(RuntimeError):
    """The gateway refused events or never became ready."""


class IngestClient:
    def __init__(self, base_url: str, token: str, retries: int = 20) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.retries = retries
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> IngestClient:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("use IngestClient as an async context manager")
        return self._session

    async def wait_ready(self, timeout: float = 60.0) -> None:
        """Until ``/readyz`` answers 200 (the gateway is up and reaches the broker)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                async with self.session.get(f"{self.base_url}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
        raise IngestError(f"the gateway at {self.base_url} was not ready after {timeout:.0f}s")

    async def post(self, events: list[dict[str, Any]]) -> None:
        """Post ``events`` as one JSON array; retried on 429 and 503 as a platform would."""
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        body = dumps(events)
        for attempt in range(self.retries):
            async with self.session.post(
                f"{self.base_url}/events", data=body, headers=headers
            ) as response:
                if 200 <= response.status < 300:
                    return
                text = (await response.text())[:500]
                if response.status not in (429, 503):
                    raise IngestError(f"the gateway answered {response.status}: {text}")
                hint = parse_retry_after(response.headers.get("Retry-After"), datetime.now(UTC))
                delay = min(hint or 0.0, MAX_RETRY_AFTER)
            await asyncio.sleep(max(delay, 0.05 * 2 ** min(attempt, 5)))
        raise IngestError(f"the gateway kept answering {response.status}: {text}")
