"""10,500 seeded hostile requests over every gateway route (invariants 5 and 9).

Signed requests with mutated payloads and poison amounts, forged ones, broken headers (bytes
that are not UTF-8, control characters, oversized values), broken bodies, and bytes that are
not HTTP at all, to a gateway in this process (its real aiohttp server on loopback, producing to
the session broker). Counted: answers 500-599 other than 503 (a 503 says "not stored, deliver
again", and must only come when the broker or a platform API does not answer), forged requests
accepted, requests accepted whose events are not in ``cart-events``, and secrets or contacts
in a response or a log line.
"""

from __future__ import annotations

import logging
from collections import Counter

import pytest

from tests.gateway.helpers import having, read_until, running_gateway, write_policy
from tests.reliability.fuzz import SECRETS, Fuzzer, send_all
from tests.reliability.tally import Tally, leaks

pytestmark = pytest.mark.broker

CASES = 10_500
SEED = 14
# every logger a gateway process writes through (its own, aiohttp's, the Kafka client's)
LOGGERS = ("gateway", "aiohttp", "aiokafka", "cartbands", "asyncio")


class Collect(logging.Handler):
    """Every log record, formatted as a log file would show it (traceback included)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


async def test_ten_thousand_hostile_requests_over_every_route(broker, tmp_path):
    policy = write_policy(tmp_path / "policy.yaml")
    collect = Collect()
    # what a gateway started with --loglevel info writes, kept from pytest's own capture
    # (which would keep and format every record twice more)
    loggers = [logging.getLogger(name) for name in LOGGERS]
    saved = [(logger.level, logger.propagate) for logger in loggers]
    for logger in loggers:
        logger.addHandler(collect)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    try:
        async with running_gateway(
            broker.bootstrap, policy, max_body=64 * 1024, ack_timeout=60.0
        ) as gw:
            port = int(gw.url.rsplit(":", 1)[1])
            cases = Fuzzer(SEED, port).cases(CASES)
            answers = await send_all(cases, port)
            stored = [
                event_id
                for case, answer in zip(cases, answers, strict=True)
                if answer.status == 200
                for event_id in case.event_ids
            ]
            records = await read_until(
                broker.bootstrap, [gw.names.cart_events, gw.names.shopper_events],
                having("event_id", stored), timeout=60,
            )  # fmt: skip
    finally:
        for logger, (level, propagate) in zip(loggers, saved, strict=True):
            logger.removeHandler(collect)
            logger.setLevel(level)
            logger.propagate = propagate
    tally = Tally("10,500 hostile requests")
    tally.expected = len(cases)
    tally.emitted = sum(1 for a in answers if a.status == 200)
    statuses = Counter(a.status for a in answers)
    tally.server_errors = sum(n for s, n in statuses.items() if 500 <= s <= 599 and s != 503)
    found = {r.value.get("event_id") for r in records if isinstance(r.value, dict)}
    tally.lost = len(set(stored) - found)
    forged = sum(1 for c, a in zip(cases, answers, strict=True) if c.forged and a.status == 200)
    texts = {f"response {i}": a.raw.decode(errors="replace") for i, a in enumerate(answers)}
    texts["logs"] = "\n".join(collect.lines)
    presented = leaks(texts, SECRETS)
    contacts = leaks(texts, {c for case in cases for c in case.contacts})
    tally.leaks = len(presented) + len(contacts)
    by_kind = Counter(
        (c.kind, a.status) for c, a in zip(cases, answers, strict=True) if a.status >= 500
    )
    silent = Counter(c.kind for c, a in zip(cases, answers, strict=True) if a.status == 0)
    tally.notes.update(
        statuses=dict(sorted(statuses.items())),
        **{
            "forged accepted": forged,
            "5xx by kind": dict(by_kind),
            "closed without an answer, by kind": dict(silent),
            "secret leaks": len(presented),
            "contact leaks": len(contacts),
            "leak sample": sorted({where.split(" ")[0] for where, _ in [*presented, *contacts]}),
        },
    )
    tally.record()
    assert forged == 0
    assert tally.failures() == {}
