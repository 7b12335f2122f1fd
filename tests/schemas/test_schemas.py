import json

import jsonschema
import pytest

from cartbands.sample import sample_events
from schemas import cart_events, records, shopper_events
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


@pytest.mark.parametrize(
    ("contract", "typed"),
    [
        (records.LineItem, cart_events.LineItem),
        (records.Contact, cart_events.Contact),
        (records.Address, cart_events.Address),
        (records.CustomerHistory, cart_events.CustomerHistory),
    ],
    ids=lambda part: part.__name__,
)
def test_stage_a_reads_every_field_of_a_cart_part_the_contract_has(contract, typed):
    """A field the canonical record gains but stage A's typed read lacks would be dropped from
    every snapshot without a word: the two list the same fields, in the same order."""
    assert tuple(contract._options.fields) == typed.__struct_fields__


def test_stage_a_reads_every_field_of_both_cart_events():
    contract = {*CartUpdated._options.fields, *CartCompleted._options.fields}
    assert contract == set(cart_events.CartEvent.__struct_fields__)


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


def test_batch_runs_keep_order_and_size_and_read_back_as_the_records():
    from agents.messages import records_of
    from schemas.batches import batch_message, runs
    from schemas.codec import dumps

    records = [{"n": n, "pad": "x" * (n % 7) * 40} for n in range(200)]
    encoded = [dumps(r) for r in records]
    cut = runs(encoded, len, limit=1000)
    assert [item for run in cut for item in run] == encoded
    assert all(sum(len(item) + 1 for item in run) <= 1000 for run in cut)
    assert len(cut) > 1
    read = [r for run in cut for r in records_of(loads(batch_message(run)))]
    assert read == records
    big = b"y" * 5000
    assert runs([b"a", big, b"b"], len, limit=1000) == [[b"a"], [big], [b"b"]]


def test_packed_runs_leave_a_lone_record_as_it_is():
    from agents.messages import records_of
    from schemas.batches import packed
    from schemas.codec import dumps

    encoded = [(f"k{n}", dumps({"n": n, "pad": "x" * 300})) for n in range(5)]
    big = ("big", b'{"n":"' + b"y" * 2000 + b'"}')
    messages = packed([*encoded, big], lambda item: item[1], limit=1000)
    assert [item for run, _ in messages for item in run] == [*encoded, big]
    assert messages[-1] == ([big], None)  # alone: its own message, its key kept
    batched = [(run, message) for run, message in messages if message is not None]
    assert batched and all(len(run) > 1 for run, _ in batched)
    read = [r for run, message in batched for r in records_of(loads(message))]
    assert read == [loads(payload) for run, _ in batched for _, payload in run]


@pytest.mark.parametrize(
    ("contract", "typed"),
    [
        (records.ConsentChanged, shopper_events.ConsentChanged),
        (records.ShopperRedacted, shopper_events.ShopperRedacted),
    ],
    ids=lambda part: part.__name__,
)
def test_stage_b_reads_a_canonical_shopper_record_as_it_was_sent(contract, typed):
    """Every field stage B reads of a gateway's record is one the contract has (besides the
    shopper and stage A's stamp, which the gateway leaves to the message's key), and a
    canonical record reads back with the values it was sent with."""
    own = {"type", "shopper", "sk"}
    assert set(typed.__struct_fields__) - own <= set(contract._options.fields)
    sent = contract.from_data(
        {"store": "s", "event_id": "e", "occurred_at": "2026-11-02T15:00:00Z",
         "channel": "sms", "granted": False, "source": "twilio", "phone": "+12125550100"}
    )  # fmt: skip
    wire = loads(sent.dumps())
    read = shopper_events.read_shopper_event(wire)
    assert type(read) is typed
    for name in set(typed.__struct_fields__) - own:
        assert getattr(read, name) == wire.get(name, getattr(typed(), name)), name
