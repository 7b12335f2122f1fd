"""Fixtures for the sender tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sender_helpers import touch_data

from schemas.records import TouchCommand


@pytest.fixture
def make_touch() -> Callable[..., TouchCommand]:
    def build(**overrides: Any) -> TouchCommand:
        return TouchCommand.from_data(touch_data(**overrides))

    return build


@pytest.fixture
async def provider():
    from sender_helpers import FakeProvider

    fake = await FakeProvider().start()
    try:
        yield fake
    finally:
        await fake.stop()
