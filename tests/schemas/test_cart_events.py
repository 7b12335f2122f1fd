"""The typed cart events stage A reads: what is taken, what is refused and how it is named."""

from __future__ import annotations

import msgspec
import orjson
import pytest

from recovery.clock import tick
from schemas.batches import records_of
from schemas.cart_events import (
    BadRecord,
    CartEvent,
    cart_dict,
    cart_events_in,
    read_cart_event,
    total_of,
)
from tests.pipeline.helpers import cart


def test_a_canonical_event_reads_back_as_its_snapshot_without_delivery_fields() -> None:
    event = cart("c1", "120")
    event["unknown_field"] = {"dropped": True}
    typed = read_cart_event(event)
    snapshot = cart_dict(typed)
    assert "unknown_field" not in snapshot
    assert not {"type", "event_id", "platform"} & set(snapshot)
    assert snapshot["total"] == "120" and snapshot["store"] == event["store"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"store": 5}, r"^store: expected str \| null, got int$"),
        ({"total": 12.5}, r"^total: expected .*, got float$"),
        ({"line_items": [{"price": "1", "quantity": True}]}, r"^line_items\[0\]\.quantity: "),
        ({"contact": "ann@example.com"}, r"^contact: expected object \| null, got str$"),
    ],
)
def test_a_field_of_the_wrong_type_is_refused_with_its_path(change, reason) -> None:
    with pytest.raises(BadRecord, match=reason):
        read_cart_event({**cart("c1", "120"), **change})


def test_only_a_json_object_is_an_event() -> None:
    with pytest.raises(BadRecord, match=r"^event: expected a JSON object$"):
        read_cart_event(["not", "an", "object"])


def test_a_total_absent_is_told_apart_from_a_null_one() -> None:
    absent = {k: v for k, v in cart("c1", "120").items() if k != "total"}
    assert read_cart_event(absent).total is msgspec.UNSET
    assert total_of(read_cart_event(absent)) is None
    assert read_cart_event({**absent, "total": None}).total is None


def test_a_cart_event_holds_no_reference_the_collector_tracks() -> None:
    import gc

    assert not gc.is_tracked(CartEvent(store="s"))


def test_cart_events_are_read_from_bytes_in_each_form_a_message_takes() -> None:
    one, two = cart("c1", "120"), cart("c2", "80")
    for payload in (
        orjson.dumps(one),
        b'{"batch":[' + orjson.dumps(one) + b"," + orjson.dumps(two) + b"]}",
        orjson.dumps([one, two]),
        b"  " + orjson.dumps([one]),
    ):
        events = cart_events_in(payload)
        assert events is not None
        assert [e.checkout for e in events] == [
            r["checkout"] for r in records_of(orjson.loads(payload))
        ]
        assert events[0] == read_cart_event(one)


@pytest.mark.parametrize(
    "payload",
    [
        orjson.dumps(tick(1.0)),
        orjson.dumps({"batch": [cart("c1", "120"), tick(1.0)]}),
        orjson.dumps({"type": "store_redacted", "store": "pipe"}),
        orjson.dumps({"batch": [cart("c1", "120")], "note": "not a batch: one record"}),
        orjson.dumps({**cart("c1", "120"), "total": 12.5}),
        orjson.dumps({**cart("c1", "120"), "order_id": 7}).replace(
            b":7}", b":1180591620717411303424}"
        ),
        orjson.dumps({**cart("c1", "120"), "discounts": [{"code": "A", "amount": 7}]}).replace(
            b":7}", b":18446744073709551616}"
        ),
        b"not json",
        b"",
        b'"a string"',
    ],
)
def test_a_message_holding_anything_else_is_left_to_the_record_by_record_read(payload) -> None:
    assert cart_events_in(payload) is None


def test_a_platform_absent_is_told_apart_from_a_null_one() -> None:
    absent = {k: v for k, v in cart("c1", "120").items() if k != "platform"}
    assert read_cart_event(absent).platform is msgspec.UNSET
    assert read_cart_event({**absent, "platform": None}).platform is None
    assert "platform" not in msgspec.to_builtins(read_cart_event(absent))


def test_an_integer_beyond_64_bits_is_refused_and_one_within_taken() -> None:
    taken = orjson.dumps({**cart("c1", "120"), "order_id": 2**63 - 1, "discounts": [2**64 - 1]})
    (event,) = cart_events_in(taken) or []
    assert event.order_id == 2**63 - 1 and event.discounts == [2**64 - 1]
    with pytest.raises(BadRecord, match=r"^order_id: "):
        read_cart_event({**cart("c1", "120"), "order_id": 2**63})
