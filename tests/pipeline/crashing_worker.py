"""``cartbands worker`` plus one agent that raises on its first record (or, with
``CRASH_KIND=timer``, a timer that raises), for the start-up tests.

Run as ``python -m tests.pipeline.crashing_worker`` with the worker's settings in
``CARTBANDS_*`` variables and the extra agent's topic in ``CRASH_TOPIC``: everything else is
the real worker (``cartbands.worker.run_worker``), so the test sees what any crash does.
"""

from __future__ import annotations

import os

from cartbands.worker import run_worker
from config.policyfile import load_policy
from config.settings import Settings
from streams.app import Pipeline


def add_crashing_agent(pipeline: Pipeline) -> None:
    topic = pipeline.app.topic(
        os.environ["CRASH_TOPIC"], key_type=bytes, value_serializer="raw", partitions=None
    )

    @pipeline.app.agent(topic, name="crash_on_first_record")
    async def crash_on_first_record(stream):  # type: ignore[no-untyped-def]
        async for _ in stream:
            raise RuntimeError("an agent failed on purpose")


def add_crashing_timer(pipeline: Pipeline) -> None:
    @pipeline.app.timer(0.5)
    async def crash_on_first_beat() -> None:
        raise RuntimeError("a timer failed on purpose")


if __name__ == "__main__":
    settings = Settings.from_env()
    kind = os.environ.get("CRASH_KIND", "agent")
    customize = add_crashing_timer if kind == "timer" else add_crashing_agent
    run_worker(settings, load_policy(settings.policy), customize=customize)
