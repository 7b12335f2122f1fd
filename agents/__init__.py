"""Faust agents: they move data between topics, tables and the pure core, and decide nothing.

May import faust, schemas, recovery and streams. Every decision is a call into ``recovery``.
"""

from __future__ import annotations

from typing import Any

from agents import carts, shoppers
from agents.output import Output
from bus.topics import STAGES
from streams.app import Pipeline

# how often the input offsets settled since are committed
COMMIT_EVERY = 0.5


def register_all(pipeline: Pipeline, stage: str = "both") -> Pipeline:
    """Add the agents and tables of ``stage`` (``bus.topics.STAGES``: stage A's ``checkouts``
    table, stage B's ``shoppers`` and ``watermarks``, or all three) to ``pipeline``'s app (one
    output they share), and the commits of their input offsets (agents/inputs.py).

    The stages meet only on topics (stage A's records and ticks on ``shopper-events``, stage
    B's erasures on ``cart-events``), so each can run in its own consumer group."""
    if stage not in STAGES:
        raise ValueError(f"stage: one of {', '.join(STAGES)}, not {stage!r}")
    output = Output(pipeline.app)
    if stage in ("both", "a"):
        carts.register(pipeline, output)
    if stage in ("both", "b"):
        shoppers.register(pipeline, output)

    @pipeline.app.timer(COMMIT_EVERY)
    async def commit_inputs() -> None:
        await output.commit()

    @pipeline.app.on_partitions_revoked.connect  # type: ignore[arg-type]
    def _revoked(sender: Any, *args: Any, **kwargs: Any) -> None:
        output.drop_commits()

    return pipeline
