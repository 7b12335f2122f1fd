"""A real Prometheus scrapes a real /metrics endpoint and evaluates the shipped rules.

One Prometheus per module (1 s scrape and rule interval, loopback only, TSDB in a temp dir)
scrapes metrics_feeder.py, a fresh process serving telemetry's metrics. The test waits for the
first scrape (every series at zero), has the feeder record known amounts, then asserts through
the HTTP API the raw values, the recording rules of ops/prometheus/rules.yml, and that every
query of the Grafana dashboard parses and returns data.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

FEEDER = Path(__file__).with_name("metrics_feeder.py")
ROOT = FEEDER.parents[2]
DEADLINE = 20.0

# Grafana's variables, replaced by what a user would get with every store selected.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__range": "5m",
    "$__interval": "15s",
    "$store": ".*",
}


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=5) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:  # 400/422 carry the error in a JSON body
            return json.load(exc)

    def query(self, expr: str) -> list[dict[str, Any]]:
        answer = self.api("/api/v1/query", query=expr)
        assert answer["status"] == "success", f"{expr}: {answer.get('error')}"
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def values(self, expr: str) -> dict[frozenset[tuple[str, str]], float]:
        return {
            frozenset(sample["metric"].items()): float(sample["value"][1])
            for sample in self.query(expr)
        }

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, check: Callable[[], bool], prometheus: Prometheus | None = None) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    detail = f"\n--- prometheus log\n{prometheus.logs()}" if prometheus else ""
    raise AssertionError(f"timed out waiting for {what}{detail}")


def stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(scope="module")
def feeder() -> Iterator[tuple[subprocess.Popen[str], int]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, str(FEEDER)],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline().split()
        assert first[:1] == ["port"], f"feeder did not start: {first}"
        yield process, int(first[1])
    finally:
        if process.stdin:
            process.stdin.close()
        stop(process)


@pytest.fixture(scope="module")
def prometheus(
    prometheus_bin: str,
    prometheus_dir: Path,
    feeder: tuple[subprocess.Popen[str], int],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Prometheus]:
    """Prometheus scraping the feeder; the feeder has recorded its amounts once this yields."""
    process, metrics_port = feeder
    tmp = tmp_path_factory.mktemp("prometheus")
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(prometheus_dir / "rules.yml")],
        "scrape_configs": [
            {
                "job_name": "cartbands-test",
                "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}],
            }
        ],
    }
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = tmp / "prometheus.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [
                prometheus_bin,
                f"--config.file={tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    running = Prometheus(f"http://127.0.0.1:{port}", server, log)
    try:

        def ready() -> bool:
            assert server.poll() is None, f"prometheus exited:\n{running.logs()}"
            try:
                with urllib.request.urlopen(f"{running.url}/-/ready", timeout=1) as response:
                    return bool(response.status == 200)
            except OSError:
                return False

        wait_for("prometheus to be ready", ready, running)
        # The baseline: a scrape with every series at zero, before anything is recorded.
        wait_for(
            "the first scrape",
            lambda: running.values('cartbands_carts_abandoned_total{store="acme"}') != {},
            running,
        )
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write("feed\n")
        process.stdin.flush()
        assert process.stdout.readline().strip() == "fed"
        yield running
    finally:
        stop(server)


def settles(
    prometheus: Prometheus, expr: str, expected: dict[tuple[tuple[str, str], ...], float]
) -> None:
    """Wait until ``expr`` gives exactly these series (label subsets) with these values."""

    def check() -> bool:
        got = prometheus.values(expr)
        if len(got) != len(expected):
            return False
        for labels, value in expected.items():
            matches = [v for k, v in got.items() if set(labels) <= k]
            if len(matches) != 1 or matches[0] != pytest.approx(value, rel=1e-9, abs=1e-12):
                return False
        return True

    wait_for(f"{expr} == {expected} (last: {prometheus.values(expr)})", check, prometheus)


def test_raw_counters_reach_prometheus_as_recorded(prometheus: Prometheus) -> None:
    treated = (("store", "acme"), ("group", "treated"))
    settles(
        prometheus,
        'cartbands_recovered_revenue_total{store="acme",band="high"}',
        {treated: 350.0, (("group", "holdout"),): 80.0},
    )
    loss = 'cartbands_recovered_margin_loss_total{group="treated",band="high"}'
    settles(prometheus, loss, {treated: 10.0})
    settles(
        prometheus,
        'sum by (band) (cartbands_channel_cost_total{store="acme"})',
        {(("band", "high"),): 12.5, (("band", "low"),): 2.5},
    )
    settles(
        prometheus,
        'sum by (channel) (cartbands_channel_cost_total{store="acme"})',
        {(("channel", "sms"),): 12.5, (("channel", "email"),): 2.5},
    )
    settles(
        prometheus,
        'cartbands_events_total{platform=~"bigcommerce|shopify"}',
        {(("platform", "bigcommerce"),): 6.0, (("platform", "shopify"),): 4.0},
    )
    settles(
        prometheus,
        "cartbands_consumer_lag_messages",
        {(("partition", "0"),): 42.0, (("partition", "1"),): 8.0},
    )


def test_recording_rules_compute_margin_per_spend_recovery_rate_and_lift(
    prometheus: Prometheus,
) -> None:
    acme = (("store", "acme"), ("currency", "USD"))
    settles(prometheus, "cartbands:recovered_margin_per_spend:ratio_rate1h", {acme: 110 / 45})
    settles(
        prometheus,
        'cartbands:cart_recovery:ratio_rate7d{store="acme"}',
        {
            (("band", "high"), ("group", "treated")): 0.25,
            (("band", "high"), ("group", "holdout")): 0.125,
            (("band", "low"), ("group", "treated")): 0.0,
        },
    )
    settles(
        prometheus,
        'cartbands:holdout_lift:ratio_rate7d{store="acme"}',
        {(("band", "high"),): 0.125},
    )
    # treated (120 - 10) / 8 carts minus holdout 30 / 8 carts: the margin the touches added
    settles(
        prometheus,
        'cartbands:incremental_margin_per_cart:rate7d{store="acme"}',
        {(("band", "high"), ("currency", "USD")): 110 / 8 - 30 / 8},
    )
    settles(
        prometheus,
        "cartbands:delivery_failure:ratio_rate5m",
        {(("channel", "email"),): 0.2, (("channel", "sms"),): 0.0},
    )
    settles(
        prometheus,
        "cartbands:events_rejected:ratio_rate5m",
        {
            (("reason", "duplicate"),): 0.2,
            (("reason", "stale"),): 0.1,
            (("reason", "malformed"),): 0.1,
        },
    )
    settles(prometheus, "cartbands:consumer_lag:sum", {(("topic", "cart-events"),): 50.0})
    wait_for(
        "dead letters of the senders and of the gateway in one rule",
        lambda: (
            {dict(labels)["dlq"] for labels in prometheus.values("cartbands:dlq_records:rate5m")}
            == {"touches", "ingest"}
        ),
        prometheus,
    )
    settles(
        prometheus,
        "cartbands:timers_pending:sum",
        {(("stage", "recovery"),): 7.0, (("stage", "carts"),): 3.0},
    )


def test_every_rule_is_loaded_and_evaluates_without_error(
    prometheus: Prometheus, prometheus_dir: Path
) -> None:
    shipped = yaml.safe_load((prometheus_dir / "rules.yml").read_text())
    names = {r.get("record") or r.get("alert") for g in shipped["groups"] for r in g["rules"]}

    def all_evaluated() -> bool:
        groups = prometheus.api("/api/v1/rules")["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        never = "0001-01-01"  # lastEvaluation of a rule not evaluated yet
        return {r["name"] for r in rules} == names and all(
            r["health"] == "ok" and not r["lastEvaluation"].startswith(never) for r in rules
        )

    wait_for("every shipped rule to evaluate with health ok", all_evaluated, prometheus)


def dashboard_exprs(grafana_dir: Path) -> list[tuple[str, str]]:
    dashboard = json.loads((grafana_dir / "dashboards" / "cartbands.json").read_text())
    found: list[tuple[str, str]] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            walk(panel.get("panels", []))
            for target in panel.get("targets", []):
                found.append((panel["title"], target["expr"]))

    walk(dashboard["panels"])
    return found


def with_variables(expr: str) -> str:
    for name, value in sorted(GRAFANA_VARIABLES.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(name, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr}"
    return expr


def test_every_dashboard_query_parses_and_returns_data(
    prometheus: Prometheus, grafana_dir: Path
) -> None:
    exprs = dashboard_exprs(grafana_dir)
    assert len(exprs) >= 20
    # Rules with a 7d window need a couple of evaluations after the feed to show up.
    wait_for(
        "the holdout lift rule",
        lambda: prometheus.values("cartbands:holdout_lift:ratio_rate7d") != {},
        prometheus,
    )
    concrete = [(title, with_variables(expr)) for title, expr in exprs]
    # prometheus.query raises with Prometheus' error message when an expression is invalid.
    empty = [(title, expr) for title, expr in concrete if not prometheus.query(expr)]
    if empty:  # a rate may need one more scrape: give the stragglers a last chance
        time.sleep(2)
        empty = [(title, expr) for title, expr in empty if not prometheus.query(expr)]
    assert not empty, "dashboard queries without data:\n" + "\n".join(map(str, empty))


def test_dashboard_refers_only_to_recording_rules_that_exist(
    prometheus_dir: Path, grafana_dir: Path
) -> None:
    shipped = yaml.safe_load((prometheus_dir / "rules.yml").read_text())
    records = {r["record"] for g in shipped["groups"] for r in g["rules"] if "record" in r}
    used = {
        name
        for _, expr in dashboard_exprs(grafana_dir)
        for name in re.findall(r"cartbands:[a-z0-9_:]+", expr)
    }
    assert used and used <= records, used - records
