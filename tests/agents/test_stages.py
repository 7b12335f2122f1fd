"""agents.register_all: a worker runs stage A, stage B or both, each stage alone in its group."""

from __future__ import annotations

import pytest

from agents import register_all
from bus.topics import group_of
from cartbands.worker import needed_topics
from config.policyfile import load_policy
from streams.app import create_app
from tests.agents.apps import offline_pipeline


@pytest.mark.parametrize(
    ("stage", "tables", "sources"),
    [
        ("both", {"checkouts", "shoppers", "watermarks"}, {"cart-events", "shopper-events"}),
        ("a", {"checkouts"}, {"cart-events"}),
        ("b", {"shoppers", "watermarks"}, {"shopper-events"}),
    ],
)
def test_a_stage_has_its_own_tables_and_reads_its_own_topic(
    stage: str, tables: set[str], sources: set[str]
) -> None:
    pipeline = offline_pipeline(f"stages-{stage}", stage=stage)
    assert set(pipeline.app.tables) == tables
    read = {
        topic.removeprefix(pipeline.names.prefix)
        for agent in pipeline.app.agents.values()
        for topic in agent.channel.topics  # type: ignore[attr-defined]
    }
    assert read == sources
    created, changelogs = needed_topics(pipeline)
    # every pipeline topic is made whatever the stage: the other stage's workers read them
    assert set(created) == set(pipeline.names.pipeline_topics)
    assert {name.split("-")[-2] for name in changelogs} == tables


def test_an_unknown_stage_is_refused() -> None:
    app = create_app(broker="kafka://127.0.0.1:9", policies=load_policy())
    with pytest.raises(ValueError, match="stage: one of both, a, b, not 'c'"):
        register_all(app, "c")


def test_a_stage_alone_runs_in_a_group_of_its_own() -> None:
    assert group_of("cartbands", "both") == "cartbands"
    assert group_of("cartbands", "a") == "cartbands-a"
    assert group_of("cartbands", "b") == "cartbands-b"
