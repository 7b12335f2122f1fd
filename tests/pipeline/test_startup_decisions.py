"""The pure parts of the start-up and logging shell: the decision line for each kind of plan,
the JSON log record, and the topic layout verdict."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bus.kafka import layout_problems, mismatch_message
from config.logs import JsonFormatter, log_format
from recovery.model import Plan, PlannedTouch
from telemetry.decisions import describe_plan

AT = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)


def plan(**changes: object) -> Plan:
    touches = (
        PlannedTouch("t1", 1, "email", "reminder", AT + timedelta(hours=1)),
        PlannedTouch(
            "t2", 2, "sms", "offer_sms", AT + timedelta(days=1),
            incentive_kind="percent_off", incentive_value=Decimal("10"),
        ),
    )  # fmt: skip
    fields: dict[str, object] = dict(
        store="acme", shopper="acme:5f1c", cart="chk-9", band="high", segment="new",
        version=1, touches=touches, value=Decimal("310.00"), currency="USD", abandoned_at=AT,
    )  # fmt: skip
    fields.update(changes)
    return Plan(**fields)  # type: ignore[arg-type]


def test_a_plan_is_one_line_with_each_touch_and_its_offset():
    line = describe_plan(plan())
    assert line == (
        "abandoned cart chk-9 store=acme shopper=acme:5f1c value=310.00 USD band=high "
        "segment=new: plan v1, 2 touches: email+1h, sms+1d(percent_off 10)"
    )


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"holdout": True, "touches": ()}, "no plan, holdout (control group)"),
        ({"rejected": "no rate for JPY", "touches": ()}, "no plan, rejected (no rate for JPY)"),
        ({"touches": ()}, "no plan, the band's sequence is empty"),
    ],
)
def test_no_plan_says_why(changes: dict[str, object], why: str):
    line = describe_plan(plan(**changes))
    assert line.endswith(": " + why) and "\n" not in line


def test_a_json_log_record_is_one_line_with_its_traceback_inside():
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        record = logging.getLogger("x").makeRecord(
            "x", logging.ERROR, __file__, 1, "failed %s", ("here",), exc_info=sys.exc_info()
        )
    text = JsonFormatter().format(record)
    assert "\n" not in text
    entry = json.loads(text)
    assert entry["level"] == "error" and entry["message"] == "failed here"
    assert "ValueError: bad" in entry["error"]


def test_log_format_is_text_or_json():
    assert log_format(" JSON ") == "json"
    with pytest.raises(ValueError, match="text, json"):
        log_format("xml")


def test_layout_verdict_names_missing_and_mismatched_topics():
    wanted = {"a": 8, "b": 8, "c": 8, "changelog": 8}
    missing, mismatched = layout_problems({"a": 8, "b": 4}, wanted, optional=["changelog"])
    assert missing == ["c"]
    assert mismatched == ["b has 4 partitions, not 8"]
    message = mismatch_message(mismatched)
    assert message.startswith("topic b has 4 partitions, not 8") and "--partitions" in message
