"""Tests of the Apache Kafka broker and of what only a real Kafka can show (tansu's quirks in
../shared/BROKER.md).

Those that need Kafka (the session ``broker`` fixture, or the ``kafka`` mark for those that
start their own) run under ``make test-kafka`` (``CARTBANDS_TEST_BROKER=kafka``) and are
skipped on tansu before any broker starts; the others run everywhere.
"""

from __future__ import annotations

import os

import pytest

ON_KAFKA = os.environ.get("CARTBANDS_TEST_BROKER") == "kafka"
HERE = os.path.dirname(__file__)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "kafka: starts its own Apache Kafka (make test-kafka)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if ON_KAFKA:
        return
    skip = pytest.mark.skip(reason="needs Apache Kafka: make test-kafka")
    for item in items:
        if not str(item.path).startswith(HERE):
            continue
        if "broker" in getattr(item, "fixturenames", ()) or item.get_closest_marker("kafka"):
            item.add_marker(skip)
