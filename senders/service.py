"""The sender processes' shell: one aiokafka consumer per channel, in a consumer group.

Each channel runs in its own task with its own consumer group (``<app_id>-sender-<channel>``),
so a slow or failing provider holds up only its channel. Within a channel, touches are handled
one at a time and the offset is committed after the outcome is recorded (at-least-once
consumption; the de-dup log turns it into at-most-once delivery, see :mod:`senders.dedup`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.structs import ConsumerRecord

from bus.kafka import ensure_topics, producer
from bus.topics import TopicNames
from recovery.policyset import PolicySet
from recovery.social_proof import ProductOrders, Proof, best_seller, day_of
from schemas.codec import dumps, loads
from schemas.records import TouchCommand, TouchResult
from senders import metrics
from senders.codes.ledger import CodeLedger
from senders.codes.registry import CodeRoutes
from senders.codes.service import CodeService
from senders.codes.service import stop as stop_task
from senders.compose import compose
from senders.decide import DONE, REPORTED, SENDING, Verdict, after_previous, kept_result, precheck
from senders.dedup import DedupLog
from senders.delivery import Attempted, deliver_with_retries
from senders.follow import ShopperEventsFollower
from senders.outcomes import Outcome, PermanentError
from senders.registry import Routes
from senders.suppression import SuppressionView
from telemetry import metrics as shared

log = logging.getLogger(__name__)

SESSION_TIMEOUT_MS = 6000  # tansu answers JoinGroup after session_timeout / 2
DLQ_OUTCOMES = (Outcome.DEAD_LETTERED, Outcome.FAILED)
FOLLOWER_WAIT = 10.0  # seconds a touch of a redacted shopper waits for shopper-events


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class SenderConfig:
    bootstrap: str
    names: TopicNames
    app_id: str
    partitions: int
    outbox_dir: Path
    channels: tuple[str, ...]
    max_lateness_override: timedelta | None = None
    lateness_check: bool = True
    outbox_only: bool = False
    environ: Mapping[str, str] | None = None
    clock: Callable[[], datetime] = field(default=utcnow)


class _Rebalance(ConsumerRebalanceListener):
    """Finish the touch in hand before partitions go; after partitions arrive, catch up on the
    de-dup log (what their previous owner recorded) before any of their touches is handled.

    aiokafka may hand out records of new partitions while ``on_partitions_assigned`` still
    runs, so the sender also waits on ``caught_up``, cleared here at every revocation.
    """

    def __init__(self, sender: ChannelSender) -> None:
        self.sender = sender

    async def on_partitions_revoked(self, revoked: Collection[TopicPartition]) -> None:
        async with self.sender.busy:
            self.sender.caught_up.clear()

    async def on_partitions_assigned(self, assigned: Collection[TopicPartition]) -> None:
        applied = await self.sender.dedup.catch_up()
        self.sender.caught_up.set()
        log.info(
            "sender %s assigned %s (caught up %d de-dup records)",
            self.sender.channel,
            sorted(tp.partition for tp in assigned),
            applied,
        )


class ChannelSender:
    def __init__(
        self,
        channel: str,
        config: SenderConfig,
        routes: Routes,
        dedup: DedupLog,
        out: AIOKafkaProducer,
        suppressions: SuppressionView | None = None,
        follower: ShopperEventsFollower | None = None,
        codes: CodeService | None = None,
        orders: ProductOrders | None = None,
    ) -> None:
        self.channel = channel
        self.codes = codes
        self.suppressions = suppressions or SuppressionView()
        self.follower = follower
        self.orders = orders
        self.config = config
        self.routes = routes
        self.dedup = dedup
        self.out = out
        self.busy = asyncio.Lock()
        self.caught_up = asyncio.Event()

    def _consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            bootstrap_servers=self.config.bootstrap,
            group_id=f"{self.config.app_id}-sender-{self.channel}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=1000,
            max_poll_records=50,
            metadata_max_age_ms=5000,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop``; a broken consumer is rebuilt after a pause."""
        while not stop.is_set():
            consumer = self._consumer()
            try:
                await consumer.start()
                consumer.subscribe(
                    [self.config.names.touches(self.channel)],
                    listener=_Rebalance(self),
                )
                await self._loop(consumer, stop)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sender %s: consumer failed; restarting in 2s", self.channel)
                await asyncio.sleep(2)
            finally:
                await consumer.stop()

    async def _loop(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=500)
            for tp, records in batch.items():
                for record in records:
                    await self._wait_caught_up(stop)
                    if stop.is_set():
                        return
                    async with self.busy:
                        if not self.caught_up.is_set() or tp not in consumer.assignment():
                            # Rebalanced meanwhile: whoever owns the partition now reads it
                            # again from the committed offset; if it is still ours, from here.
                            if tp in consumer.assignment():
                                consumer.seek(tp, record.offset)
                            break
                        await self.handle(record)
                        await consumer.commit({tp: record.offset + 1})

    async def _wait_caught_up(self, stop: asyncio.Event) -> None:
        while not self.caught_up.is_set() and not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.caught_up.wait(), 0.5)

    def _proof(self, command: TouchCommand, now: datetime) -> Proof | None:
        """The cart's best seller with its true count in the store's window, if it reaches
        the store's threshold (the composer shows it to hesitant shoppers only)."""
        if self.orders is None:
            return None
        rule = self.routes.policies.for_store(command.store).social_proof
        items = [item.asdict() for item in command.cart_summary.items]
        return best_seller(
            self.orders, command.store, items, day_of(now), rule.window.days, rule.min_orders
        )

    async def handle(self, record: ConsumerRecord[bytes, bytes]) -> Outcome | None:
        """Decide, deliver, record, report one touch. Never raises for bad input."""
        try:
            command = TouchCommand.from_data(loads(record.value))
            if not command.touch_id or not command.shopper:
                raise ValueError("touch_id and shopper are required")
            if not isinstance(command.due_at, datetime) or command.due_at.tzinfo is None:
                raise ValueError("due_at must be a date-time with a time zone")
        except Exception as exc:
            metrics.MALFORMED.labels(self.channel).inc()
            await self._dead_letter(record, None, f"malformed touch command: {exc}"[:300])
            return None
        now = self.config.clock()
        previous = self.dedup.get(command.touch_id)
        if previous is not None:
            kept = kept_result(previous.state, previous.result)
            if kept is not None:
                return await self._publish(record, kept)
            verdict = after_previous(previous.state, previous.outcome)
            if previous.state == SENDING:
                return await self._finish(record, command, verdict, "dedup")
            repeat = self._result(command, verdict.outcome, verdict.reason, "dedup", None, 0)
            await self._send_result(repeat)
            return verdict.outcome
        route = self.routes.route(command.store, self.channel)
        provider = route.adapter.provider
        lateness = self.config.max_lateness_override
        if lateness is None:
            lateness = route.delivery.max_lateness
        early = precheck(
            command, self.channel, now, lateness if self.config.lateness_check else None
        )
        if early is None:
            if self.follower is not None and self.suppressions.awaits_activity(
                command, self.channel
            ):
                # Its abandonment is on shopper-events before the touch was emitted: read
                # that far, or the touch counts as from before the redaction.
                await self.follower.sync(FOLLOWER_WAIT)
            early = self.suppressions.check(command, self.channel)
        if early is not None:
            return await self._finish(record, command, early, provider)
        if self.codes is not None:
            # the code must exist in the store before any message names it
            refused = await self.codes.provision(command)
            if refused is not None:
                return await self._finish(record, command, refused, provider)
        try:
            proof = self._proof(command, now)
            message = compose(
                command,
                self.channel,
                route.delivery.sender,
                route.templates,
                route.events,
                proof=proof,
            )
        except PermanentError as exc:
            self._withdraw_code(command, "touch dead_lettered")
            return await self._finish(
                record, command, Verdict(Outcome.DEAD_LETTERED, exc.reason), provider
            )
        except Exception as exc:  # odd data must not wedge the channel in a crash loop
            log.exception("touch %s could not be rendered", command.touch_id)
            self._withdraw_code(command, "touch dead_lettered")
            reason = f"could not render: {type(exc).__name__}: {exc}"[:300]
            return await self._finish(
                record, command, Verdict(Outcome.DEAD_LETTERED, reason), provider
            )
        if route.limiter is not None:
            waited = await route.limiter.acquire()
            metrics.RATE_WAIT.labels(provider).inc(waited)
        await self.dedup.record(command.touch_id, SENDING, None, self.config.clock())
        result = await deliver_with_retries(
            route.adapter, message, command, route.delivery.retry, self.channel
        )
        if result.attempts > 1:
            for _ in range(result.attempts - 1):
                shared.delivery(self.channel, "retried")
        if result.outcome is not Outcome.DELIVERED:
            self._withdraw_code(command, f"touch {result.outcome.value}")
        return await self._finish(record, command, result, provider)

    def _withdraw_code(self, command: TouchCommand, why: str) -> None:
        """A code created for a touch that will not reach the shopper is deleted again."""
        code = command.incentive.code if command.incentive is not None else None
        if self.codes is not None and code:
            self.codes.withdraw(code, why)

    async def _finish(
        self,
        record: ConsumerRecord[bytes, bytes],
        command: TouchCommand,
        result: Verdict | Attempted,
        provider: str,
    ) -> Outcome:
        """Record the outcome with the result that reports it, then publish that result."""
        provider_id = result.provider_id if isinstance(result, Attempted) else None
        attempts = result.attempts if isinstance(result, Attempted) else 0
        touch_result = self._result(
            command, result.outcome, result.reason, provider, provider_id, attempts
        )
        await self.dedup.record(
            command.touch_id,
            DONE,
            result.outcome,
            touch_result.at,
            dict(touch_result.to_representation()),
        )
        return await self._publish(record, touch_result)

    async def _publish(
        self, record: ConsumerRecord[bytes, bytes], touch_result: TouchResult
    ) -> Outcome:
        """Dead-letter (if need be), publish and account for a recorded outcome; then note in
        the de-dup log that its result is out. Run again for the same result after a crash,
        it publishes the same result again (see :mod:`senders.dedup`)."""
        outcome = Outcome(touch_result.outcome)
        if outcome in DLQ_OUTCOMES:
            reason = touch_result.reason or outcome.value
            await self._dead_letter(record, touch_result.touch_id, reason, outcome)
        await self._send_result(touch_result)
        provider = touch_result.provider
        if outcome is Outcome.DELIVERED and provider not in (None, "outbox", "dedup"):
            route = self.routes.route(touch_result.store, self.channel)
            cost = route.delivery.costs.get(self.channel)
            if cost:
                policy = self.routes.policies.for_store(touch_result.store)
                band = shared.band_label(touch_result.band, policy.band_names)
                shared.channel_cost(
                    touch_result.store, policy.currency, self.channel, cost, band=band
                )
        await self.dedup.record(
            touch_result.touch_id, REPORTED, outcome, self.config.clock(), wait=False
        )
        return outcome

    def _result(
        self,
        command: TouchCommand,
        outcome: Outcome,
        reason: str | None,
        provider: str,
        provider_id: str | None,
        attempts: int,
    ) -> TouchResult:
        return TouchResult(
            touch_id=command.touch_id,
            store=command.store,
            shopper=command.shopper,
            cart=command.cart,
            channel=self.channel,
            step=command.step,
            band=command.band,
            outcome=outcome.value,
            at=self.config.clock(),
            template=command.template,
            reason=reason,
            provider=provider,
            provider_id=provider_id,
            attempts=attempts,
        )

    async def _send_result(self, result: TouchResult) -> None:
        await self.out.send_and_wait(
            self.config.names.touch_results,
            key=result.shopper.encode(),
            value=dumps(result.to_representation()),
        )
        shared.delivery(self.channel, Outcome(result.outcome).value)
        log.info(
            "touch %s %s via %s: %s%s",
            result.touch_id,
            self.channel,
            result.provider,
            result.outcome,
            f" ({result.reason})" if result.reason else "",
        )

    async def _dead_letter(
        self,
        record: ConsumerRecord[bytes, bytes],
        touch_id: str | None,
        reason: str,
        outcome: Outcome | None = None,
    ) -> None:
        try:
            original: Any = loads(record.value) if record.value is not None else None
        except ValueError:
            original = (record.value or b"").decode("utf-8", errors="replace")
        value = {
            "type": "touch_dead_letter",
            "channel": self.channel,
            "touch_id": touch_id,
            "outcome": outcome.value if outcome else "malformed",
            "reason": reason,
            "at": self.config.clock(),
            "source": {
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
            },
            "touch": original,
        }
        await self.out.send_and_wait(
            self.config.names.touches_dlq, key=record.key, value=dumps(value)
        )
        shared.dead_lettered("touches", outcome.value if outcome else "malformed")


async def ensure_compacted(bootstrap: str, topic: str, partitions: int) -> None:
    """Create ``topic`` with ``cleanup.policy=compact`` unless it exists (latest per key)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        if topic not in set(await admin.list_topics()):
            new = NewTopic(
                topic,
                num_partitions=partitions,
                replication_factor=1,
                topic_configs={"cleanup.policy": "compact"},
            )
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([new])
    finally:
        await admin.close()


def longest_window(policies: PolicySet) -> int:
    """The days of orders the senders keep: the longest social proof window of any store."""
    every = [policies.defaults, *policies.stores.values()]
    return max(policy.social_proof.window.days for policy in every)


class SenderService:
    """Everything one ``cartbands sender`` process runs."""

    def __init__(self, config: SenderConfig, policies: PolicySet) -> None:
        self.config = config
        self.routes = Routes(
            policies, config.channels, config.outbox_dir, config.environ, config.outbox_only
        )
        self.orders = ProductOrders(keep_days=longest_window(policies))
        self.senders: list[ChannelSender] = []
        self.view = SuppressionView()
        self.code_routes = CodeRoutes(policies, config.environ, config.outbox_only)
        self.codes: CodeService | None = None

    def count_order(self, record: Any) -> None:
        """Fold a ``shopper-events`` record into the social proof counts. Every start reads the
        topic from its beginning, so a restarted sender rebuilds them before it sends."""
        self.orders.apply(record, day_of(self.config.clock()))

    async def run(self, stop: asyncio.Event) -> None:
        config = self.config
        names = config.names
        topics = [
            *(names.touches(c) for c in config.channels),
            names.touch_results,
            names.touches_dlq,
            names.shopper_events,
        ]
        await ensure_compacted(config.bootstrap, names.sender_dedup, config.partitions)
        await ensure_topics(config.bootstrap, topics, config.partitions)
        out = producer(config.bootstrap)
        await out.start()
        dedup = DedupLog(config.bootstrap, names.sender_dedup, out)
        ledger = CodeLedger(dedup)
        codes = CodeService(self.code_routes, self.routes.policies, ledger, config.clock)
        self.codes = codes
        follower = ShopperEventsFollower(
            config.bootstrap,
            names.shopper_events,
            self.view,
            listeners=(codes.observe, self.count_order),
        )
        remover: asyncio.Task[None] | None = None
        try:
            await dedup.start()
            log.info("de-dup log loaded: %d touch ids", len(dedup.entries))
            log.info("discount codes live in stores: %d", ledger.load(config.clock()))
            remover = asyncio.create_task(codes.run(), name="code-removal")
            await follower.start()
            self.senders = [
                ChannelSender(
                    channel,
                    config,
                    self.routes,
                    dedup,
                    out,
                    self.view,
                    follower,
                    codes,
                    orders=self.orders,
                )
                for channel in config.channels
            ]
            tasks = [asyncio.create_task(s.run(stop), name=s.channel) for s in self.senders]
            try:
                await asyncio.gather(*tasks)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            await stop_task(remover)
            await follower.stop()
            await dedup.stop()
            await self.routes.close()
            await self.code_routes.close()
            await out.stop()
