"""Stage B: the per-shopper agent on ``shopper-events`` (key ``store:shopper``).

A thin driver of :class:`recovery.shopper_stage.ShopperStage`, which folds abandonments,
conversions, consent changes and redactions into the ``shoppers`` table through
:mod:`recovery.shoppers`, and on each advance of a partition's watermark (the minimum of the
ticks forwarded by every stage-A partition) decides the touches that have come due. The agent
decodes the messages, hands the stage's records to their topics (``touches.<channel>``,
``recoveries``, ``cart-events`` and its dead letters), writes its states to the ``shoppers``
table and each partition's ticks to the ``watermarks`` table, and counts and logs what it
observed.

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
from faust.types import Message

from agents import decision_metrics
from agents.inputs import Inputs
from agents.messages import Undecodable, records_in, text_of
from agents.output import Output
from agents.windows import WINDOW_BYTES, WINDOW_MESSAGES, WINDOW_SECONDS, TableView, Window
from recovery.shopper_stage import ShopperEffects, ShopperStage, store_of
from recovery.stage_effects import CART_EVENTS, DEAD_LETTERS, RECOVERIES, TOUCHES
from streams.app import Pipeline
from streams.inbox import Inbox, inbox_of
from telemetry import metrics

log = logging.getLogger(__name__)


def register(pipeline: Pipeline, output: Output) -> None:
    app = pipeline.app
    table = app.Table("shoppers", default=None, partitions=pipeline.partitions)
    # per partition, the ticks it has read: kept so that a partition read again from its
    # committed offset knows the ticks before it (recovery.clock.Watermarks)
    clocks = app.Table("watermarks", default=None, partitions=pipeline.partitions)
    stage = ShopperStage(
        pipeline.policies,
        pipeline.secret,
        pipeline.partitions,
        TableView(output, table),
        TableView(output, clocks),
    )

    inputs = Inputs(app, pipeline.shopper_events)
    inbox: Inbox | None = None

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    def _revoked(sender: Any, *args: Any, **kwargs: Any) -> None:
        stage.revoked()
        inputs.revoked()
        if inbox is not None:
            inbox.clear()

    def topic_of(role: str) -> faust.TopicT:
        if role.startswith(TOUCHES):
            return pipeline.touch_topics[role.removeprefix(TOUCHES)]
        topics = {
            RECOVERIES: pipeline.recoveries,
            CART_EVENTS: pipeline.cart_events,
            DEAD_LETTERS: pipeline.cart_events_dlq,
        }
        return topics[role]

    def observe(effects: ShopperEffects) -> None:
        """The window's metrics and log lines: what the stage decided and saw."""
        for owner, pending in effects.rebuilt:
            log.info("shopper timers of partition %d rebuilt: %d pending", owner, pending)
        for refused in effects.refused:
            if refused.error is not None:
                log.error("shopper event failed; continuing", exc_info=refused.error)
            log.warning(
                "shopper event rejected on partition %d: %s", refused.partition, refused.reason
            )
            label = refused.reason.split(":", 1)[0].strip().replace(" ", "_")
            metrics.dead_lettered("cart_events", label)
        decision_metrics.stored_rows_unreadable(len(effects.unreadable))
        for row in effects.unreadable:
            log.error("a shopper row cannot be read, left as it is: %s: %s", row.key, row.reason)
        for failure in effects.due_failures:
            log.error(
                "due touches of a shopper failed; skipping it until it changes",
                exc_info=failure.error,
            )
        for key, out in effects.outputs:
            bands = pipeline.policies.for_store(store_of(key)).band_names
            decision_metrics.shopper_outputs(out, bands)
        for fired in effects.timers:
            reference = time.time() if pipeline.clock == "wall" else fired.now
            decision_metrics.timers_fired("recovery", fired.pending, fired.due, reference)
        for partition, erased in effects.erased:
            log.info("store_redacted: %d shoppers erased on partition %d", erased, partition)

    window = Window(app)

    async def hand_over() -> None:
        """The window's records, then its table writes, to the producer: a crash between the
        two re-reads the window and sends the records again (at least once) rather than
        keeping states whose records were never sent."""
        effects = stage.take()
        observe(effects)
        await output.send_all(
            (
                topic_of(out.to),
                out.record,
                None if out.key is None else out.key.encode(),
                out.partition,
            )
            for out in effects.records
        )
        await window.write(output, table, effects.writes)
        await window.write(output, clocks, effects.clocks)
        await output.ship()

    def on_message(message: Message) -> None:
        partition = message.partition
        key: Any = message.key
        if isinstance(key, bytes):  # any producer may write here: a key need not be UTF-8
            key = key.decode("utf-8", "replace")
        try:
            records = records_in(message.value)
        except Undecodable as exc:
            stage.dead_letter(partition, text_of(message.value), str(exc))
            return
        stage.fold(partition, key, records, message.offset)

    @app.agent(pipeline.shopper_events, name="shoppers", concurrency=1)
    async def shoppers(stream: faust.StreamT[Any]) -> None:
        nonlocal inbox
        inbox = inbox_of(stream)
        async for messages in inbox.windows(WINDOW_MESSAGES, WINDOW_SECONDS, WINDOW_BYTES):
            for message in messages:
                if not await inputs.admit(message):
                    continue
                window.enter(message)  # the stage reads the table of this message's partition
                with metrics.processing("shoppers"):
                    on_message(message)
            await hand_over()  # before the window is acknowledged (the next one's read)
            inputs.commit_when_settled(output)
            window.close()
