"""Stage A's state of one checkout, and its stored form.

A window of stage A takes a checkout's state once (:func:`own_state`), changes that one
object in place for every event and tick of the window, and writes it once. A table holds the
object; its changelog holds it as JSON with these short keys (the cart under ``c`` as the
event that brought it), read back as a dict on a restore::

    pt  partition          st  status            u   last updated_at (epoch s)
    ids recent delivery ids cy  abandonment cycle dl  abandonment deadline (epoch s) or None
    fa  forget-at (epoch s) seq timer sequence    sh  shopper key or None
    c   the latest cart snapshot (the event that brought it, with at most MAX_ITEMS lines)
    fp  an abandoned checkout's content fingerprint: the same cart sent again is no return
    pk  the highest goods value the checkout had, kept while the cart is worth less than it
        (and once abandoned): a cart shrunk to cheaper items is a price-sensitivity signal,
        carried as the abandoned cart's ``peak_total``
"""

from __future__ import annotations

from typing import Any

import msgspec

from schemas.cart_events import CartEvent

_CONVERT = msgspec.convert
_BUILTINS = msgspec.to_builtins


class CheckoutState(msgspec.Struct, omit_defaults=True, gc=False):
    pt: int = -1
    st: str | None = None
    u: float | None = None
    ids: list[str] = msgspec.field(default_factory=list)
    cy: int = 0
    dl: float | None = None
    fa: float | None = None
    seq: int = 0
    sh: str | None = None
    c: CartEvent | None = None
    fp: str | None = None
    pk: str | None = None

    def __json__(self) -> dict[str, Any]:
        """The JSON form Faust's codec writes (a RocksDB store encodes the table's values)."""
        found: dict[str, Any] = _BUILTINS(self)
        return found


_COPY = msgspec.structs.replace


def own_state(stored: Any) -> CheckoutState:
    """A state as the table holds it, as an object of the window's own to change in place: a
    copy of the table's object (whose lists a window extends), or the object of a state restored
    from its changelog as a dict. A snapshot the cart schema no longer takes is dropped rather
    than the checkout: its lifecycle (status, deadline, ids) goes on."""
    if type(stored) is CheckoutState:
        copied: CheckoutState = _COPY(stored, ids=list(stored.ids))
        return copied
    try:
        state: CheckoutState = _CONVERT(stored, CheckoutState)
    except msgspec.ValidationError:
        if not isinstance(stored, dict):
            raise
        state = _CONVERT({k: v for k, v in stored.items() if k != "c"}, CheckoutState)
    return state
