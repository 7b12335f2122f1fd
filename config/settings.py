"""Process settings: CLI flags override ``CARTBANDS_*`` environment variables override defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

ENV_PREFIX = "CARTBANDS_"


def _as_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {text!r}")


@dataclass(frozen=True)
class Settings:
    broker: str = "kafka://127.0.0.1:9092"
    policy: str | None = None
    state_dir: Path = Path("var/state")
    store: str = "memory://"
    partitions: int = 8
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"
    app_id: str = "cartbands"
    topic_prefix: str = ""
    outbox_dir: Path = Path("var/outbox")
    tick_interval: float = 1.0
    clock: str = "wall"
    log_format: str = "text"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then ``CARTBANDS_<FIELD>`` variables, then non-None ``overrides``."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None:
                continue
            values[f.name] = _convert(f.name, raw)
        settings = cls(**values)
        chosen = {k: v for k, v in overrides.items() if v is not None}
        return replace(settings, **chosen) if chosen else settings

    @property
    def bootstrap(self) -> str:
        """``host:port[,host:port]`` for raw Kafka clients."""
        return ",".join(part.split("://", 1)[-1] for part in self.broker.split(";"))


def _convert(name: str, raw: str) -> Any:
    kind = {f.name: f.type for f in fields(Settings)}[name]
    try:
        if kind in ("int", int):
            return int(raw)
        if kind in ("float", float):
            return float(raw)
        if kind in ("bool", bool):
            return _as_bool(raw)
        if kind in ("Path", Path):
            return Path(raw)
    except ValueError as exc:
        raise ValueError(f"{ENV_PREFIX}{name.upper()}={raw!r}: {exc}") from exc
    return raw
