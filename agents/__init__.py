"""Faust agents: they move data between topics, tables and the pure core, and decide nothing.

May import faust, schemas, recovery and streams. Every decision is a call into ``recovery``.
"""

from __future__ import annotations

from agents import carts, shoppers
from agents.output import Output
from streams.app import Pipeline


def register_all(pipeline: Pipeline) -> Pipeline:
    """Add both stages' agents and tables to ``pipeline``'s app (one output they share)."""
    output = Output(pipeline.app)
    carts.register(pipeline, output)
    shoppers.register(pipeline, output)
    return pipeline
