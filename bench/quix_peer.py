"""The quixstreams peer: cartbands' stage A on quixstreams (RocksDB state), for bench.pipeline.

Runs in its own interpreter, one with ``quixstreams`` installed (the ``bench-quix`` extra, kept
out of the project's venv): bench.pipeline starts it as a subprocess with ``--quix-python`` or
``CARTBANDS_QUIX_PYTHON`` and watches its consumer group's commits like the other peers'. Only
the pure core and Faust-free modules are imported from the repository (``recovery``,
``config``, ``schemas.json_codec``, ``schemas.batches``, ``bench.checkout_summary``): no Faust.

Two variants, on the same input as the worker's stage A (bench.events, ticks in the input):

- ``stage-a``: per event ``recovery.checkouts.read_event`` + ``validate`` + ``apply_event``
  with the store's policy, the checkout's state in quixstreams' state store (RocksDB,
  changelog topic), the effects' records produced to an output topic; ticks are passed
  through to it (stage A's own timer index is not run: no abandonment is decided here). One
  event per message: one output message per record, keyed by its shopper. Batched input: one
  ``{"batch": [...]}`` output message per input message.
- ``minimal``: decode + one state write per event (the checkout's summary, as
  bench/naive_faust.py writes), nothing produced: quixstreams' own per-message cost.

quixstreams keeps state per *message* key. A batched message (keyed by its first event) holds
events of many checkouts, so each event's state is reached through the partition's store
transaction with the event's checkout key as prefix, which is what quixstreams' own stateful
wrapper does with the message key.

    /work/venvs/quix/bin/python -m bench.quix_peer --broker HOST:PORT --topic T --output O \\
        --group G --state-dir DIR [--variant stage-a|minimal] [--policy FILE]
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from typing import Any

import msgspec
import orjson

from bench.checkout_summary import checkout_summary
from config.policyfile import DEFAULT_POLICY, load_policy
from recovery import checkouts as stage_a
from recovery.checkout_state import own_state
from recovery.checkouts import BadEvent
from recovery.ids import checkout_key
from recovery.policyset import PolicySet
from recovery.stage_effects import Record
from schemas.batches import records_of
from schemas.json_codec import dumps

VARIANTS = ("stage-a", "minimal")
SESSION_TIMEOUT_MS = 6000  # tansu answers JoinGroup after session_timeout/2 (BROKER.md quirk 1)
COMMIT_INTERVAL = 1.0  # seconds, the worker's broker_commit_interval
log = logging.getLogger(__name__)

# A state lookup: the checkout key's state (encoded) and a setter, both for one partition.
Get = Callable[[bytes], bytes | None]
Set = Callable[[bytes, bytes], None]


def fold_stage_a(
    records: list[Any], partition: int, policies: PolicySet, get: Get, put: Set
) -> list[Record]:
    """Stage A's per-event fold (agents/carts.py without its window and timer index): the
    records for stage B, ticks passed through. Refused events are dropped (the worker
    dead-letters them; the bench input has none)."""
    out: list[Record] = []
    for record in records:
        kind = record.get("type") if isinstance(record, dict) else None
        if kind == "tick":
            out.append(record)
            continue
        try:
            event = stage_a.read_event(record)
            checked = stage_a.validate(event)
            _, store, checkout, _ = checked
            key = checkout_key(store, checkout).encode()
            stored = get(key)
            state = own_state(orjson.loads(stored)) if stored is not None else None
            folded = stage_a.already_folded(state, event)
            policy = policies.for_store(store)
            new, effects = stage_a.apply_event(state, event, partition, policy, checked)
        except BadEvent:
            continue
        if not folded:
            put(key, dumps(new))
        for effect in effects:
            if effect.record is not None and effect.key is not None:
                found = effect.record
                if found.shopper != effect.key:
                    found = msgspec.structs.replace(found, shopper=effect.key)
                out.append(found)
    return out


def shopper_of(record: Record) -> str | None:
    """The key of a record for stage B sent alone: its shopper (a tick has none)."""
    return record.get("shopper") if isinstance(record, dict) else record.shopper


def fold_minimal(records: list[Any], put: Set) -> None:
    """One state write per event: the checkout's summary (bench/naive_faust.py's table value)."""
    for event in records:
        if not isinstance(event, dict) or event.get("type") == "tick":
            continue
        key = checkout_key(str(event.get("store")), str(event.get("checkout"))).encode()
        put(key, orjson.dumps(checkout_summary(event)))


def _tansu_retention() -> None:
    """quixstreams derives its changelog topics' config from the input topic's ``retention.ms``,
    which tansu's DescribeConfigs leaves out (KeyError): default it to -1 (infinite)."""
    from quixstreams.models.topics.manager import TopicManager

    derive = TopicManager.derive_topic_config.__func__

    def derive_with_default(cls: Any, topics: Any) -> Any:
        for topic in topics:
            topic.broker_config.extra_config.setdefault("retention.ms", "-1")
        return derive(cls, topics)

    TopicManager.derive_topic_config = classmethod(derive_with_default)


def build(args: argparse.Namespace) -> Any:
    from quixstreams import Application, message_context
    from quixstreams.models.serializers import Serializer

    class Raw(Serializer):
        """Values are encoded by the fold (orjson, Decimals as text), keys are bytes or text."""

        def __call__(self, value: Any, ctx: Any) -> bytes | None:
            if value is None or isinstance(value, bytes):
                return value
            if isinstance(value, str):
                return value.encode()
            return dumps(value)

    _tansu_retention()
    app = Application(
        broker_address=args.broker,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        commit_interval=COMMIT_INTERVAL,
        state_dir=args.state_dir,
        consumer_extra_config={"session.timeout.ms": SESSION_TIMEOUT_MS},
        loglevel=args.loglevel,
    )
    source = app.topic(args.topic, key_deserializer="bytes", value_deserializer="bytes")
    sdf = app.dataframe(source)

    def store_of() -> tuple[Get, Set]:
        transaction = sdf.processing_context.checkpoint.get_store_transaction(
            stream_id=sdf.stream_id, partition=message_context().partition
        )

        def get(key: bytes) -> bytes | None:
            return transaction.as_state(prefix=key).get_bytes("s")

        def put(key: bytes, value: bytes) -> None:
            transaction.as_state(prefix=key).set_bytes("s", value)

        return get, put

    if args.variant == "minimal":

        def minimal(value: bytes, _state: Any) -> None:
            _, put = store_of()
            fold_minimal(records_of(orjson.loads(value)), put)

        sdf.update(minimal, stateful=True)
        return app

    policies = load_policy(args.policy)
    output = app.topic(args.output, key_serializer=Raw(), value_serializer=Raw())

    def fold(value: bytes, _state: Any) -> list[Record]:
        get, put = store_of()
        decoded = orjson.loads(value)
        return fold_stage_a(records_of(decoded), message_context().partition, policies, get, put)

    if args.batched:
        # one output message per input message, its records as one batch (key unchanged)
        sdf = sdf.apply(fold, stateful=True)
        sdf = sdf.filter(bool)
        sdf = sdf.apply(lambda records: {"batch": records})
        sdf.to_topic(output)
    else:
        sdf = sdf.apply(fold, stateful=True, expand=True)
        sdf.to_topic(output, key=shopper_of)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.quix_peer")
    parser.add_argument("--broker", required=True, help="host:port")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--output", required=True, help="topic for stage B's records")
    parser.add_argument("--group", required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--variant", choices=VARIANTS, default="stage-a")
    parser.add_argument("--batched", action="store_true", help="input carries many per message")
    parser.add_argument("--policy", default=str(DEFAULT_POLICY))
    parser.add_argument("--loglevel", default="WARNING")
    args = parser.parse_args(argv)
    app = build(args)
    log.warning("quixstreams peer (%s) reading %s", args.variant, args.topic)
    app.run()


if __name__ == "__main__":
    main()
