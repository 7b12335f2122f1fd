"""Producing the gateway's records: acks=all, batched by load, bounded waits.

Each request awaits the broker's acknowledgement of its own records only, never a flush.
Records of concurrent requests are gathered per partition and handed to the producer in
rounds, one closed batch per partition (:class:`Batcher`: one future per batch instead of one
per record, which is most of the producer's per-record cost); every request waiting on a
batch is released when the broker acknowledges it. On ``cart-events`` a round's records of
one partition also share one message (``{"batch": [...]}``), so the stream worker pays its
per-message cost once per round instead of once per event. A round leaves as soon as the
previous one is answered (or at once when none is in flight), so the batches grow with the
load without a fixed linger on the answer's path. Partitions come from Kafka's default
murmur2 partitioner on the key, as ``producer.send`` would pick them, so a checkout's events
keep one partition. Large records (dead letters with their body) and store-wide broadcasts
take the producer's ordinary path.

A send not acknowledged within ``ack_timeout`` raises :class:`BrokerUnavailable` (the caller
answers 503 and the platform retries; a late acknowledgement then yields a duplicate, which
stage A drops by ``event_id``). The producer connects in the background, so the gateway
starts (and says "not ready") while the broker is down. Before a request is answered, its
topics must have been verified since its records were acknowledged (:mod:`gateway.topicguard`):
a broker restarted empty gets 503s, not acknowledgements into nothing. Topics with another
partition count than ``--partitions`` are fatal: :attr:`Output.failed` is set with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from bus.kafka import (
    TopicMismatch,
    check_topics,
    ensure_topics,
    producer,
    until_broker_answers,
)
from bus.partitioning import key_partition
from bus.topics import TopicNames
from gateway.emit import Emit
from gateway.topicguard import TopicGuard
from schemas.batches import BATCH_MAX_BYTES, packed
from schemas.codec import dumps

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 4 * 1024 * 1024
READY_TIMEOUT = 2.0  # seconds a readiness probe waits for its topic check
# The longest a request waits for its acknowledgement: under the 5 s Shopify gives a webhook
# delivery, so a slow broker yields a 503 that Shopify retries rather than a timeout it
# counts as a failure while the event may still be stored (a late acknowledgement is then a
# duplicate, dropped downstream by event id).
ACK_TIMEOUT = 3.0


def _expire(futures: list[asyncio.Future[None]]) -> None:
    """The acknowledgement did not come in time: release the waiting request."""
    for future in futures:
        if not future.done():
            future.set_exception(TimeoutError())


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a late failure as seen (its request may have timed out and left)."""
    if not future.cancelled():
        future.exception()


Gathered = tuple[bytes | None, bytes, list[asyncio.Future[None]]]


def pack(items: list[Gathered], limit: int = BATCH_MAX_BYTES) -> list[Gathered]:
    """Records of one partition, in order, as ``{"batch": [...]}`` messages of at most about
    ``limit`` bytes (a lone record stays as it was, with its key)."""
    out: list[Gathered] = []
    for run, message in packed(items, lambda item: item[1], limit):
        if message is None:
            out.append(run[0])
        else:
            out.append((None, message, [future for _, _, futures in run for future in futures]))
    return out


class Batcher:
    """Gather records per (topic, partition) and hand them to the producer one round at a time.

    A round is everything gathered since the previous round was handed over: one closed batch
    per partition (closed, so the producer sends it at once instead of lingering on it). The
    next round starts when the broker has answered the previous one: while a produce request
    is in flight, the records of the requests that keep arriving gather into the next round,
    so batches grow with the load and an idle gateway sends at once (``linger`` seconds after
    the first record, 0 by default). Rounds are in order, so are a partition's records.
    A record whose request gave up (its future cancelled) before its round left is not sent.

    On the ``packed`` topics (``cart-events``), a round's records of one partition leave as one
    message, ``{"batch": [...]}`` (stage A reads it as those records, in order; each names its
    store and checkout): the stream worker pays Faust's per-message cost once per round, not
    once per event. A lone record keeps its own message and key.
    """

    def __init__(
        self, out: AIOKafkaProducer, linger: float = 0.0, packed: frozenset[str] = frozenset()
    ) -> None:
        self.out = out
        self.linger = linger
        self.packed = packed
        self._pending: dict[tuple[str, int], list[tuple[bytes, bytes, asyncio.Future[None]]]] = {}
        self._scheduled: asyncio.Handle | None = None
        self._round: asyncio.Future[None] | None = None
        self._flushing: set[asyncio.Task[None]] = set()
        # Python 3.11's asyncio.get_running_loop() makes a getpid() system call: once per
        # batcher, not once per record.
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def partition(self, topic: str, key: bytes) -> int | None:
        """The partition ``producer.send`` would pick for ``key`` (None: topic not known yet)."""
        every = self.out.client.cluster.partitions_for_topic(topic)
        if not every:
            return None
        return key_partition(key, sorted(every))

    def submit(self, topic: str, partition: int, key: bytes, value: bytes) -> asyncio.Future[None]:
        """Gather one record; the future is done when the broker acknowledged it."""
        loop = self.loop
        future: asyncio.Future[None] = loop.create_future()
        future.add_done_callback(_retrieve)
        gathered = self._pending.get((topic, partition))
        if gathered is None:
            self._pending[(topic, partition)] = [(key, value, future)]
        else:
            gathered.append((key, value, future))
        if self._round is None and self._scheduled is None:
            if self.linger > 0:
                self._scheduled = loop.call_later(self.linger, self._kick)
            else:
                self._scheduled = loop.call_soon(self._kick)
        return future

    def _kick(self) -> None:
        """Start a round with what is gathered (nothing in flight)."""
        self._scheduled = None
        if self._round is not None or not self._pending:
            return
        pending, self._pending = self._pending, {}
        round_ = self._round = self.loop.create_future()
        task = self.loop.create_task(self._flush(pending, round_))
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    def _settled(self, round_: asyncio.Future[None]) -> None:
        """The broker answered every batch of ``round_``: start the next one."""
        if not round_.done():
            round_.set_result(None)
        if self._round is round_:
            self._round = None
            if self._pending and self._scheduled is None:
                self._kick()

    async def drain(self) -> None:
        """Send what is gathered now (at shutdown) and wait for the broker's answers."""
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
        while True:
            if self._round is None:
                if not self._pending:
                    return
                self._kick()
            assert self._round is not None
            await asyncio.shield(self._round)

    async def _flush(
        self,
        pending: dict[tuple[str, int], list[tuple[bytes, bytes, asyncio.Future[None]]]],
        round_: asyncio.Future[None],
    ) -> None:
        sent_batches: list[asyncio.Future[Any]] = []
        try:
            for (topic, partition), gathered in pending.items():
                items: list[Gathered] = [(k, v, [f]) for k, v, f in gathered if not f.done()]
                if topic in self.packed and len(items) > 1:
                    items = pack(items)
                start = 0
                while start < len(items):
                    batch = self.out.create_batch()
                    taken: list[asyncio.Future[None]] = []
                    fitted = 0
                    for key, value, futures in items[start:]:
                        if batch.append(key=key, value=value, timestamp=None) is None:
                            break
                        taken.extend(futures)
                        fitted += 1
                    if not fitted:  # cannot happen below BATCH_MAX_BYTES; never leave it waiting
                        for future in items[start][2]:
                            future.set_exception(KafkaError("record does not fit a batch"))
                        start += 1
                        continue
                    start += fitted
                    batch.close()
                    try:
                        sent = await self.out.send_batch(batch, topic, partition=partition)
                    except Exception as exc:
                        for future in taken:
                            if not future.done():
                                future.set_exception(exc)
                        continue
                    sent.add_done_callback(lambda done, waiting=taken: _settle(done, waiting))
                    sent_batches.append(sent)
        finally:
            if sent_batches:
                left = len(sent_batches)

                def one_done(_: asyncio.Future[Any]) -> None:
                    nonlocal left
                    left -= 1
                    if left == 0:
                        self._settled(round_)

                for sent in sent_batches:
                    sent.add_done_callback(one_done)
            else:
                self._settled(round_)


def _settle(sent: asyncio.Future[Any], waiting: list[asyncio.Future[None]]) -> None:
    cancelled = sent.cancelled()
    error = KafkaError("the batch was cancelled") if cancelled else sent.exception()
    for future in waiting:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


class BrokerUnavailable(RuntimeError):
    """The broker did not acknowledge in time (or is not connected)."""


class Output:
    def __init__(
        self,
        bootstrap: str,
        names: TopicNames,
        *,
        partitions: int = 8,
        ack_timeout: float = ACK_TIMEOUT,
        linger_ms: int = 0,
        **producer_options: Any,
    ) -> None:
        self.bootstrap = bootstrap
        self.names = names
        self.partitions = partitions
        self.ack_timeout = ack_timeout
        self.linger_ms = linger_ms
        self.producer_options = producer_options
        self._producer: AIOKafkaProducer | None = None
        self._batcher: Batcher | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._topic_names: dict[str, str] = {}
        self._guard: TopicGuard | None = None
        self.failed: asyncio.Event = asyncio.Event()
        self.fatal: str | None = None

    @property
    def topics(self) -> tuple[str, ...]:
        return (self.names.cart_events, self.names.shopper_events, self.names.ingest_dlq)

    def topic(self, emit: Emit) -> str:
        topic = self._topic_names.get(emit.stream)
        if topic is None:
            topic = self._topic_names[emit.stream] = str(getattr(self.names, emit.stream))
        return topic

    async def start(self, wait: bool = False) -> None:
        """Connect in the background (or now, with ``wait``)."""
        if wait:
            await self._connect_once()
            return
        self._connecting = asyncio.create_task(self._connect_forever(), name="gateway-connect")

    async def _connect_once(self) -> None:
        await ensure_topics(self.bootstrap, self.topics, self.partitions)
        out = producer(
            self.bootstrap,
            linger_ms=self.linger_ms,
            max_request_size=MAX_REQUEST_BYTES,
            request_timeout_ms=max(int(self.ack_timeout * 1000), 1000),
            **self.producer_options,
        )
        try:
            await out.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await out.stop()
            raise
        for topic in self.topics:
            await out.partitions_for(topic)
        await self._connect_batcher(out)
        wanted = dict.fromkeys(self.topics, self.partitions)
        self._guard = TopicGuard(
            check=lambda: check_topics(out.client, wanted),
            recreate=lambda: ensure_topics(self.bootstrap, self.topics, self.partitions),
            on_fatal=self._fail,
        )
        self._guard.start(verified=True)
        self._producer = out
        log.info("gateway connected to the broker at %s", self.bootstrap)

    def _fail(self, reason: str) -> None:
        """The gateway cannot work as configured: the process stops with ``reason``."""
        self.fatal = reason
        self.failed.set()

    async def _connect_batcher(self, out: AIOKafkaProducer) -> None:
        self._batcher = Batcher(
            out, self.linger_ms / 1000, packed=frozenset({self.names.cart_events})
        )

    async def _connect_forever(self) -> None:
        if self._producer is not None:
            return
        try:
            await until_broker_answers(
                self._connect_once, self.bootstrap, what="gateway", first_delay=0.2, log=log
            )
        except TopicMismatch as exc:
            log.critical("%s", exc)
            self._fail(str(exc))
        except Exception as exc:  # not the broker's absence: the gateway would never be ready
            reason = f"cannot connect to the broker: {type(exc).__name__}: {exc}"
            log.critical("%s", reason)
            self._fail(reason)

    async def stop(self) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._connecting
        out, self._producer = self._producer, None
        if self._guard is not None:
            await self._guard.stop()
        if self._batcher is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._batcher.drain(), timeout=5.0)
        if out is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(out.stop(), timeout=5.0)

    async def send(self, emits: Sequence[Emit]) -> None:
        """Produce ``emits`` and return once the broker acknowledged every one of them."""
        out, guard = self._producer, self._guard
        if out is None or guard is None:
            raise BrokerUnavailable("not connected to the broker yet")
        if not guard.verified:
            raise BrokerUnavailable(guard.reason)
        since = guard.failures
        records = self._batchable(emits)
        try:
            if records is not None:
                await self._send_batched(records)
            else:
                async with asyncio.timeout(self.ack_timeout):
                    await self._send(out, emits)
        except (TimeoutError, KafkaError) as exc:
            raise BrokerUnavailable(f"broker did not acknowledge: {type(exc).__name__}") from exc
        try:
            async with asyncio.timeout(self.ack_timeout):
                await guard.confirm(since)
        except Exception as exc:
            raise BrokerUnavailable(f"topics not verified after the ack: {exc}") from exc

    def _batchable(self, emits: Sequence[Emit]) -> list[tuple[str, int, bytes, bytes]] | None:
        """``emits`` as (topic, partition, key, value), or None if one takes the ordinary path."""
        batcher = self._batcher
        if batcher is None:
            return None
        records = []
        for emit in emits:
            if emit.broadcast:
                return None
            topic = self.topic(emit)
            key = emit.key.encode()
            value = dumps(emit.value)
            partition = batcher.partition(topic, key)
            if partition is None or len(value) > BATCH_MAX_BYTES:
                return None
            records.append((topic, partition, key, value))
        return records

    async def _send_batched(self, records: list[tuple[str, int, bytes, bytes]]) -> None:
        """Through the batcher; one timer per request bounds the wait (no timeout scope)."""
        batcher = self._batcher
        assert batcher is not None
        futures = [batcher.submit(*record) for record in records]
        timer = batcher.loop.call_later(self.ack_timeout, _expire, futures)
        try:
            if len(futures) == 1:
                await futures[0]
            else:
                await asyncio.gather(*futures)
        finally:
            timer.cancel()

    async def _send(self, out: AIOKafkaProducer, emits: Sequence[Emit]) -> None:
        """The ordinary path: broadcasts, large records, a topic whose metadata is missing."""
        futures: list[asyncio.Future[Any]] = []
        for emit in emits:
            topic = self.topic(emit)
            key = emit.key.encode()
            value = dumps(emit.value)
            if emit.broadcast:
                partitions = await out.partitions_for(topic)
                for partition in sorted(partitions):
                    futures.append(await out.send(topic, key=key, value=value, partition=partition))
            else:
                futures.append(await out.send(topic, key=key, value=value))
        if len(futures) == 1:
            await futures[0]
        else:
            await asyncio.gather(*futures)

    async def ready(self) -> bool:
        """Whether the gateway can persist now: connected, and its topics found with their
        partition counts by a check made for this call (shared with concurrent requests)."""
        guard = self._guard
        if self._producer is None or guard is None:
            return False
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                await guard.confirm(guard.failures)
        except Exception:
            return False
        return True

    @property
    def not_ready_reason(self) -> str:
        if self._producer is None or self._guard is None:
            return "not connected to the broker yet"
        return self._guard.reason
