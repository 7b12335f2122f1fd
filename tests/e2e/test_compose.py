"""docker-compose.yml runs real cartbands commands that this version of the CLI accepts."""

from __future__ import annotations

import shlex
from pathlib import Path

import click
import yaml

from cartbands.cli import cli

ROOT = Path(__file__).resolve().parents[2]


def commands() -> dict[str, list[str]]:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    return {
        name: shlex.split(spec["command"])[1:]
        for name, spec in services.items()
        if isinstance(spec.get("command"), str) and spec["command"].startswith("cartbands ")
    }


def test_the_stack_runs_gateway_workers_and_senders() -> None:
    found = {args[0] for args in commands().values()}
    assert found == {"gateway", "worker", "sender"}


def test_every_compose_command_parses(tmp_path: Path) -> None:
    policy = ROOT / "policies" / "default.yaml"
    for name, args in commands().items():
        args = [str(policy) if a == "/etc/cartbands/policy.yaml" else a for a in args]
        args = [str(tmp_path / "outbox") if a.startswith("/var/lib/") else a for a in args]
        command = cli.commands[args[0]]
        try:
            command.make_context(args[0], args[1:])
        except click.UsageError as exc:  # pragma: no cover - the failure message
            raise AssertionError(f"service {name}: {exc.format_message()}") from exc
