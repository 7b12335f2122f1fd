"""schemas.json_codec.dumps: the bytes orjson writes with the codec's options, from msgspec's
faster encoder; orjson still for what msgspec refuses, and the same error for what neither can
write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from recovery.checkout_state import CheckoutState
from schemas.cart_events import CartEvent
from schemas.json_codec import dumps, loads

OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS


def orjson_bytes(value: Any) -> bytes:
    """What the codec wrote with orjson alone."""

    def default(item: Any) -> Any:
        if isinstance(item, Decimal):
            return str(item)
        raise TypeError(type(item).__name__)

    return orjson.dumps(value, default=default, option=OPTIONS)


# the numbers the pipeline holds: epoch seconds with milliseconds, counts, ids; a float of
# 1e16 or more is written with another exponent form (below)
floats = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15)
times = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | floats
    | st.text()
    | st.decimals(allow_nan=False, allow_infinity=False, places=2)
    | times
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.text() | st.integers(-1000, 1000), inner, max_size=5)
    ),
    max_leaves=30,
)


@given(values)
def test_the_bytes_are_orjson_s(value: Any) -> None:
    assert dumps(value) == orjson_bytes(value)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_any_float_reads_back_as_itself(value: float) -> None:
    assert loads(dumps(value)) == value


@pytest.mark.parametrize(
    "value",
    [
        {True: 1, 1.5: "x"},  # keys msgspec refuses, orjson takes
        float("nan"),
        [float("inf"), -0.0],
        datetime(2026, 1, 1, 1, 2, 3, 456000, tzinfo=timezone(timedelta(hours=2))),
        datetime(2026, 1, 1),
        ("a", (1, 2)),
        "é\u2028\x00\x1f</",
    ],
)
def test_edge_values_are_written_as_orjson_writes_them(value: Any) -> None:
    assert dumps(value) == orjson_bytes(value)


def test_typed_states_alone_and_inside_records_are_the_same_bytes() -> None:
    cart = CartEvent(type="cart_updated", store="s", checkout="c", event_id="e1", total="9.50")
    state = CheckoutState(pt=3, st="open", u=1_793_635_200.5, ids=["e1"], c=cart)
    alone = dumps(state)
    assert alone == orjson_bytes(loads(alone))
    assert dumps({"state": state, "n": Decimal("1.10")}) == b'{"state":%s,"n":"1.10"}' % alone


class Represented:
    def to_representation(self) -> dict[str, Any]:
        return {"kind": "represented", "at": datetime(2026, 1, 1, tzinfo=UTC)}


def test_an_object_with_a_representation_is_written_as_it() -> None:
    assert dumps([Represented()]) == b'[{"kind":"represented","at":"2026-01-01T00:00:00Z"}]'


def test_what_orjson_refused_and_msgspec_writes_reads_back() -> None:
    assert sorted(loads(dumps({"k": {2, 1}}))["k"]) == [1, 2]  # a set: an array
    assert loads(dumps(2**64)) == float(2**64)  # beyond 64 bits: read back as a float


@pytest.mark.parametrize("value", [object(), {"k": object()}, "\ud800"])
def test_what_json_cannot_hold_raises_type_error(value: Any) -> None:
    with pytest.raises(TypeError):
        dumps(value)
