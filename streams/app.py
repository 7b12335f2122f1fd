"""Factory for the cartbands Faust app, tuned for the facts in ../shared/BROKER.md."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import faust

from bus.topics import CHANNELS, TopicNames
from recovery.policyset import PolicySet
from schemas.codec import register_codec
from streams.consumer import InlineDeliveryTransport
from streams.inbox import source_topic
from streams.monitor import OffsetsMonitor
from streams.supervision import ExitingApp, StopOnCrash
from streams.tables import KeptTable

Clock = Literal["wall", "event"]
CODE_SECRET_ENV = "CARTBANDS_CODE_SECRET"
DEV_CODE_SECRET = b"cartbands-development-secret"


def code_secret(store: str, environ: dict[str, str] | None = None) -> bytes:
    """The keyed-hash secret for a store's discount codes, from the environment.

    ``CARTBANDS_CODE_SECRET_<STORE>`` (store id upper-cased, non-alphanumerics as ``_``), else
    ``CARTBANDS_CODE_SECRET``, else a development secret (fine for demos, never for production).
    """
    env = os.environ if environ is None else environ
    suffix = "".join(ch if ch.isalnum() else "_" for ch in store.upper())
    value = env.get(f"{CODE_SECRET_ENV}_{suffix}") or env.get(CODE_SECRET_ENV)
    return value.encode() if value else DEV_CODE_SECRET


class WorkerApp(ExitingApp):
    """The worker's Faust app: on Kafka its consumer delivers messages inline
    (streams/consumer.py)."""

    def _new_transport(self) -> Any:
        if self.conf.broker_consumer[0].scheme in ("kafka", "aiokafka"):
            return InlineDeliveryTransport(self.conf.broker_consumer, self)
        return super()._new_transport()


@dataclass
class Pipeline:
    """The app, its policy, and the topics the agents read from and write to."""

    app: WorkerApp
    policies: PolicySet
    names: TopicNames
    cart_events: faust.TopicT
    shopper_events: faust.TopicT
    cart_events_dlq: faust.TopicT
    recoveries: faust.TopicT
    touch_topics: dict[str, faust.TopicT]
    partitions: int
    clock: Clock = "wall"
    tick_interval: float = 1.0
    secrets: dict[str, bytes] = field(default_factory=dict)

    def secret(self, store: str) -> bytes:
        if store not in self.secrets:
            self.secrets[store] = code_secret(store)
        return self.secrets[store]


def create_app(
    *,
    broker: str,
    policies: PolicySet,
    app_id: str = "cartbands",
    partitions: int = 8,
    store: str = "memory://",
    state_dir: Path = Path("var/state"),
    topic_prefix: str = "",
    clock: Clock = "wall",
    tick_interval: float = 1.0,
) -> Pipeline:
    """Build the two-stage app, its topics and settings; ``clock='event'`` takes time only from
    ticks in the input. The agents and their tables are the caller's to add
    (``agents.register_all``): this package never imports them."""
    register_codec()  # the app and its topics name the "orjson" codec
    names = TopicNames(topic_prefix)
    app = WorkerApp(
        app_id,
        broker=broker,
        store=store,
        datadir=str(state_dir),
        topic_partitions=partitions,
        topic_replication_factor=1,
        # tansu answers JoinGroup only after session_timeout/2: keep it short.
        broker_session_timeout=6.0,
        broker_heartbeat_interval=1.0,
        broker_rebalance_timeout=10.0,
        broker_commit_interval=1.0,
        producer_linger=0.01,
        # Per partition: batched messages are tens of KB each, and at Faust's 1 MiB a worker
        # with a backlog waits on fetches instead of keeping its core busy.
        consumer_max_fetch_size=4 * 1024 * 1024,
        producer_max_batch_size=256 * 1024,
        producer_acks=-1,
        processing_guarantee="at_least_once",
        table_standby_replicas=1,
        web_enabled=False,
        table_cleanup_interval=30.0,
        key_serializer="raw",
        value_serializer="orjson",
        consumer_auto_offset_reset="earliest",
        # an agent that raised stops the worker (non-zero exit) instead of idling, restarted
        agent_supervisor=StopOnCrash,
        # a restore records no changelog offset past the broker's end (tansu's quirk 4)
        Table=KeptTable,
        # Faust's per-message statistics, which nothing here reads, left out (streams/monitor)
        Monitor=OffsetsMonitor,
    )

    def topic(name: str) -> faust.TopicT:
        return app.topic(name, key_type=bytes, value_serializer="orjson", partitions=partitions)

    pipeline = Pipeline(
        app=app,
        policies=policies,
        names=names,
        cart_events=source_topic(app, names.cart_events, partitions),
        shopper_events=source_topic(app, names.shopper_events, partitions),
        cart_events_dlq=topic(names.cart_events_dlq),
        recoveries=topic(names.recoveries),
        touch_topics={channel: topic(names.touches(channel)) for channel in CHANNELS},
        partitions=partitions,
        clock=clock,
        tick_interval=tick_interval,
    )
    return pipeline
