"""Shared helpers of the sender tests: touch command data."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.gateway.helpers import Records, having, read_until

__all__ = [
    "DUE",
    "FakeProvider",
    "Records",
    "answered",
    "first_outcomes",
    "having",
    "only_repeats",
    "read_until",
    "touch_data",
]

DUE = datetime(2026, 11, 2, 16, 0, tzinfo=UTC)


def touch_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "touch_id": "t_0123456789abcdef0123456789abcdef",
        "store": "demo",
        "shopper": "demo:5f2a9c",
        "cart": "chk-high-1",
        "band": "high",
        "step": 1,
        "channel": "email",
        "template": "reminder",
        "due_at": "2026-11-02T16:00:00Z",
        "segment": "new",
        "contact": {
            "email": "Fay@Example.com ",
            "phone": "+1 (212) 555-0100",
            "sms_phone": "+12125550100",
            "first_name": "Fay",
            "email_consent": True,
            "sms_consent": True,
        },
        "cart_summary": {
            "total": "310.00",
            "currency": "USD",
            "items": [{"title": "Espresso <grinder> & co", "quantity": 1, "price": "310.00"}],
        },
        "recovery_url": "https://demo.example.com/checkouts/chk-high-1/recover?a=1&b=2",
        "reason": "band high; segment new",
    }
    data.update(overrides)
    return data


def answered(records: Records) -> dict[str, list[str]]:
    """The outcomes published for each touch id, in the order they were published.

    A touch command read twice (at-least-once consumption, e.g. around a rebalance or a
    consumer restart) is answered twice: its first outcome is what happened, and every later
    one must be ``deduplicated``, never a second delivery.
    """
    out: dict[str, list[str]] = {}
    for record in records:
        out.setdefault(record.value["touch_id"], []).append(record.value["outcome"])
    return out


def first_outcomes(records: Records) -> dict[str, str]:
    """The first outcome of each touch id (see :func:`answered`); later ones are repeats."""
    return {touch: outcomes[0] for touch, outcomes in answered(records).items()}


def only_repeats(records: Records) -> bool:
    """Every outcome after a touch's first one is a de-duplicated repeat."""
    return all(set(outcomes[1:]) <= {"deduplicated"} for outcomes in answered(records).values())


class FakeProvider:
    """A local HTTP server standing in for a provider: records requests, plays responses.

    ``script`` is a list of (status, json body, headers) served in order; when it runs out,
    ``default`` is served. ``hold`` (an asyncio.Event) makes every request wait until set.
    """

    def __init__(self, default: tuple[int, Any, dict[str, str]] | None = None) -> None:
        from aiohttp import web

        self.web = web
        self.requests: list[dict[str, Any]] = []
        self.script: list[tuple[int, Any, dict[str, str]]] = []
        self.default = default or (200, {}, {})
        self.arrived = None  # set to an asyncio.Event to be told of each request
        self.hold = None
        self.runner: Any = None
        self.url = ""

    async def _handle(self, request: Any) -> Any:
        body = await request.read()
        self.requests.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "headers": dict(request.headers),
                "body": body,
            }
        )
        if self.arrived is not None:
            self.arrived.set()
        if self.hold is not None:
            await self.hold.wait()
        status, payload, headers = self.script.pop(0) if self.script else self.default
        return self.web.json_response(payload, status=status, headers=headers)

    async def start(self) -> FakeProvider:
        app = self.web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.runner = self.web.AppRunner(app)
        await self.runner.setup()
        site = self.web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
