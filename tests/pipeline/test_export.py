"""`cartbands export` writes the ledger's records as NDJSON, and the stream's ledger is the
core's."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from bus.kafka import ensure_topics, producer
from bus.topics import TopicNames
from cartbands.cli import cli
from cartbands.export import ExportError, export_lines, read_export
from cartbands.replay import replay
from config.policyfile import DEFAULT_POLICY, load_policy
from recovery.checkouts import epoch
from recovery.ledger import outcomes, reconcile
from recovery.simulate import simulate
from streams.app import code_secret
from tests.pipeline.helpers import T0, cart, order, without_holdout

HOUR = 3600.0
DAY = 86400.0


async def _write(bootstrap: str, topic: str, values: list[bytes]) -> None:
    async with producer(bootstrap) as out:
        for value in values:
            await out.send_and_wait(topic, key=b"k", value=value)


def test_export_writes_every_record_with_its_topic(broker, tmp_path: Path):
    names = TopicNames(f"x{uuid.uuid4().hex[:6]}-")
    asyncio.run(ensure_topics(broker.bootstrap, [names.recoveries, names.touch_results], 2))
    plan = {"type": "plan", "store": "s", "checkout": "c1", "cycle": 1}
    result = {"type": "touch_result", "store": "s", "touch_id": "t_1", "outcome": "delivered"}
    recoveries = [json.dumps(plan).encode(), json.dumps(plan).encode(), b"not json"]
    asyncio.run(_write(broker.bootstrap, names.recoveries, recoveries))
    asyncio.run(_write(broker.bootstrap, names.touch_results, [json.dumps(result).encode()]))
    out = tmp_path / "ledger.ndjson"
    args = ["export", "--broker", broker.url, "--topic-prefix", names.prefix, "--out", str(out)]
    done = CliRunner().invoke(cli, args)
    assert done.exit_code == 0, done.output
    assert "exported 3 records (2 plans)" in done.output
    assert "1 undecodable values skipped" in done.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(line["topic"] for line in lines) == ["recoveries", "recoveries", "touch-results"]
    assert read_export(out) == [line["record"] for line in lines]
    assert {"topic": "touch-results", "record": result} in lines


def test_export_names_a_missing_topic(broker, tmp_path: Path):
    args = ["export", "--broker", broker.url, "--topic-prefix", "nowhere-", "--out", "-"]
    done = CliRunner().invoke(cli, args)
    assert done.exit_code == 1
    assert "no topic nowhere-recoveries, nowhere-touch-results" in done.output


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"{oops", "ledger.ndjson:2: not JSON"),
        (b'{"topic": "touches.email", "record": {}}', 'ledger.ndjson:2: expected {"topic"'),
        (b'{"topic": "recoveries", "record": 3}', "ledger.ndjson:2: record: expected an object"),
    ],
)
def test_a_bad_export_line_is_named_by_its_number(line: bytes, message: str):
    good = b'{"topic": "recoveries", "record": {"type": "plan"}}'
    with pytest.raises(ExportError, match=message.replace("{", r"\{")):
        list(export_lines([good, line], "ledger.ndjson"))


def test_the_stream_s_ledger_is_the_core_s(broker, workers, tmp_path: Path):
    """Carts of every band, an order inside the window and one after it: the ledger folded from
    the stream's export is the one folded from the pure core's records, and reconciles."""
    policy = without_holdout(DEFAULT_POLICY, tmp_path / "policy.yaml")
    events = [
        cart("e-low", "30", T0, customer="lou"),
        cart("e-mid", "120", T0 + 60, customer="mia"),
        cart("e-high", "310", T0 + 120, customer="hal"),
        cart("e-vip", "900", T0 + 180, customer="vic"),
        order("e-mid", "120", T0 + 30 * HOUR, customer="mia"),
        order("e-high", "310", T0 + 20 * DAY, customer="hal"),
    ]
    timed = sorted(((epoch(e["occurred_at"], "t"), e) for e in events), key=lambda p: p[0])
    policies = load_policy(policy)
    core = simulate(timed, policies, code_secret)
    workers.start(policy, "--clock", "event")
    asyncio.run(replay(broker.bootstrap, workers.names.cart_events, timed))
    out = tmp_path / "ledger.ndjson"
    args = ["export", "--broker", broker.url, "--topic-prefix", workers.names.prefix]
    as_of = datetime.fromtimestamp(T0 + 60 * DAY, UTC)
    expected = outcomes([*core.plans, *core.recoveries], policies, as_of)
    assert {o.outcome for o in expected} == {"recovered", "ordered_later", "not_recovered"}
    streamed: list = []
    for _ in range(60):  # the worker writes as it catches up with the replay
        done = CliRunner().invoke(cli, [*args, "--out", str(out)])
        assert done.exit_code == 0, done.output
        records = read_export(out)
        streamed = outcomes(records, policies, as_of)
        if streamed == expected:
            break
        asyncio.run(asyncio.sleep(2))
    assert [(o.checkout, o.outcome) for o in streamed] == [
        (o.checkout, o.outcome) for o in expected
    ]
    assert streamed == expected
    assert reconcile(records, streamed, as_of) == []
    # the report reads the export: every band of the stream's carts, its money, a page
    page = tmp_path / "report.html"
    shown = CliRunner().invoke(
        cli,
        ["report", "--from", str(out), "--policy", str(policy), "--as-of", as_of.isoformat(),
         "--html", str(page)],
    )  # fmt: skip
    assert shown.exit_code == 0, shown.output
    for band in ("low", "mid", "high", "vip"):
        assert band in shown.output, shown.output
    # the one order inside its window recovered the mid cart: 1 of 4 treated carts
    assert re.search(r"^mid\s+1/0\s+100\.0%", shown.output, re.M), shown.output
    assert re.search(r"^total\s+4/0\s+25\.0%", shown.output, re.M), shown.output
    assert page.read_text().count("<svg") >= 1
