"""The worker says what it decided, one line per abandoned cart, and never whom it concerns:
structured (``--log-format json``) logs of a real worker process, free of contact data."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from bus.kafka import produce
from recovery.ids import checkout_key
from tests.conftest import Workers
from tests.pipeline.helpers import cart, read_touches, recent, without_holdout

EMAIL = "ada.lovelace@analytical.example"
PHONE = "+12125550147"
NAME = "Augusta"


def personal(checkout: str, total: str, at: float) -> dict[str, object]:
    event = cart(checkout, total, at, store="logs", email=EMAIL)
    contact = dict(event["contact"])  # type: ignore[call-overload]
    contact.update(phone=PHONE, sms_phone=PHONE, first_name=NAME)
    return {**event, "contact": contact}


def test_worker_logs_one_json_line_per_decision_without_contact_data(
    workers: Workers, fast_policy: Path, tmp_path: Path
) -> None:
    policy = without_holdout(fast_policy, tmp_path / "policy.yaml")
    workers.start(policy, "--log-format", "json")
    at = recent()
    events = [personal("big", "310.00", at), personal("small", "42.00", at)]
    records = [(checkout_key("logs", str(e["checkout"])), e) for e in events]
    asyncio.run(produce(workers.broker.bootstrap, workers.names.cart_events, records))
    touches = read_touches(workers.broker.bootstrap, list(workers.names.touch_topics), idle=3.0)
    assert touches, workers.logs()
    workers.stop_all()
    text = workers.processes[0][1].read_text(errors="replace")
    # every line is one JSON object (a traceback would be inside its record's "error")
    entries = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert entries and all({"ts", "level", "logger", "message"} <= set(e) for e in entries)
    decided = [e["message"] for e in entries if e["logger"] == "cartbands.decisions"]
    by_cart = {message.split()[2]: message for message in decided}
    assert set(by_cart) == {"big", "small"} and len(decided) == 2, decided
    assert "band=high" in by_cart["big"] and "value=310.00 USD" in by_cart["big"]
    assert "segment=new" in by_cart["big"] and ": plan v" in by_cart["big"]
    assert "band=low" in by_cart["small"] and "email+" in by_cart["small"]
    for secret in (EMAIL, "lovelace", PHONE, "5550147", NAME):
        assert secret not in text, f"contact data in the worker's log: {secret}"
