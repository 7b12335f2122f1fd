"""Tests that need a real Apache Kafka: what tansu cannot show (../shared/BROKER.md quirks).

They use the session ``broker`` fixture, which is Apache Kafka under ``make test-kafka``
(``CARTBANDS_TEST_BROKER=kafka``); on tansu they are skipped before any broker starts.
"""

from __future__ import annotations

import os

import pytest

ON_KAFKA = os.environ.get("CARTBANDS_TEST_BROKER") == "kafka"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if ON_KAFKA:
        return
    skip = pytest.mark.skip(reason="needs Apache Kafka: make test-kafka")
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(skip)
