"""``cartbands export``: the ledger's records (``recoveries`` and ``touch-results``) as NDJSON.

One line per record read, in the order read: ``{"topic": "recoveries", "record": {...}}``,
the topic named without the ``--topic-prefix`` (an export reads the same whatever the
pipeline's prefix). The records are as the stream wrote them, repeats of at-least-once delivery
included: :func:`recovery.ledger.outcomes` counts a repeat once. :func:`read_export` reads
such a file back (``cartbands report`` does), naming the line of anything it cannot take.

The export is a snapshot: it reads every partition of both topics from its start up to its end
when the export began (the high-water mark of the first fetch), so it ends even while the
pipeline keeps writing. A topic that does not exist yet (no sender ever ran: no
``touch-results``) is said and left out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import click
import orjson
from aiokafka import AIOKafkaConsumer

from bus.kafka import partitions_to_read, read_to_end
from bus.topics import TopicNames
from config.settings import Settings

LEDGER_TOPICS = ("recoveries", "touch-results")


class ExportError(ValueError):
    """A broker without the ledger's topics, or an export file line that cannot be read."""


async def read_topics(
    bootstrap: str, names: TopicNames, timeout: float = 60.0
) -> tuple[list[tuple[str, dict[str, Any]]], int, list[str]]:
    """``((topic, record) pairs, undecodable count, missing topics)`` of the ledger's topics,
    start to the end offsets at the start of the read. A topic may be missing (no sender ever
    ran: no ``touch-results``); :class:`ExportError` when both are."""
    full = {getattr(names, base.replace("-", "_")): base for base in LEDGER_TOPICS}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions, missing = await partitions_to_read(consumer._client, full)
        if len(missing) == len(full):
            raise ExportError(f"no topic {', '.join(missing)} on {bootstrap}")
        try:
            messages = await read_to_end(consumer, partitions, timeout)
        except TimeoutError:
            raise ExportError(f"timed out after {timeout:.0f}s reading {sorted(full)}") from None
    finally:
        await consumer.stop()
    found: list[tuple[str, dict[str, Any]]] = []
    bad = 0
    for message in messages:
        record = _decoded(message.value)
        if record is None:
            bad += 1
        else:
            found.append((full[message.topic], record))
    return found, bad, missing


def _decoded(value: bytes | None) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def write_ndjson(out: IO[bytes], items: Iterable[tuple[str, dict[str, Any]]]) -> int:
    count = 0
    for topic, record in items:
        out.write(orjson.dumps({"topic": topic, "record": record}) + b"\n")
        count += 1
    return count


def read_export(path: Path) -> list[dict[str, Any]]:
    """The records of an export file, in file order (what :func:`recovery.ledger.outcomes`
    takes). Raises :class:`ExportError` naming the file and line of a line it cannot read."""
    with path.open("rb") as source:
        return [record for _topic, record in export_lines(source, str(path))]


def export_lines(lines: Iterable[bytes], name: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ExportError(f"{name}:{number}: not JSON: {exc}") from None
        if not isinstance(item, dict) or item.get("topic") not in LEDGER_TOPICS:
            raise ExportError(
                f'{name}:{number}: expected {{"topic": one of {list(LEDGER_TOPICS)}, '
                '"record": {...}}'
            )
        record = item.get("record")
        if not isinstance(record, dict):
            raise ExportError(f"{name}:{number}: record: expected an object")
        yield item["topic"], record


@click.command("export")
@click.option("--broker", "broker_url", envvar="CARTBANDS_BROKER", required=True)
@click.option("--topic-prefix", default="", envvar="CARTBANDS_TOPIC_PREFIX")
@click.option(
    "--out",
    "out_path",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="The NDJSON file to write; - for stdout.",
)
@click.option("--timeout", type=float, default=60.0, show_default=True)
def export_command(broker_url: str, topic_prefix: str, out_path: Path, timeout: float) -> None:
    """Write the recoveries and touch-results records to an NDJSON file, one a line with its
    topic: what `cartbands report` reads (see README, The ledger's records)."""
    bootstrap = Settings.from_env(broker=broker_url).bootstrap
    try:
        items, bad, missing = asyncio.run(read_topics(bootstrap, TopicNames(topic_prefix), timeout))
    except ExportError as exc:
        raise click.ClickException(str(exc)) from None
    if str(out_path) == "-":
        count = write_ndjson(click.get_binary_stream("stdout"), items)
    else:
        with out_path.open("wb") as out:
            count = write_ndjson(out, items)
    plans = sum(1 for topic, r in items if topic == "recoveries" and r.get("type") == "plan")
    click.echo(
        f"exported {count} records ({plans} plans) to {out_path}"
        + (f"; {bad} undecodable values skipped" if bad else "")
        + (f"; no topic {', '.join(missing)}" if missing else ""),
        err=True,
    )
