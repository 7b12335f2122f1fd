"""Stage A: the per-checkout agent on ``cart-events`` (key ``store:checkout``).

Moves data only: each message (one event or a batch) is folded into the ``checkouts`` table by
:mod:`recovery.checkouts`; a tick pops the checkouts whose abandonment deadline or retention
has come, and is then forwarded to every partition of ``shopper-events`` so stage B's clock is
the minimum of its upstream partitions' clocks (a watermark): every ``cart_abandoned`` a stage-A
partition emits before a tick reaches stage B before that tick does.

Messages are handled in windows (see WINDOW_MESSAGES). At-least-once holds because a window's
messages are acknowledged only after its table writes and records are with the producer, which
Faust flushes before it commits offsets; a crash mid-window loses the window's writes and
records together, and its messages are read again.
"""

from __future__ import annotations

import itertools
import logging
import time
import weakref
from typing import Any

import faust
from faust.streams import _current_event
from faust.types import EventT

from agents import decision_metrics
from agents.messages import Undecodable, records_in, text_of
from agents.output import Output
from bus.partitioning import key_partition
from recovery import checkouts as stage_a
from recovery.checkouts import BadEvent
from recovery.clock import BadTick, PartitionClocks, tick, tick_time
from recovery.ids import checkout_key
from recovery.timer_index import TimerIndex
from schemas.batches import packed
from schemas.codec import dumps
from streams.app import Pipeline
from telemetry import metrics

log = logging.getLogger(__name__)
# Input messages are taken in windows (Faust ``take_events``: acked only after the window's
# writes and records are handed to the producer). A window's table writes are coalesced per
# checkout and its records for stage B leave as one batch per partition: fewer, larger
# messages on both topics. A window closes after this many messages or this many seconds.
WINDOW_MESSAGES = 1024
WINDOW_SECONDS = 0.05
# Within a window, writes and records are handed to the producer once this many checkouts
# are pending, so producing overlaps the rest of the window instead of following it.
HANDOVER_AT = 1000


def register(pipeline: Pipeline, output: Output) -> None:
    app = pipeline.app
    table = app.Table("checkouts", default=None, partitions=pipeline.partitions)
    index = TimerIndex()
    clocks = PartitionClocks()

    # the window's latest state per checkout key (None: delete), with the key's partition:
    # read before the table, written to it when the window is handed over
    pending: dict[str, tuple[int, dict[str, Any] | None]] = {}

    def state_of(key: str) -> dict[str, Any] | None:
        found = pending.get(key)
        return output.get(table, key) if found is None else found[1]

    def current_seq(key: str) -> int | None:
        state = state_of(key)
        return state.get("seq") if state else None

    def keep(partition: int, key: str, state: dict[str, Any] | None) -> None:
        """Keep ``state`` for the hand-over and schedule its next due time."""
        pending[key] = (partition, state)
        # a partition whose index a rebalance dropped mid-window is rebuilt from the table
        if state is not None and index.built(partition):
            index.schedule(partition, stage_a.next_due(state), state.get("seq", 0), key)

    def ensure_index(partition: int) -> None:
        """Rebuild the heaps of every partition not indexed yet, in one pass over the table."""
        if index.built(partition):
            return
        entries: dict[int, list[tuple[float, int, str]]] = {partition: []}
        # the table, and the window's states not written to it yet (after a rebalance)
        unwritten = ((key, state) for key, (_, state) in list(pending.items()))
        for key, state in itertools.chain(output.items(table), unwritten):
            if not state or index.built(owner := state.get("pt", -1)):
                continue
            due = stage_a.next_due(state)
            if due is not None:
                entries.setdefault(owner, []).append((due, state.get("seq", 0), key))
        for owner, found in entries.items():
            index.rebuild(owner, found)
            log.info("checkout timers of partition %d rebuilt: %d pending", owner, len(found))

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    def _revoked(sender: Any, *args: Any, **kwargs: Any) -> None:
        index.forget_all()
        clocks.forget_all()

    async def erase(partition: int, record: dict[str, Any]) -> None:
        """A store's or a shopper's redaction: forget their checkouts on this partition."""
        doomed = [
            key
            for key, state in output.items(table)
            if state and state.get("pt") == partition and stage_a.erased_by(record, key, state)
        ]
        for key in doomed:
            await output.put(table, partition, key, None)
        log.info(
            "%s: %d checkouts erased on partition %d", record.get("type"), len(doomed), partition
        )

    targets = list(range(pipeline.partitions))
    # the window's records for stage B by partition, in order: (shopper key or None, record)
    outgoing: dict[int, list[tuple[str | None, dict[str, Any]]]] = {}
    partition_of: dict[str, int] = {}  # murmur2 is pure Python: hash a shopper key once

    def target_of(key: str) -> int:
        found = partition_of.get(key)
        if found is None:
            found = key_partition(key.encode(), targets)
            if len(partition_of) >= 65_536:
                partition_of.clear()
            partition_of[key] = found
        return found

    def emit(effects: list[stage_a.Effect]) -> None:
        """Queue the records for stage B, by the partition their shopper key hashes to (the
        producer's own partitioner, so keyed records from elsewhere land there too)."""
        decision_metrics.cart_effects(effects)
        for effect in effects:
            if effect.record is not None and effect.key is not None:
                target = target_of(effect.key)
                record = effect.record
                if record.get("shopper") != effect.key:
                    record = {**record, "shopper": effect.key}
                outgoing.setdefault(target, []).append((effect.key, record))

    async def send_outgoing() -> None:
        """The window's records for stage B: per partition, ``{"batch": [...]}`` messages of
        up to BATCH_MAX_BYTES (each record names its shopper); a lone record as itself, keyed."""
        topic = pipeline.shopper_events
        for target, queued in outgoing.items():
            encoded = [(key, dumps(record)) for key, record in queued]
            for run, message in packed(encoded, lambda item: item[1]):
                if message is None:
                    key, payload = run[0]
                    keyed = None if key is None else key.encode()
                    await output.send_encoded(topic, payload, keyed, target)
                else:
                    await output.send_encoded(topic, message, partition=target)
        outgoing.clear()

    async def reject(partition: int, record: Any, reason: str, *, malformed: bool = True) -> None:
        decision_metrics.cart_event_refused(reason, malformed=malformed)
        log.warning("cart event rejected on partition %d: %s", partition, reason)
        await output.send(
            pipeline.cart_events_dlq,
            {"reason": reason, "partition": partition, "record": record},
        )

    # the window's latest event of each partition
    latest: dict[int, EventT] = {}

    def make_current(event: EventT) -> None:
        """Make ``event`` Faust's current event in this task. A window's events are handed
        over as a list, outside the stream's iteration, and a RocksDB table reads and writes
        the store of the current event's partition. The context variable is Faust's own
        (faust.streams has no public setter; Stream._set_current_event would also change
        the stream's attribute that take_events' buffering task reads)."""
        _current_event.set(weakref.ref(event))

    async def on_records(partition: int, records: list[Any]) -> None:
        ensure_index(partition)
        seen: decision_metrics.EventsRead = {}
        try:
            await fold(partition, records, seen)
        finally:
            decision_metrics.events_read(seen)

    async def fold(partition: int, records: list[Any], seen: decision_metrics.EventsRead) -> None:
        for record in records:
            kind = record.get("type") if isinstance(record, dict) else None
            if kind == "tick":
                try:
                    now = tick_time(record)
                except BadTick as exc:
                    await reject(partition, record, str(exc))
                    continue
                on_tick(partition, now)
                continue
            if isinstance(kind, str) and kind in stage_a.REDACTIONS:
                await hand_over()  # the erasure scans the table
                await erase(partition, record)
                continue
            if kind == "checkout_redacted":
                key = checkout_key(str(record.get("store")), str(record.get("checkout")))
                if stage_a.erases_checkout(record, state_of(key)):
                    keep(partition, key, None)
                continue
            decision_metrics.event_read(record, seen)
            try:
                checked = stage_a.validate(record)
                _, store, checkout, _ = checked
                key = checkout_key(store, checkout)
                state = state_of(key)
                policy = pipeline.policies.for_store(store)
                new, effects = stage_a.apply_event(state, record, partition, policy, checked)
            except BadEvent as exc:
                await reject(partition, record, str(exc))
                continue
            except Exception as exc:  # a bug must not stop the partition
                log.exception("cart event failed")
                reason = f"internal error: {type(exc).__name__}: {exc}"
                await reject(partition, record, reason, malformed=False)
                continue
            if new is not state:
                keep(partition, key, new)
            emit(effects)

    async def on_message(partition: int, payload: Any) -> None:
        try:
            records = records_in(payload)
        except Undecodable as exc:
            await reject(partition, text_of(payload), str(exc))
            return
        await on_records(partition, records)

    async def write_pending() -> None:
        """One table write per key per window, however many events and ticks touched it."""
        if not pending:
            return
        was = faust.current_event()
        current = None
        for key, (partition, state) in pending.items():
            if partition != current:
                make_current(latest[partition])
                current = partition
            await output.put(table, partition, key, state)
        pending.clear()
        if was is not None:
            make_current(was)

    async def hand_over() -> None:
        """The window's records for stage B and its table writes, to the producer. Output.ship
        hands the records over first: a crash between the two re-reads the window and sends
        those records again (at least once) rather than keeping states whose records were
        never sent (their event ids would make the re-read events duplicates, and the records
        would be lost)."""
        await send_outgoing()
        await write_pending()
        await output.ship()

    def on_tick(partition: int, now: float) -> None:
        now = clocks.advance(partition, now)
        fired = index.pop_due(partition, now, current_seq)
        for _due, key in fired:
            state = state_of(key)
            if not state:
                continue
            new, effects = stage_a.apply_tick(state, key, now)
            keep(partition, key, new)
            emit(effects)
        reference = time.time() if pipeline.clock == "wall" else now
        decision_metrics.timers_fired(
            "carts", index.pending(), [due for due, _ in fired], reference
        )
        # queued after every record this partition emitted up to now, so they all reach
        # stage B before the tick does
        forwarded = tick(now, partition, pipeline.partitions)
        for target in targets:
            outgoing.setdefault(target, []).append((None, forwarded))

    @app.agent(pipeline.cart_events, name="checkouts", concurrency=1)
    async def checkouts(stream: faust.StreamT[Any]) -> None:
        assert isinstance(stream, faust.Stream)  # StreamT does not declare take_events
        async for window in stream.take_events(WINDOW_MESSAGES, within=WINDOW_SECONDS):
            for event in window:
                latest[event.message.partition] = event
                make_current(event)
                try:
                    with metrics.processing("checkouts"):
                        await on_message(event.message.partition, event.value)
                except Exception:
                    log.exception("cart-events message failed; continuing")
                if len(pending) >= HANDOVER_AT:
                    await hand_over()
            await hand_over()
            latest.clear()

    if pipeline.clock == "wall":

        @app.timer(pipeline.tick_interval, on_leader=True)
        async def wall_clock() -> None:
            now = time.time()
            for partition in range(pipeline.partitions):
                await output.send(pipeline.cart_events, tick(now), partition=partition)
            await output.ship()
