"""The typed cart events stage A reads: what is taken, what is refused and how it is named."""

from __future__ import annotations

import msgspec
import pytest

from schemas.cart_events import BadRecord, CartEvent, cart_dict, read_cart_event, total_of
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
