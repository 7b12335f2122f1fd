"""streams.supervision: a crash stops the worker, after the checks that say why."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from streams import supervision
from streams.supervision import ExitingApp


@pytest.fixture
async def app(monkeypatch: pytest.MonkeyPatch) -> ExitingApp:
    armed: list[float] = []
    monkeypatch.setattr(supervision, "exit_after", lambda *a, **k: armed.append(1.0))
    monkeypatch.setattr(supervision, "CRASH_CHECK_TIMEOUT", 0.2)
    found = ExitingApp("supervision-test", broker="kafka://127.0.0.1:9")
    found._armed = armed  # type: ignore[attr-defined]
    return found


async def _crash(app: ExitingApp, reason: BaseException, monkeypatch: Any) -> list[str]:
    """Crash ``app``; what reached Faust's own crash (stopping its services: not tested here)."""
    crashed: list[str] = []

    async def faust_crash(self: Any, reason: BaseException) -> None:
        crashed.append(str(reason))

    monkeypatch.setattr(supervision.faust.App, "crash", faust_crash)
    await app.crash(reason)
    return crashed


async def test_the_first_crash_runs_each_check_once_then_stops(
    app: ExitingApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, str]] = []
    heard: list[str] = []

    async def check(name: str, reason: BaseException) -> None:
        seen.append((name, str(reason)))

    app.crash_listeners.append(lambda reason: heard.append(str(reason)))
    app.crash_checks.append(lambda reason: check("a", reason))
    app.crash_checks.append(lambda reason: check("b", reason))
    assert await _crash(app, RuntimeError("ship failed"), monkeypatch) == ["ship failed"]
    assert await _crash(app, RuntimeError("again"), monkeypatch) == ["again"]
    assert seen == [("a", "ship failed"), ("b", "ship failed")]
    assert heard == ["ship failed", "again"]  # readiness hears every crash
    assert app._armed == [1.0]  # type: ignore[attr-defined]


async def test_a_check_that_fails_or_hangs_does_not_keep_the_crash_back(
    app: ExitingApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[str] = []

    async def fails(reason: BaseException) -> None:
        raise ConnectionError("broker gone")

    async def hangs(reason: BaseException) -> None:
        await asyncio.sleep(30)

    async def last(reason: BaseException) -> None:
        ran.append("last")

    app.crash_checks += [fails, hangs, last]
    crashed = await asyncio.wait_for(_crash(app, RuntimeError("x"), monkeypatch), 5.0)
    assert ran == ["last"] and crashed == ["x"]


async def test_a_crash_cancelled_during_its_checks_still_crashes_the_app(
    app: ExitingApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    checking = asyncio.Event()

    async def slow(reason: BaseException) -> None:
        checking.set()
        await asyncio.sleep(30)

    app.crash_checks.append(slow)
    crashed: list[str] = []

    async def faust_crash(self: Any, reason: BaseException) -> None:
        crashed.append(str(reason))

    monkeypatch.setattr(supervision.faust.App, "crash", faust_crash)
    task = asyncio.ensure_future(app.crash(RuntimeError("ship failed")))
    await asyncio.wait_for(checking.wait(), 1.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert crashed == ["ship failed"]
