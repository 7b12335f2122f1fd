"""senders.cli: a sender that crashes because its topics were deleted says which are gone."""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path

import pytest

from bus.topics import TopicNames
from senders import cli
from senders.service import SenderConfig
from tests.pipeline.test_startup_worker import delete_topics, layout

# the line aiokafka's consumer raises when a topic it reads is deleted under it
UNRECOGNIZED = "Unrecognized partition"


class CrashingSender:
    """A sender service whose run deletes the topics ``delete`` names, then fails as a
    consumer does once its metadata shows them gone (a deletion reaches Apache Kafka's
    metadata after the delete is answered)."""

    def __init__(self, config: SenderConfig, delete: list[str]) -> None:
        self.config = config
        self.delete = delete

    async def run(self, stop: asyncio.Event) -> None:
        if self.delete:
            await delete_topics(self.config.bootstrap, self.delete)
            async with asyncio.timeout(30):
                while set(self.delete) & set(await layout(self.config.bootstrap)):
                    await asyncio.sleep(0.1)
        raise AssertionError(UNRECOGNIZED)


def config_for(broker, tmp_path: Path) -> SenderConfig:
    return SenderConfig(
        bootstrap=broker.bootstrap,
        names=TopicNames(f"scs-{uuid.uuid4().hex[:8]}-"),
        app_id="cartbands-sender-crash",
        partitions=2,
        outbox_dir=tmp_path,
        channels=("email",),
    )


def sender_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == cli.log.name]


async def test_a_crash_with_the_topics_deleted_names_them(
    broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = config_for(broker, tmp_path)
    gone = [config.names.sender_dedup, config.names.touches("email")]
    with caplog.at_level(logging.CRITICAL, logger=cli.log.name):
        reason = await cli._main(CrashingSender(config, gone))  # type: ignore[arg-type]
    assert reason is not None and reason.startswith("topics missing: ")
    assert all(name in reason for name in gone), reason
    assert sender_lines(caplog) == [f"{reason}; stopping the sender"]


async def test_a_crash_with_the_topics_there_is_reported_as_it_is(
    broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = config_for(broker, tmp_path)
    with caplog.at_level(logging.CRITICAL, logger=cli.log.name):
        reason = await cli._main(CrashingSender(config, []))  # type: ignore[arg-type]
    expected = f"the sender stopped: AssertionError: {UNRECOGNIZED}"
    assert reason == expected
    assert sender_lines(caplog) == [expected]
