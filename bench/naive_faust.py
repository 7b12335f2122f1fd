"""The naive reference: a Faust agent that decodes each event and writes one table entry per event.

What a first Faust version of stage A looks like: Faust's default settings (memory store, json
table values, default producer and commit settings, one agent, ``-l info``) except the tansu fix
(a short session timeout, else every join waits 30 s). Each cart event is decoded with orjson
(the project's codec, faster than Faust's default json, so the reference is not handicapped) and
the checkout's summary is written to a table, i.e. one changelog message per event.

``--work none`` drops the table write (the agent only iterates and acknowledges, nothing is
produced): what Faust's consumer shell alone costs per message; ``--work take`` iterates in
windows with Faust's ``take_events``; ``--work inbox`` takes them as the worker's agents do, from
an inbox (streams/inbox.py: no Faust stream; offsets committed by the agent, every second).
``--shell cartbands`` builds the app with the worker's shell (streams/: the OffsetsMonitor
sensor) instead of Faust's defaults, everything else the same.

Run as its own process by the benchmarks::

    python -m bench.naive_faust --broker kafka://127.0.0.1:PORT --topic T --app-id A \
        [--work table|none] [--shell faust|cartbands]
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

import faust
import orjson

from bench.checkout_summary import checkout_summary

TABLE = "naive-carts"
WORKS = ("table", "none", "take", "inbox")
TAKE_MESSAGES, TAKE_SECONDS = 4096, 0.05  # agents/windows.py's WINDOW_MESSAGES, WINDOW_SECONDS
TAKE_BYTES = 4 * 1024 * 1024  # and its WINDOW_BYTES (inbox windows only)
COMMIT_EVERY = 1.0  # Faust's default commit interval
SHELLS = ("faust", "cartbands")


def build_app(
    broker: str,
    app_id: str,
    topic: str,
    partitions: int,
    work: str = "table",
    shell: str = "faust",
) -> faust.App:
    app_class: type[faust.App] = faust.App
    extra: dict[str, Any] = {}
    if shell == "cartbands":
        from streams.app import WorkerApp
        from streams.monitor import OffsetsMonitor

        app_class, extra = WorkerApp, {"Monitor": OffsetsMonitor}
    app = app_class(
        app_id,
        broker=broker,
        store="memory://",
        topic_partitions=partitions,
        web_enabled=False,
        # The tansu fix (BROKER.md): JoinGroup is answered after session_timeout/2.
        broker_session_timeout=6.0,
        broker_heartbeat_interval=1.0,
        consumer_auto_offset_reset="earliest",
        **extra,
    )
    if work == "inbox":
        return inbox_app(app, topic, partitions)
    source = app.topic(topic, key_type=bytes, value_type=bytes, value_serializer="raw")
    carts = app.Table(TABLE, default=None, partitions=partitions)

    if work == "none":

        @app.agent(source, name="naive-carts")
        async def shell_only(stream: faust.StreamT[Any]) -> None:
            async for _value in stream:
                pass

        return app
    if work == "take":

        @app.agent(source, name="naive-carts")
        async def windows_only(stream: faust.StreamT[Any]) -> None:
            assert isinstance(stream, faust.Stream)
            async for _window in stream.take_events(TAKE_MESSAGES, within=TAKE_SECONDS):
                pass

        return app

    @app.agent(source, name="naive-carts")
    async def naive(stream: faust.StreamT[Any]) -> None:
        async for key, value in stream.items():
            event = orjson.loads(value)
            checkout = key.decode() if isinstance(key, bytes) else str(key)
            carts[checkout] = checkout_summary(event)

    return app


def inbox_app(app: faust.App, topic: str, partitions: int) -> faust.App:
    """Consume only, in windows from an inbox, committing the offsets taken every second."""
    from faust.types import TP

    from streams.inbox import inbox_of, source_topic

    source = source_topic(app, topic, partitions)
    taken: dict[TP, int] = {}

    @app.agent(source, name="naive-carts")
    async def windows_only(stream: faust.StreamT[Any]) -> None:
        async for window in inbox_of(stream).windows(TAKE_MESSAGES, TAKE_SECONDS, TAKE_BYTES):
            for message in window:
                taken[message.tp] = message.offset + 1

    @app.timer(COMMIT_EVERY)
    async def commit() -> None:
        if taken:
            offsets = dict(taken)
            taken.clear()
            await app.consumer._commit(offsets)  # type: ignore[attr-defined]

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.naive_faust")
    parser.add_argument("--broker", required=True, help="kafka://host:port")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--app-id", required=True)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--loglevel", default="info")
    parser.add_argument("--work", choices=WORKS, default="table")
    parser.add_argument("--shell", choices=SHELLS, default="faust")
    args = parser.parse_args(argv)
    app = build_app(args.broker, args.app_id, args.topic, args.partitions, args.work, args.shell)
    sys.argv = [sys.argv[0]]  # Faust's worker reads argv; ours are parsed.
    worker = faust.Worker(app, loglevel=args.loglevel, quiet=True)
    logging.getLogger(__name__).info("naive Faust reference reading %s", args.topic)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
