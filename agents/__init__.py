"""Faust agents: they move data between topics, tables and the pure core, and decide nothing.

May import faust, schemas, recovery and streams. Every decision is a call into ``recovery``.
"""

from __future__ import annotations

from typing import Any

from agents import carts, shoppers
from agents.output import Output
from streams.app import Pipeline

# how often the input offsets settled since are committed
COMMIT_EVERY = 0.5


def register_all(pipeline: Pipeline) -> Pipeline:
    """Add both stages' agents and tables to ``pipeline``'s app (one output they share), and
    the commits of their input offsets (agents/inputs.py)."""
    output = Output(pipeline.app)
    carts.register(pipeline, output)
    shoppers.register(pipeline, output)

    @pipeline.app.timer(COMMIT_EVERY)
    async def commit_inputs() -> None:
        await output.commit()

    @pipeline.app.on_partitions_revoked.connect  # type: ignore[arg-type]
    def _revoked(sender: Any, *args: Any, **kwargs: Any) -> None:
        output.drop_commits()

    return pipeline
