"""What every code provisioner offers, and the errors it raises.

Errors are the senders' delivery errors (:mod:`senders.outcomes`): a
:class:`~senders.outcomes.TransientError` (network, timeout, 429, 5xx, a throttled GraphQL
call) is retried with the store's retry policy, a :class:`~senders.outcomes.PermanentError`
(any other 4xx, a refused request) dead-letters the touch at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from recovery.code_spec import CodeSpec
from senders.outcomes import PermanentError


@dataclass(frozen=True)
class Provisioned:
    """A code that exists in the store: ``ref`` is the platform's id of it (what removal
    needs); ``created`` False when it was found there already (a retry, another sender)."""

    code: str
    ref: str
    created: bool


class NotOurs(PermanentError):
    """The code exists in the store but was not made for this touch: never send it."""


class Provisioner(Protocol):
    platform: str

    async def ensure(self, spec: CodeSpec) -> Provisioned:
        """Create the code unless it exists already (then check it is ours)."""
        ...

    async def remove(self, code: str, ref: str) -> bool:
        """Delete the code; False when it was gone already."""
        ...

    async def close(self) -> None: ...


def money(value: object) -> str:
    """A Decimal amount as the platforms take it: a string with two decimals."""
    if not isinstance(value, Decimal):
        raise TypeError(f"an amount must be a Decimal, not {type(value).__name__}")
    return f"{value.quantize(Decimal('0.01')):f}"


def percent(value: object) -> str:
    """A percentage as a plain decimal string (``10``, ``12.5``)."""
    if not isinstance(value, Decimal):
        raise TypeError(f"a percentage must be a Decimal, not {type(value).__name__}")
    return f"{value.normalize():f}"
