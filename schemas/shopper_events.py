"""The records of ``shopper-events``: typed structs, as stage A makes them and stage B reads them.

Stage A makes a shopper's ``cart_abandoned``, ``cart_converted``, ``cart_reopened`` and
``cart_emptied`` as the structs below and sends them as they encode; the gateway sends
``consent_changed`` and ``shopper_redacted`` (their canonical form is :mod:`schemas.records`;
a test keeps the fields stage B reads there). Stage B reads each record into its struct in one
typed conversion, tagged by its ``type``, or refuses it with the path of the field at fault
(:func:`read_shopper_event`): a record may come from elsewhere than stage A (a replay, another
producer). Ticks and store redactions are the partition's, not a shopper's: stage B reads them
apart.

Fields only the senders read (an order's ``items``, ``event_id`` and ``contact``) are typed
``Any`` here: the senders check them where they read them, and stage B does not refuse a
record for them.

Times stay as they travel (ISO-8601, or epoch seconds) and are read by the transition that
needs them; the abandoned cart stays the snapshot stage A sent (an object whose amounts stage B
checks once, when it takes the abandonment in). ``sk`` is stage A's stamp, ``[time, phase]``,
by which stage B orders a shopper's records from several stage-A partitions.

Faust-free on purpose: the pure core imports this module.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import msgspec

from schemas.field_reasons import field_reason

Time = str | float  # ISO-8601, or epoch seconds
Stamp = tuple[float, Literal[0, 1]]  # stage A's (time, phase): recovery.checkouts


class ShopperEvent(msgspec.Struct, tag_field="type", omit_defaults=True, kw_only=True, gc=False):
    """What every record stage B takes carries: the shopper it is about (else the message's
    key names it) and stage A's stamp, if stage A sent it."""

    kind: ClassVar[str]
    store: str | None = None
    shopper: str | None = None
    sk: Stamp | None = None


class CartAbandoned(ShopperEvent, tag="cart_abandoned", omit_defaults=False):
    """Written in full: the senders read every abandonment's cycle and cart, the first cycle's
    included (the default)."""

    kind: ClassVar[str] = "cart_abandoned"
    checkout: str
    cycle: int = 1
    abandoned_at: Time | None = None
    occurred_at: Time | None = None
    cart: dict[str, Any] = msgspec.field(default_factory=dict)


class CartConverted(ShopperEvent, tag="cart_converted"):
    kind: ClassVar[str] = "cart_converted"
    checkout: str
    occurred_at: Time | None = None
    order_id: Any = None
    currency: str | None = None
    total: Any = None
    cycle: int | None = None
    # checked by recovery.redemption, which names the entry at fault
    discounts: Any = None
    discount_codes: Any = None
    # the order's lines (product id and title), for the senders' social proof
    items: Any = None
    event_id: Any = None
    contact: Any = None


class CartReopened(ShopperEvent, tag="cart_reopened"):
    kind: ClassVar[str] = "cart_reopened"
    checkout: str
    cycle: int | None = None
    occurred_at: Time | None = None


class CartEmptied(ShopperEvent, tag="cart_emptied"):
    kind: ClassVar[str] = "cart_emptied"
    checkout: str
    cycle: int | None = None
    occurred_at: Time | None = None


class ConsentChanged(ShopperEvent, tag="consent_changed"):
    kind: ClassVar[str] = "consent_changed"
    channel: str = "all"
    granted: bool = False
    source: str | None = None
    phone: str | None = None
    occurred_at: Time | None = None


class ShopperRedacted(ShopperEvent, tag="shopper_redacted"):
    kind: ClassVar[str] = "shopper_redacted"
    occurred_at: Time | None = None


AnyShopperEvent = (
    CartAbandoned | CartConverted | CartReopened | CartEmptied | ConsentChanged | ShopperRedacted
)
CartLeft = CartReopened | CartEmptied
# what stage A sends a shopper (recovery.checkouts)
StageARecord = CartAbandoned | CartConverted | CartReopened | CartEmptied
TYPES = (
    CartAbandoned, CartConverted, CartReopened, CartEmptied, ConsentChanged, ShopperRedacted
)  # fmt: skip
# each type's struct: a conversion to the one struct its ``type`` names is several times as
# fast as one to the tagged union
STRUCTS: dict[str, type[AnyShopperEvent]] = {cls.kind: cls for cls in TYPES}
RECORD_TYPES = frozenset(STRUCTS)


_CONVERT = msgspec.convert


class BadShopperEvent(ValueError):
    """A record stage B cannot take; the text is ``field: what is wrong``."""


def read_shopper_event(record: Any) -> AnyShopperEvent:
    """The typed record ``record`` (decoded JSON) holds, or :class:`BadShopperEvent`."""
    if type(record) is not dict:
        raise BadShopperEvent("event: expected a JSON object")
    kind = record.get("type")
    struct = STRUCTS.get(kind) if isinstance(kind, str) else None
    if struct is None:
        raise BadShopperEvent(f"type: unknown shopper event type {kind!r}")
    try:
        event: AnyShopperEvent = _CONVERT(record, struct)
    except msgspec.ValidationError as error:
        raise BadShopperEvent(field_reason(error)) from None
    return event


def as_sent(event: ShopperEvent) -> dict[str, Any]:
    """A typed record as a record again (a dead letter keeps what stage B read)."""
    found: dict[str, Any] = msgspec.to_builtins(event)
    return found
