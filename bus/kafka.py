"""Small raw-Kafka helpers for the shell: create and verify topics, wait for the broker,
produce records, drain topics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from typing import Any, TypeVar

from aiokafka import AIOKafkaClient, AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.cluster import ClusterMetadata
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError
from aiokafka.protocol.metadata import MetadataRequest
from aiokafka.structs import ConsumerRecord

from schemas.codec import dumps, loads

T = TypeVar("T")


class DrainAborted(RuntimeError):
    """Waiting for records was given up because something it depended on failed."""


class TopicMismatch(RuntimeError):
    """A topic this process needs has another partition count than it was told to expect.

    Keys are spread over partitions by hash, and the tables' changelogs follow their source
    topic's partitions: a process working on the wrong count routes records to partitions
    that do not exist or are read by nobody. The message is one line, for an operator.
    """


class TopicsMissing(RuntimeError):
    """Topics this process needs are gone (e.g. the broker restarted without its data)."""


async def topic_layout(
    client: AIOKafkaClient, names: Iterable[str] | None = None
) -> dict[str, int]:
    """Partitions per existing topic, from one metadata request: of ``names``, or of all.

    The request never auto-creates a topic: aiokafka's own metadata requests for named topics
    allow it (tansu even creates a topic that is only described), and a check that creates
    what it checks proves nothing.
    """
    if names is None:
        cluster = await client.fetch_all_metadata()
    else:
        node = client.get_random_node()
        if node is None:
            await client.bootstrap()
            node = client.get_random_node()
        if node is None:
            raise KafkaConnectionError("no broker known")
        request = MetadataRequest(sorted(set(names)), allow_auto_topic_creation=False)
        cluster = ClusterMetadata()
        cluster.need_all_topic_metadata = True  # a missing topic is an answer, not an error
        cluster.update_metadata(await client.send(node, request))
    return {topic: len(cluster.partitions_for_topic(topic) or ()) for topic in cluster.topics()}


async def partitions_to_read(
    client: AIOKafkaClient, names: Iterable[str]
) -> tuple[list[TopicPartition], list[str]]:
    """(every partition of the ``names`` that exist, the names that do not), asked of the
    broker: a consumer outside any group keeps metadata only of what it is assigned, so its
    own ``partitions_for_topic`` can be empty before the first ``assign`` (on Apache Kafka)."""
    wanted = list(dict.fromkeys(names))
    layout = await topic_layout(client, wanted)
    found = [
        TopicPartition(name, number)
        for name in wanted
        if name in layout
        for number in range(layout[name])
    ]
    return found, [name for name in wanted if layout.get(name, 0) == 0]


async def read_to_end(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition], timeout: float
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every message of ``partitions`` (see :func:`partitions_to_read`), from each one's start
    up to its end when the read began: a snapshot, which ends while producers keep writing.
    ``consumer``: started, outside any group. :class:`TimeoutError` after ``timeout`` s."""
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    ends = await consumer.end_offsets(partitions)
    pending = {tp for tp in partitions if ends[tp] > 0}
    read: list[ConsumerRecord[bytes, bytes]] = []
    deadline = time.monotonic() + timeout
    next_offset = {tp: 0 for tp in pending}
    fixed: set[TopicPartition] = set()
    while pending:
        if time.monotonic() > deadline:
            raise TimeoutError(f"read for over {timeout:.0f}s")
        batch = await consumer.getmany(*pending, timeout_ms=500)
        for tp, messages in batch.items():
            if tp not in fixed:
                # the high-water mark of the first fetch ends the snapshot: some brokers'
                # ListOffsets answer the last batch's base offset + 1 (tansu, quirk 4)
                ends[tp] = max(ends[tp], consumer.highwater(tp) or 0)
                fixed.add(tp)
            for message in messages:
                if message.offset >= ends[tp]:
                    break
                next_offset[tp] = message.offset + 1
                read.append(message)
            if next_offset[tp] >= ends[tp]:
                pending.discard(tp)
    return read


def layout_problems(
    layout: Mapping[str, int], wanted: Mapping[str, int], optional: Iterable[str] = ()
) -> tuple[list[str], list[str]]:
    """(missing, mismatched): the ``wanted`` topics (name -> partitions) that ``layout`` lacks,
    and one phrase per topic whose partition count differs. ``optional`` topics may be
    missing (e.g. a table changelog Faust creates itself) but not mismatched."""
    skip = set(optional)
    missing = sorted(name for name in wanted if name not in layout and name not in skip)
    mismatched = [
        f"{name} has {layout[name]} partitions, not {count}"
        for name, count in sorted(wanted.items())
        if name in layout and layout[name] != count
    ]
    return missing, mismatched


def mismatch_message(mismatched: list[str]) -> str:
    return (
        f"topic {'; '.join(mismatched)}: give every process the topics' partition count "
        "(--partitions, CARTBANDS_PARTITIONS) or recreate the topics"
    )


def stop_reason(problem: TopicMismatch | TopicsMissing) -> str:
    """Why a process stops for its topics, as an operator reads it: topics gone most often
    mean a broker restarted without its data."""
    if isinstance(problem, TopicsMissing):
        return f"{problem} (was the broker restarted empty?)"
    return str(problem)


async def check_topics(
    client: AIOKafkaClient, wanted: Mapping[str, int], optional: Iterable[str] = ()
) -> None:
    """Raise :class:`TopicMismatch` or :class:`TopicsMissing` unless every ``wanted`` topic
    exists (``optional`` ones may not) with its partition count."""
    layout = await topic_layout(client, wanted)
    missing, mismatched = layout_problems(layout, wanted, optional)
    if mismatched:
        raise TopicMismatch(mismatch_message(mismatched))
    if missing:
        raise TopicsMissing(f"topics missing: {', '.join(missing)}")


async def ensure_topics(
    bootstrap: str,
    names: Iterable[str],
    partitions: int,
    *,
    configs: Mapping[str, Mapping[str, str]] | None = None,
    verify_only: Iterable[str] = (),
) -> None:
    """Create the topics that do not exist yet, with ``partitions`` partitions each (and the
    topic configs given per name), then verify that every one of them, and every existing
    ``verify_only`` topic, has ``partitions``: :class:`TopicMismatch` otherwise."""
    wanted = list(dict.fromkeys(names))
    checked = list(dict.fromkeys([*wanted, *verify_only]))
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        layout = await topic_layout(admin._client)
        new = [
            NewTopic(
                name,
                num_partitions=partitions,
                replication_factor=1,
                topic_configs=dict((configs or {}).get(name, {})),
            )
            for name in wanted
            if name not in layout
        ]
        if new:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(new)
            layout = await topic_layout(admin._client)
        _, mismatched = layout_problems(layout, dict.fromkeys(checked, partitions), checked)
        if mismatched:
            raise TopicMismatch(mismatch_message(mismatched))
    finally:
        await admin.close()


BROKER_ERRORS = (KafkaError, OSError, asyncio.TimeoutError)


async def until_broker_answers(
    action: Callable[[], Awaitable[T]],
    bootstrap: str,
    *,
    what: str,
    first_delay: float = 0.5,
    max_delay: float = 10.0,
    log: logging.Logger | None = None,
) -> T:
    """``action()``, again and again with exponential backoff while the broker cannot be
    reached, logging one line per attempt (never a traceback); other errors propagate."""
    logger = log or logging.getLogger(__name__)
    delay = first_delay
    client_log = logging.getLogger("aiokafka")
    while True:
        # aiokafka logs each refused connection as an error of its own: one line from us
        # says it all while we wait.
        previous = client_log.level
        client_log.setLevel(logging.CRITICAL)
        try:
            return await action()
        except TopicMismatch:
            raise
        except BROKER_ERRORS as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            logger.warning(
                "%s: broker at %s not reachable yet (%s); retrying in %.1fs",
                what,
                bootstrap,
                reason[:200],
                delay,
            )
        finally:
            client_log.setLevel(previous)
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_delay)


def producer(bootstrap: str, **overrides: Any) -> AIOKafkaProducer:
    """A producer that never loses an acknowledged record (acks=all). It does not linger:
    records batch while a request is in flight anyway, and a caller that awaits each send
    (a sender's de-dup records, a replay's ticks) would pay the linger on every one."""
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "acks": "all",
        "linger_ms": 0,
        "max_batch_size": 256 * 1024,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


async def produce(bootstrap: str, topic: str, records: Iterable[tuple[str, Any]]) -> int:
    """Send ``(key, value)`` pairs as orjson and wait for every acknowledgement."""
    count = 0
    async with producer(bootstrap) as out:
        futures = []
        for key, value in records:
            futures.append(await out.send(topic, key=key.encode(), value=dumps(value)))
            count += 1
        await asyncio.gather(*futures)
    return count


def reader(bootstrap: str, topics: Iterable[str]) -> AIOKafkaConsumer:
    """A consumer outside any group that reads ``topics`` from their start (not started)."""
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        metadata_max_age_ms=1000,
    )


async def drain(
    bootstrap: str,
    topics: Iterable[str],
    *,
    until: int | None = None,
    timeout: float = 30.0,
    idle: float | None = None,
    abort: Callable[[], str | None] | None = None,
    distinct: Callable[[Any], Hashable] | None = None,
) -> list[tuple[str, bytes | None, Any]]:
    """Read ``(topic, key, value)`` from the start of ``topics`` with no consumer group.

    Stops after ``until`` records, after ``idle`` seconds without a new record (once at least
    one arrived), or at ``timeout``; whichever comes first. ``abort`` is asked between polls
    and ends the wait with :class:`DrainAborted` when it returns a reason. With ``distinct``
    (a key of each value, e.g. its touch id), a record whose key was seen already is a repeat
    of at-least-once delivery: it is left out and does not count towards ``until``.
    """
    consumer = reader(bootstrap, topics)
    await consumer.start()
    seen: list[tuple[str, bytes | None, Any]] = []
    keys: set[Hashable] = set()
    deadline = time.monotonic() + timeout
    last = time.monotonic()
    try:
        while time.monotonic() < deadline:
            if until is not None and len(seen) >= until:
                break
            if idle is not None and seen and time.monotonic() - last > idle:
                break
            reason = abort() if abort is not None else None
            if reason:
                raise DrainAborted(reason)
            batch = await consumer.getmany(timeout_ms=200)
            for partition, messages in batch.items():
                for message in messages:
                    value = loads(message.value) if message.value is not None else None
                    if distinct is not None:
                        key = distinct(value)
                        if key in keys:
                            continue
                        keys.add(key)
                    seen.append((partition.topic, message.key, value))
                    last = time.monotonic()
    finally:
        await consumer.stop()
    return seen
