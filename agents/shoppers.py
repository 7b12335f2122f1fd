"""Stage B: the per-shopper agent on ``shopper-events`` (key ``store:shopper``).

Folds abandonments, conversions, consent changes and redactions into the ``shoppers`` table
through :mod:`recovery.shoppers`, and on each advance of the partition's watermark (the minimum
of the ticks forwarded by every stage-A partition) decides the touches that have come due and
emits them to ``touches.<channel>``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import faust

from agents import decision_metrics
from agents.messages import Undecodable, records_in, text_of
from agents.output import Output
from recovery import shopper_holds as holding
from recovery import shoppers as stage_b
from recovery.checkouts import BadEvent
from recovery.clock import BadTick, Watermarks, tick_time
from recovery.commands import audience_removal, touch_command
from recovery.ids import checkout_key
from recovery.policy import StorePolicy
from recovery.timer_index import TimerIndex
from streams.app import Pipeline
from telemetry import metrics

log = logging.getLogger(__name__)


def register(pipeline: Pipeline, output: Output) -> None:
    app = pipeline.app
    table = app.Table("shoppers", default=None, partitions=pipeline.partitions)
    index = TimerIndex()
    watermarks = Watermarks()

    def store_of(key: str) -> str:
        return key.partition(":")[0]

    def policy_of(key: str) -> StorePolicy:
        return pipeline.policies.for_store(store_of(key))

    def current_seq(key: str) -> int | None:
        state = output.get(table, key)
        return state.get("seq") if state else None

    def ensure_index(partition: int) -> None:
        """Rebuild the heaps of every partition not indexed yet, in one pass over the table."""
        if index.built(partition):
            return
        entries: dict[int, list[tuple[float, int, str]]] = {partition: []}
        for key, state in output.items(table):
            if not state or (due := holding.due_of(state)) is None:
                continue
            if index.built(owner := state.get("pt", -1)):
                continue
            entries.setdefault(owner, []).append((due, state.get("seq", 0), key))
        for owner, found in entries.items():
            index.rebuild(owner, found)
            log.info("shopper timers of partition %d rebuilt: %d pending", owner, len(found))

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    def _revoked(sender: Any, *args: Any, **kwargs: Any) -> None:
        index.forget_all()
        watermarks.forget_all()

    async def dead_letter(partition: int, record: Any, reason: str) -> None:
        """A record stage B cannot take: to the pipeline's dead-letter topic with its reason
        (and counted), so it is neither lost silently nor in the way of the shopper's next."""
        log.warning("shopper event rejected on partition %d: %s", partition, reason)
        metrics.dead_lettered("cart_events", reason.split(":", 1)[0].strip().replace(" ", "_"))
        await output.send(
            pipeline.cart_events_dlq,
            {"reason": reason, "partition": partition, "record": record, "topic": "shopper-events"},
        )

    async def perform(partition: int, key: str, out: stage_b.Outputs) -> None:
        for record, reason in out.rejected:
            await dead_letter(partition, record, reason)
        for emission in out.touches:
            command = touch_command(emission)
            topic = pipeline.touch_topics[emission.touch.channel]
            await output.send(topic, command, key.encode())
        for removal in out.audience_removals:
            plan, cart, why = removal["plan"], removal["cart"], removal["why"]
            for command in audience_removal(plan, cart, removal["at"], why):
                await output.send(pipeline.touch_topics["ads"], command, key.encode())
        for record in (*out.plans, *out.recoveries):
            await output.send(pipeline.recoveries, record, key.encode())
        decision_metrics.shopper_outputs(out, policy_of(key).band_names)
        for record in out.to_every_checkout_partition:
            for target in range(pipeline.partitions):
                await output.send(pipeline.cart_events, record, partition=target)
        for record in out.redact_checkouts:
            erased = checkout_key(record["store"], record["checkout"])
            await output.send(pipeline.cart_events, record, erased.encode())

    async def write(partition: int, key: str, state: dict[str, Any] | None) -> None:
        if state is None:
            return
        await output.put(table, partition, key, state)
        index.schedule(partition, holding.due_of(state), state.get("seq", 0), key)

    async def on_record(partition: int, key: str, record: dict[str, Any]) -> None:
        state = output.get(table, key)
        if holding.holds(record, watermarks.current(partition)):
            await write(partition, key, holding.hold(state, record, partition))
            return
        new, out = holding.apply_now(state, key, record, partition, policy_of(key))
        await write(partition, key, new)
        await perform(partition, key, out)

    async def on_due(partition: int, key: str, state: dict[str, Any], now: float) -> None:
        """The watermark reached the shopper: its held records up to now, then due touches."""
        policy = policy_of(key)
        outs: list[stage_b.Outputs] = []
        current: dict[str, Any] | None = state
        if state.get("qd") is not None and state["qd"] <= now:
            current, released = holding.release(state, key, now, partition, policy)
            outs.extend(released)
        if current is not None and current.get("nd") is not None and current["nd"] <= now:
            current, out = stage_b.apply_due(
                current, key, now, policy, pipeline.secret(store_of(key))
            )
            outs.append(out)
        if current is None:
            await output.put(table, partition, key, None)
        else:
            await write(partition, key, current)
        for out in outs:
            await perform(partition, key, out)

    async def on_tick(partition: int, record: dict[str, Any]) -> None:
        now = watermarks.advance(partition, record)
        if now is None:
            return
        fired = index.pop_due(partition, now, current_seq)
        for _due, key in fired:
            state = output.get(table, key)
            if not state:
                continue
            try:
                await on_due(partition, key, state, now)
            except Exception:
                log.exception("due touches of a shopper failed; skipping it until it changes")
        reference = time.time() if pipeline.clock == "wall" else now
        decision_metrics.timers_fired(
            "recovery", index.pending(), [due for due, _ in fired], reference
        )

    async def erase_store(partition: int, record: dict[str, Any]) -> None:
        """A store's redaction: forget every shopper of that store on this partition."""
        doomed = [
            key
            for key, state in output.items(table)
            if state and state.get("pt") == partition and stage_b.erased_by_store(record, key)
        ]
        for key in doomed:
            await output.put(table, partition, key, None)
        log.info("store_redacted: %d shoppers erased on partition %d", len(doomed), partition)

    async def on_message(partition: int, key: Any, records: list[Any]) -> None:
        for record in records:
            try:
                if not isinstance(record, dict):
                    raise BadEvent("event: expected a JSON object")
                if record.get("type") == "tick":
                    tick_time(record)
                    await on_tick(partition, record)
                    continue
                if record.get("type") == "store_redacted":
                    await erase_store(partition, record)
                    continue
                shopper = record.get("shopper") or key
                if not isinstance(shopper, str) or ":" not in shopper:
                    raise BadEvent("shopper: missing store:shopper key")
                await on_record(partition, shopper, record)
            except (BadEvent, BadTick) as exc:
                await dead_letter(partition, record, str(exc))
            except Exception as exc:  # a bug must not stop the partition
                log.exception("shopper event failed; continuing")
                await dead_letter(partition, record, f"internal error: {type(exc).__name__}: {exc}")

    @app.agent(pipeline.shopper_events, name="shoppers", concurrency=1)
    async def shoppers(stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            partition = event.message.partition
            ensure_index(partition)
            key = event.key
            if isinstance(key, bytes):  # any producer may write here: a key need not be UTF-8
                key = key.decode("utf-8", "replace")
            with metrics.processing("shoppers"):
                try:
                    records = records_in(event.value)
                except Undecodable as exc:
                    await dead_letter(partition, text_of(event.value), str(exc))
                    await output.ship()
                    continue
                await on_message(partition, key, records)
                await output.ship()  # before the message is acknowledged (the next one's read)
