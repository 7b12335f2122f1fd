"""docker-compose.yml and the Dockerfile, checked without a Docker engine: every command parses
with this CLI and gets its broker and policy from the environment the stack gives it, the
services wait for a healthy Kafka and restart, the image's health probe works against the URL
each service is given, and the demo policy is the default one plus a store the gateway accepts.
"""

from __future__ import annotations

import http.server
import os
import re
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import pytest
import yaml

from cartbands.cli import cli
from config.policyfile import DEFAULT_POLICY, load_policy

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DEMO_POLICY = ROOT / "ops" / "cartbands" / "demo-policy.yaml"
IN_CONTAINER_POLICY = "/etc/cartbands/policy.yaml"
STARTS = {"gateway", "worker", "sender"}


def services() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def cartbands_services() -> dict[str, dict[str, Any]]:
    return {
        name: spec
        for name, spec in services().items()
        if isinstance(spec.get("command"), str) and spec["command"].startswith("cartbands ")
    }


def args_of(spec: dict[str, Any]) -> list[str]:
    return shlex.split(spec["command"])[1:]


def mounted_policy(spec: dict[str, Any]) -> Path:
    """The host file the service sees at IN_CONTAINER_POLICY."""
    for volume in spec.get("volumes", ()):
        source, _, rest = volume.partition(":")
        if rest.split(":")[0] == IN_CONTAINER_POLICY:
            return ROOT / source
    raise AssertionError(f"no policy mounted at {IN_CONTAINER_POLICY}")


def test_the_stack_runs_gateway_workers_and_senders() -> None:
    assert {args_of(spec)[0] for spec in cartbands_services().values()} == STARTS


def test_every_command_parses_with_the_broker_and_policy_of_its_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, spec in cartbands_services().items():
        env = {key: str(value) for key, value in spec["environment"].items()}
        assert env["CARTBANDS_BROKER"] == "kafka://kafka:9092", name
        assert env["CARTBANDS_POLICY"] == IN_CONTAINER_POLICY, name
        env["CARTBANDS_POLICY"] = str(mounted_policy(spec))
        for key in [k for k in os.environ if k.startswith("CARTBANDS_")]:
            monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        args = [str(tmp_path / "out") if a.startswith("/var/lib/") else a for a in args_of(spec)]
        command = cli.commands[args[0]]
        try:
            context = command.make_context(args[0], args[1:])
        except click.UsageError as exc:  # pragma: no cover - the failure message
            raise AssertionError(f"service {name}: {exc.format_message()}") from exc
        assert context.params["broker_url"] == "kafka://kafka:9092", name
        assert context.params["policy"] == str(DEMO_POLICY), name
        load_policy(context.params["policy"])  # valid


def test_cartbands_services_wait_for_a_healthy_kafka_and_restart() -> None:
    kafka = services()["kafka"]
    assert kafka["healthcheck"]["test"][0] == "CMD"
    assert kafka["restart"] == "unless-stopped"
    for name, spec in cartbands_services().items():
        assert spec["depends_on"] == {"kafka": {"condition": "service_healthy"}}, name
        assert spec["restart"] == "unless-stopped", name


def test_kafka_advertises_a_listener_for_the_containers_and_one_for_the_host() -> None:
    env = services()["kafka"]["environment"]
    advertised = dict(item.split("://") for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    listeners = dict(item.split("://") for item in env["KAFKA_LISTENERS"].split(","))
    assert advertised == {"INTERNAL": "kafka:9092", "HOST": "localhost:9094"}
    assert listeners["INTERNAL"] == ":9092" and listeners["HOST"] == ":9094"
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] == "INTERNAL"
    assert "9094:9094" in services()["kafka"]["ports"]
    for name, spec in cartbands_services().items():  # the containers use the internal one
        assert spec["environment"]["CARTBANDS_BROKER"].endswith("//kafka:9092"), name


def test_kafka_keeps_its_log_on_a_volume() -> None:
    spec = yaml.safe_load(COMPOSE.read_text())
    kafka = spec["services"]["kafka"]
    log_dir = kafka["environment"]["KAFKA_LOG_DIRS"]
    volume = next(v.split(":")[0] for v in kafka["volumes"] if v.split(":")[1] == log_dir)
    assert volume in spec["volumes"]


def test_the_demo_policy_is_the_default_one_plus_a_store_the_gateway_accepts() -> None:
    demo = yaml.safe_load(DEMO_POLICY.read_text())
    store = demo["stores"].pop("demo")
    assert demo == yaml.safe_load(DEFAULT_POLICY.read_text())
    token_env = store["ingest"]["generic"]["token_env"]
    gateway = next(s for s in cartbands_services().values() if args_of(s)[0] == "gateway")
    assert set(token_env) <= set(gateway["environment"])
    assert "demo" in load_policy(DEMO_POLICY).stores


def test_every_variable_the_stack_requires_is_documented() -> None:
    text = COMPOSE.read_text()
    required = set(re.findall(r"\$\{(\w+):\?", text))
    assert {"CARTBANDS_CODE_SECRET", "CARTBANDS_DEMO_TOKEN"} <= required
    header = text.split("\nx-", 1)[0]
    readme = (ROOT / "README.md").read_text()
    for name in required:
        assert name in header, name
        assert f"{name}=" in readme, name


def dockerfile_runtime_stage() -> list[str]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    stages = re.split(r"^FROM ", text, flags=re.MULTILINE)
    return [line.strip() for line in stages[-1].splitlines() if line.strip()]


def test_the_image_runs_as_an_unprivileged_user() -> None:
    users = [line.split()[1] for line in dockerfile_runtime_stage() if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")


def health_command() -> list[str]:
    line = next(line for line in dockerfile_runtime_stage() if line.startswith("HEALTHCHECK "))
    command = yaml.safe_load(line.split(" CMD ", 1)[1])  # the exec form is a JSON array
    assert command[:2] == ["python", "-c"]
    return command


class Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path in ("/readyz", "/metrics") else 503)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        return


@pytest.fixture
def answering() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def probe(url: str) -> int:
    command = [sys.executable, *health_command()[1:]]
    env = {**os.environ, "CARTBANDS_HEALTH_URL": url}
    return subprocess.run(command, env=env, capture_output=True, timeout=30).returncode


def test_the_health_probe_of_each_service_hits_the_port_it_serves(answering: int) -> None:
    for name, spec in cartbands_services().items():
        url = urlsplit(spec["environment"]["CARTBANDS_HEALTH_URL"])
        args = args_of(spec)
        served = args[args.index("--port" if args[0] == "gateway" else "--metrics-port") + 1]
        assert url.port == int(served), name
        assert url.path == "/readyz", name  # each service says whether it can do its work
        assert probe(url._replace(netloc=f"127.0.0.1:{answering}").geturl()) == 0, name
    assert probe(f"http://127.0.0.1:{answering}/not-ready") != 0  # 503: unhealthy
    with_default = dockerfile_runtime_stage()
    assert any("CARTBANDS_HEALTH_URL=http://127.0.0.1:8080/readyz" in line for line in with_default)
