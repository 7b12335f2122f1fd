"""Stage A: the per-checkout agent on ``cart-events`` (key ``store:checkout``).

A thin driver of :class:`recovery.checkout_stage.CheckoutStage`, which does the stage's work
without I/O: this agent decodes each message (one event or a batch) straight into typed cart
events when it holds nothing else, a batch mixing them with other records one record at a time,
anything else into records; hands them to the stage, and hands the stage's effects over: the
records for ``shopper-events`` (per partition, in the stage's order, packed into batches) and
the dead letters to the producer, then the ``checkouts`` table writes, then
:meth:`agents.output.Output.ship`. It also counts what the stage did in Prometheus and keeps
the wall clock (a tick on every partition of the input).

Messages are handled in windows (see WINDOW_MESSAGES), each partition's in offset order
(agents/inputs.py). At-least-once holds because a window's offsets are committed only once its
records and table writes are acknowledged; a crash mid-window loses the window's writes and
records together, and its messages are read again.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import faust

from agents import decision_metrics
from agents.inputs import Inputs
from agents.messages import Undecodable, records_in, text_of
from agents.output import Output
from agents.windows import WINDOW_BYTES, WINDOW_MESSAGES, WINDOW_SECONDS, TableView, Window
from bus.partitioning import key_partition
from recovery.checkout_stage import CheckoutEffects, CheckoutStage
from recovery.clock import tick
from recovery.stage_effects import DEAD_LETTERS, Outgoing, Record
from schemas.batches import packed
from schemas.cart_events import batch_records, cart_events_in
from schemas.codec import dumps
from streams.app import Pipeline
from streams.inbox import Inbox, inbox_of
from telemetry import metrics

log = logging.getLogger(__name__)
# Within a window, writes and records are handed to the producer once this many checkouts
# are pending, so producing overlaps the rest of the window instead of following it.
HANDOVER_AT = 4000


def register(pipeline: Pipeline, output: Output) -> None:
    app = pipeline.app
    table = app.Table("checkouts", default=None, partitions=pipeline.partitions)
    stage = CheckoutStage(pipeline.policies, pipeline.partitions, TableView(output, table))

    inputs = Inputs(app, pipeline.cart_events)

    inbox: Inbox | None = None

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    def _revoked(sender: Any, *args: Any, **kwargs: Any) -> None:
        stage.revoked()
        inputs.revoked()
        if inbox is not None:
            inbox.clear()

    targets = list(range(pipeline.partitions))
    partition_of: dict[str, int] = {}  # murmur2 is pure Python: hash a shopper key once

    def target_of(key: str) -> int:
        found = partition_of.get(key)
        if found is None:
            found = key_partition(key.encode(), targets)
            if len(partition_of) >= 65_536:
                partition_of.clear()
            partition_of[key] = found
        return found

    async def produce(records: list[Outgoing]) -> None:
        """The window's records: dead letters to the DLQ; those for stage B per partition (a
        keyed one where its key hashes to, the producer's own partitioner, so keyed records
        from elsewhere land there too), in order, as ``{"batch": [...]}`` messages of up to
        BATCH_MAX_BYTES (each record names its shopper); a lone record as itself, keyed."""
        outgoing: dict[int, list[tuple[str | None, Record]]] = {}
        for out in records:
            if out.to == DEAD_LETTERS:
                await output.send(pipeline.cart_events_dlq, out.record)
                continue
            if out.partition is not None:
                target = out.partition
            else:
                assert out.key is not None  # the stage keys every record it does not address
                target = target_of(out.key)
            outgoing.setdefault(target, []).append((out.key, out.record))
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

    window = Window(app)

    def report(effects: CheckoutEffects) -> None:
        """What the window did, in Prometheus and the log."""
        decision_metrics.events_read(effects.events_read)
        decision_metrics.cart_effects(effects.cart_effects)
        for refused in effects.refused:
            if refused.error is not None:
                log.error("cart event failed", exc_info=refused.error)
            decision_metrics.cart_event_refused(refused.reason, malformed=refused.malformed)
            log.warning(
                "cart event rejected on partition %d: %s", refused.partition, refused.reason
            )
        decision_metrics.stored_rows_unreadable(len(effects.unreadable))
        for row in effects.unreadable:
            log.error("a checkout row cannot be read, left as it is: %s: %s", row.key, row.reason)
        for erased in effects.erased:
            log.info(
                "%s: %d checkouts erased on partition %d",
                erased.kind,
                erased.count,
                erased.partition,
            )
        for partition, count in effects.rebuilt:
            log.info("checkout timers of partition %d rebuilt: %d pending", partition, count)
        wall = pipeline.clock == "wall"
        for timers in effects.timers:
            reference = time.time() if wall else timers.now
            decision_metrics.timers_fired("carts", timers.pending, timers.due, reference)

    async def hand_over() -> None:
        """The window's records and its table writes, to the producer. Output.ship hands the
        records over first: a crash between the two re-reads the window and sends those
        records again (at least once) rather than keeping states whose records were never
        sent (their event ids would make the re-read events duplicates, and the records
        would be lost)."""
        effects = stage.take()
        await produce(effects.records)
        await window.write(output, table, effects.writes)
        await output.ship()
        report(effects)

    def on_message(partition: int, payload: Any) -> None:
        if isinstance(payload, bytes):
            events = cart_events_in(payload)
            if events is not None and stage.fold_events(
                partition, events, lambda: records_in(payload)
            ):
                return
            # a batch mixing cart events with other records: typed one record at a time
            raws = batch_records(payload)
            if raws is not None:
                stage.fold_raw(partition, raws)
                return
        try:
            records = records_in(payload)
        except Undecodable as exc:
            stage.refuse(partition, text_of(payload), str(exc))
            return
        stage.fold(partition, records)

    @app.agent(pipeline.cart_events, name="checkouts", concurrency=1)
    async def checkouts(stream: faust.StreamT[Any]) -> None:
        nonlocal inbox
        inbox = inbox_of(stream)
        async for messages in inbox.windows(WINDOW_MESSAGES, WINDOW_SECONDS, WINDOW_BYTES):
            for message in messages:
                if not await inputs.admit(message):
                    continue
                partition = window.enter(message)
                try:
                    with metrics.processing("checkouts"):
                        on_message(partition, message.value)
                except Exception:
                    log.exception("cart-events message failed; continuing")
                if stage.pending >= HANDOVER_AT:
                    await hand_over()
            await hand_over()
            inputs.commit_when_settled(output)
            window.close()

    if pipeline.clock == "wall":

        @app.timer(pipeline.tick_interval, on_leader=True)
        async def wall_clock() -> None:
            now = time.time()
            for partition in range(pipeline.partitions):
                await output.send(pipeline.cart_events, tick(now), partition=partition)
            await output.ship()
