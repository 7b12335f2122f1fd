"""The naive reference: a Faust agent that decodes each event and writes one table entry per event.

What a first Faust version of stage A looks like: Faust's default settings (memory store, json
table values, default producer and commit settings, one agent, ``-l info``) except the tansu fix
(a short session timeout, else every join waits 30 s). Each cart event is decoded with orjson
(the project's codec, faster than Faust's default json, so the reference is not handicapped) and
the checkout's summary is written to a table, i.e. one changelog message per event.

Run as its own process by the benchmarks::

    python -m bench.naive_faust --broker kafka://127.0.0.1:PORT --topic T --app-id A
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

import faust
import orjson

TABLE = "naive-carts"


def build_app(broker: str, app_id: str, topic: str, partitions: int) -> faust.App:
    app = faust.App(
        app_id,
        broker=broker,
        store="memory://",
        topic_partitions=partitions,
        web_enabled=False,
        # The tansu fix (BROKER.md): JoinGroup is answered after session_timeout/2.
        broker_session_timeout=6.0,
        broker_heartbeat_interval=1.0,
        consumer_auto_offset_reset="earliest",
    )
    source = app.topic(topic, key_type=bytes, value_type=bytes, value_serializer="raw")
    carts = app.Table(TABLE, default=None, partitions=partitions)

    @app.agent(source, name="naive-carts")
    async def naive(stream: faust.StreamT[Any]) -> None:
        async for key, value in stream.items():
            event = orjson.loads(value)
            checkout = key.decode() if isinstance(key, bytes) else str(key)
            carts[checkout] = {
                "type": event.get("type"),
                "event_id": event.get("event_id"),
                "occurred_at": event.get("occurred_at"),
                "total": event.get("total"),
                "currency": event.get("currency"),
                "completed": event.get("type") == "cart_completed",
            }

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.naive_faust")
    parser.add_argument("--broker", required=True, help="kafka://host:port")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--app-id", required=True)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--loglevel", default="info")
    args = parser.parse_args(argv)
    app = build_app(args.broker, args.app_id, args.topic, args.partitions)
    sys.argv = [sys.argv[0]]  # Faust's worker reads argv; ours are parsed.
    worker = faust.Worker(app, loglevel=args.loglevel, quiet=True)
    logging.getLogger(__name__).info("naive Faust reference reading %s", args.topic)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
