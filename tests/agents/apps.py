"""The worker's app with its agents and tables, built without a broker (the address is only
read when the app starts): for tests of the tables, their stores and the output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agents import register_all
from config.policyfile import load_policy
from streams.app import Pipeline, create_app


def offline_pipeline(app_id: str, state_dir: Path | None = None, stage: str = "both") -> Pipeline:
    """In memory, or on RocksDB under ``state_dir``; the agents of ``stage``."""
    options: dict[str, Any] = (
        {} if state_dir is None else {"store": "rocksdb://", "state_dir": state_dir}
    )
    return register_all(
        create_app(broker="kafka://127.0.0.1:9", policies=load_policy(), app_id=app_id, **options),
        stage,
    )
