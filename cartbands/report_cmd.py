"""``cartbands report``: does recovery pay, per band, with how much certainty.

Reads what the stream wrote, the ``recoveries`` and ``touch-results`` topics, either from a
broker (each topic from its start to its end at the time of reading) or from an NDJSON export
of them; folds them into one outcome per abandoned cart (:func:`recovery.ledger.outcomes`)
and prints :mod:`recovery.report`'s table; ``--html`` also writes a page with charts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from config.policyfile import PolicyError, PolicySet, load_policy
from recovery.outcomes import CartOutcome
from recovery.report import ReportError, build_reports

MAX_LISTED = 20
"""Malformed lines named one by one; past this, only how many more."""


class InputError(click.ClickException):
    """Input the report cannot read: named by file and line (or topic and offset)."""


def read_export(path: Path, *, skip_malformed: bool) -> list[dict[str, Any]]:
    """The records of an NDJSON export, one JSON object a line (blank lines ignored).

    Malformed lines are collected with their line numbers: an :class:`InputError` names them,
    unless ``skip_malformed``, when they are named on stderr and the rest is read.
    """
    from schemas.codec import loads

    records: list[dict[str, Any]] = []
    problems: list[str] = []
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                value = loads(raw)
            except ValueError as exc:
                problems.append(f"{path}:{number}: not JSON ({str(exc).splitlines()[0]})")
                continue
            if not isinstance(value, dict):
                problems.append(f"{path}:{number}: not a JSON object")
                continue
            records.append(unwrapped(value))
    _malformed(problems, skip_malformed)
    return records


def _malformed(problems: list[str], skip: bool) -> None:
    if not problems:
        return
    listed = problems[:MAX_LISTED]
    if len(problems) > MAX_LISTED:
        listed.append(f"... and {len(problems) - MAX_LISTED} more malformed records")
    if not skip:
        raise InputError(
            f"{len(problems)} malformed record(s); fix them or pass --skip-malformed:\n"
            + "\n".join(listed)
        )
    click.echo("\n".join(f"skipped: {line}" for line in listed), err=True)


def unwrapped(line: dict[str, Any]) -> dict[str, Any]:
    """The stream's record of an export line: the line itself (a record carries its
    ``type``), or the record it wraps, as ``cartbands export`` writes it
    (``{"topic", "record"}``) or as ``{"topic", "key", "value"}``."""
    if "type" in line:
        return line
    for field in ("record", "value"):
        inner = line.get(field)
        if isinstance(inner, dict):
            return inner
    return line


async def read_topics(
    bootstrap: str, topics: Sequence[str], *, timeout: float, skip_malformed: bool
) -> list[dict[str, Any]]:
    """Every record of ``topics``, from each partition's start to its end when the read began
    (:func:`bus.kafka.read_to_end`). A broker that does not answer or a missing topic is an
    :class:`InputError`."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.errors import KafkaError

    from bus.kafka import partitions_to_read, read_to_end
    from schemas.codec import loads

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        request_timeout_ms=int(timeout * 1000),
    )
    quiet = logging.getLogger("aiokafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # one clear line from us instead of its retries
    try:
        try:
            await asyncio.wait_for(consumer.start(), timeout)
        except (KafkaError, OSError, TimeoutError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputError(f"broker at {bootstrap} not reachable: {reason}") from None
        try:
            partitions, missing = await partitions_to_read(consumer._client, topics)
            if missing:
                raise InputError(
                    f"topics missing at {bootstrap}: {', '.join(missing)} "
                    "(check --topic-prefix; the stream creates them when it starts)"
                )
            try:
                messages = await read_to_end(consumer, partitions, timeout)
            except TimeoutError:
                raise InputError(f"reading {', '.join(topics)} took over {timeout:.0f}s") from None
            records: list[dict[str, Any]] = []
            problems: list[str] = []
            for message in messages:
                where = f"{message.topic}[{message.partition}]@{message.offset}"
                try:
                    value = loads(message.value) if message.value else None
                except ValueError:
                    problems.append(f"{where}: not JSON")
                    continue
                if not isinstance(value, dict):
                    problems.append(f"{where}: not a JSON object")
                    continue
                records.append(value)
            _malformed(problems, skip_malformed)
            return records
        except KafkaError as exc:
            raise InputError(f"broker at {bootstrap}: {exc}") from None
        finally:
            await consumer.stop()
    finally:
        quiet.setLevel(level)


def fold(records: list[dict[str, Any]], policies: PolicySet, as_of: datetime) -> list[CartOutcome]:
    """The ledger's outcomes of ``records``; a record it cannot take is an error, not a
    traceback."""
    from recovery.ledger import outcomes  # type: ignore[import-not-found,unused-ignore]

    try:
        return list(outcomes(records, policies, as_of))
    except (ValueError, KeyError, TypeError, ArithmeticError) as exc:
        raise InputError(f"the records do not make a ledger: {exc}") from None


def parse_as_of(value: str | None) -> datetime:
    """An ISO 8601 time (a date means its midnight, UTC unless a zone is given); now if None."""
    if value is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 time like 2026-12-01 or 2026-12-01T09:00:00Z",
            param_hint="'--as-of'",
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@click.command("report")
@click.option(
    "--from",
    "source",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="NDJSON export of the recoveries and touch-results topics (cartbands export).",
)
@click.option(
    "--broker", "broker_url", default=None, help="Read the topics here: kafka://host:port"
)
@click.option("--topic-prefix", default="", help="Prefix of the topic names (with --broker).")
@click.option(
    "--policy",
    type=click.Path(dir_okay=False),
    envvar="CARTBANDS_POLICY",
    default=None,
    help="Policy file the stream ran on (bands, costs); default: the shipped one.",
)
@click.option("--store", default=None, help="Report this store only (default: all, per currency).")
@click.option("--as-of", default=None, help="Close the ledger at this time (default: now).")
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write a self-contained HTML page with charts here.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Bootstrap seed.")
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Broker seconds.")
@click.option("--skip-malformed", is_flag=True, help="Name malformed records and go on.")
def report(
    source: Path | None,
    broker_url: str | None,
    topic_prefix: str,
    policy: str | None,
    store: str | None,
    as_of: str | None,
    html_path: Path | None,
    seed: int,
    timeout: float,
    skip_malformed: bool,
) -> None:
    """Per band: carts, recovery rates, lift and incremental margin with 95% intervals, spend,
    margin per unit of spend, and a verdict. Give --from FILE or --broker URL."""
    if (source is None) == (broker_url is None):
        raise click.UsageError("give exactly one of --from FILE.ndjson and --broker URL")
    moment = parse_as_of(as_of)
    try:
        policies = load_policy(policy)
    except PolicyError as exc:
        raise click.ClickException(str(exc)) from None
    if source is not None:
        records = read_export(source, skip_malformed=skip_malformed)
    else:
        assert broker_url is not None
        records = asyncio.run(_from_broker(broker_url, topic_prefix, timeout, skip_malformed))
    outcomes = fold(records, policies, moment)
    order = [b.name for b in policies.for_store(store).bands] if store else []
    if not order:
        order = [b.name for b in policies.defaults.bands]
    try:
        reports = build_reports(outcomes, store=store, band_order=order, seed=seed)
    except ReportError as exc:
        raise click.ClickException(str(exc)) from None
    if not reports:
        raise click.ClickException(
            f"no abandoned carts{f' of store {store}' if store else ''} in the records"
        )
    from cartbands.report_text import render_text

    click.echo("\n\n".join(render_text(r) for r in reports))
    if html_path is not None:
        from cartbands.report_html import render_html

        try:
            html_path.write_text(render_html(reports), encoding="utf-8")
        except OSError as exc:
            raise click.ClickException(f"{html_path}: cannot write it ({exc.strerror})") from None
        click.echo(f"HTML report: {html_path}")


async def _from_broker(
    url: str, prefix: str, timeout: float, skip_malformed: bool
) -> list[dict[str, Any]]:
    from bus.topics import TopicNames
    from config.settings import Settings

    names = TopicNames(prefix)
    topics = [names.recoveries, names.touch_results]
    bootstrap = Settings.from_env(broker=url).bootstrap
    return await read_topics(bootstrap, topics, timeout=timeout, skip_malformed=skip_malformed)
