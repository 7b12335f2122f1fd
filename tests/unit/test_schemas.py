import json

import jsonschema
import pytest

from cartbands.sample import sample_events
from schemas.codec import loads
from schemas.jsonschema import record_schema, render, schema_path
from schemas.records import EXPORTED, CartCompleted, CartUpdated


@pytest.mark.parametrize("record", EXPORTED, ids=lambda r: r.__name__)
def test_committed_schema_file_matches_record(record):
    assert schema_path(record).read_text() == render(record), (
        "schema file is stale: run `python -m schemas.jsonschema`"
    )


@pytest.mark.parametrize("record", EXPORTED, ids=lambda r: r.__name__)
def test_schema_is_valid_json_schema(record):
    jsonschema.Draft202012Validator.check_schema(json.loads(schema_path(record).read_text()))


def test_serialized_records_validate_against_files():
    validator = jsonschema.Draft202012Validator(record_schema(CartUpdated))
    for event in sample_events():
        validator.validate(loads(CartUpdated.from_data(event).dumps()))
    completed = CartCompleted.from_data(
        {
            "store": "s",
            "checkout": "c",
            "event_id": "e",
            "occurred_at": "2026-11-02T15:00:00Z",
            "currency": "USD",
            "total": "12.00",
            "order_id": "1001",
        }
    )
    jsonschema.Draft202012Validator(record_schema(CartCompleted)).validate(loads(completed.dumps()))


def test_schema_rejects_float_money():
    validator = jsonschema.Draft202012Validator(record_schema(CartUpdated))
    event = loads(CartUpdated.from_data(sample_events()[0]).dumps())
    event["total"] = 18.5
    assert not validator.is_valid(event)
