"""The figures of one reliability run: what the stream did against what the pure core says.

Every scenario ends with a :class:`Tally`. Its counts are the promises of DESIGN.md's
invariants, measured: each must be zero. ``render`` prints them as one table row so that the
CI log shows the figures of every scenario, failed or passed (conftest.py collects the rows and
prints the table at the end of the session).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from recovery.checkouts import _shopper, epoch, read_event

# the counts of every row, in table order: (attribute, column title)
COLUMNS = (
    ("lost", "lost"),
    ("duplicated", "dup"),
    ("differing", "differ"),
    ("after_order", "after-order"),
    ("after_redaction", "after-redact"),
    ("server_errors", "5xx"),
    ("leaks", "leaks"),
    ("stuck", "stuck"),
)
# a touch that withdraws a shopper from an ads audience is due after an order or a redaction
# by design: it is how the stop reaches the ads platform
WITHDRAWALS = frozenset({"audience_remove"})

CASES_SHOWN = 20

TALLIES: list[Tally] = []


@dataclass
class Tally:
    """The counts of one scenario; ``notes`` are scenario-specific figures (not promises)."""

    scenario: str
    expected: int = 0
    emitted: int = 0
    lost: int = 0
    duplicated: int = 0
    differing: int = 0
    after_order: int = 0
    after_redaction: int = 0
    server_errors: int = 0
    leaks: int = 0
    stuck: int = 0
    notes: dict[str, Any] = field(default_factory=dict)
    # the first few broken promises by name, so that a failed run says which touches
    cases: list[str] = field(default_factory=list)

    def failures(self) -> dict[str, int]:
        """The counts that are not zero (each one a broken promise)."""
        return {name: getattr(self, name) for name, _ in COLUMNS if getattr(self, name)}

    def render(self) -> str:
        return render([self])

    def record(self) -> Tally:
        """Keep this row for the session's table and print it (shown when the test fails)."""
        TALLIES.append(self)
        print("\n" + self.render())
        for case in self.cases:
            print("    " + case)
        return self

    def case(self, text: str) -> None:
        if len(self.cases) < CASES_SHOWN:
            self.cases.append(text)


def render(rows: Iterable[Tally]) -> str:
    titles = ["scenario", "core", "stream", *(title for _, title in COLUMNS)]
    table = [
        [
            row.scenario,
            str(row.expected),
            str(row.emitted),
            *(str(getattr(row, name)) for name, _ in COLUMNS),
        ]
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [titles, *table]) for i in range(len(titles))]
    lines = [" | ".join(text.ljust(width) for text, width in zip(titles, widths, strict=True))]
    lines.append("-+-".join("-" * width for width in widths))
    for row, line in zip(rows, table, strict=True):
        lines.append(
            " | ".join(text.ljust(width) for text, width in zip(line, widths, strict=True))
        )
        if row.notes:
            lines.append("    " + ", ".join(f"{k}: {v}" for k, v in row.notes.items()))
    return "\n".join(lines)


def signature(touch: Mapping[str, Any]) -> tuple[Any, ...]:
    """What must be equal between two copies of one touch command, and with the core's."""
    incentive = touch.get("incentive") or {}
    return (
        touch.get("touch_id"),
        touch.get("channel"),
        touch.get("step"),
        touch.get("due_at"),
        incentive.get("code"),
    )


def compare(
    tally: Tally,
    core: list[dict[str, Any]],
    stream: list[dict[str, Any]],
    *,
    ignore: Iterable[str] = (),
) -> None:
    """Count what the stream lost, added or changed against the core's touches.

    ``stream`` holds every copy the stream emitted (at-least-once: a copy may repeat, but only
    as the same command). ``ignore``: carts whose outcome a scenario checks otherwise.
    """
    skip = set(ignore)
    wanted = {t["touch_id"]: signature(t) for t in core if t["cart"] not in skip}
    copies: dict[str, set[tuple[Any, ...]]] = defaultdict(set)
    for touch in stream:
        if touch.get("cart") not in skip:
            copies[touch["touch_id"]].add(signature(touch))
    tally.expected = len(wanted)
    tally.emitted = len(copies)
    for touch_id in sorted(wanted.keys() - copies.keys()):
        tally.lost += 1
        tally.case(f"lost {touch_id}: {wanted[touch_id]}")
    for touch_id, seen in sorted(copies.items()):
        if seen != {wanted.get(touch_id)}:
            tally.differing += 1
            tally.case(
                f"differs {touch_id}: stream {sorted(seen, key=repr)}, core {wanted.get(touch_id)}"
            )
    by_shopper: dict[str, int] = Counter()
    for touch in stream:
        by_shopper[touch["shopper"]] += 1
    tally.stuck += len({t["shopper"] for t in core if t["cart"] not in skip} - by_shopper.keys())


def delivered(tally: Tally, outbox: list[dict[str, Any]]) -> Counter[str]:
    """Count touch ids the senders delivered more than once; returns deliveries per id."""
    per_id = Counter(line["touch_id"] for line in outbox)
    tally.duplicated += sum(1 for n in per_id.values() if n > 1)
    return per_id


def shopper_of(event: Mapping[str, Any]) -> str | None:
    """The stage-B key of a cart event (the same function stage A uses)."""
    return _shopper(str(event.get("store")), read_event(dict(event)))


def _carts(
    events: Iterable[Mapping[str, Any]],
) -> tuple[dict[str, list[tuple[float, str]]], dict[tuple[str, str], tuple[float, float]]]:
    """Orders per shopper (time, checkout), and (first, last update) per (shopper, checkout)."""
    orders: dict[str, list[tuple[float, str]]] = defaultdict(list)
    spans: dict[tuple[str, str], tuple[float, float]] = {}
    for event in events:
        who = shopper_of(event)
        if who is None:
            continue
        at = epoch(event["occurred_at"], "occurred_at")
        cart = (who, str(event.get("checkout")))
        if event.get("type") == "cart_completed" or event.get("completed_at"):
            orders[who].append((at, cart[1]))
        else:
            spans[cart] = (spans.get(cart, (at, at))[0], at)
    return orders, spans


def _plain(touches: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """One copy per touch id, withdrawals from ads audiences left out (they are due after an
    order or a redaction by design: that is how the stop reaches the ads platform)."""
    return [
        t
        for t in {t["touch_id"]: t for t in touches}.values()
        if t.get("template") not in WITHDRAWALS
    ]


def after_order(
    tally: Tally,
    events: Iterable[Mapping[str, Any]],
    touches: Iterable[Mapping[str, Any]],
    window: float = 3600.0,
) -> None:
    """Count touches due after an order that ended their plan (invariant 1).

    An order ends the plan of its own checkout, and the plans active when it comes: those of
    the shopper's carts abandoned by then (last update + the abandonment ``window``). A cart
    still open at the order, or started after it, is new activity.
    """
    orders, spans = _carts(events)
    for touch in _plain(touches):
        who, cart, due = touch["shopper"], touch["cart"], epoch(touch["due_at"], "due_at")
        abandoned = spans.get((who, cart), (0.0, float("-inf")))[1] + window
        if any(
            at < due and (checkout == cart or at >= abandoned)
            for at, checkout in orders.get(who, ())
        ):
            tally.after_order += 1
            tally.case(f"after order {touch['touch_id']}: cart {cart} due {touch['due_at']}")


def after_redaction(
    tally: Tally,
    events: Iterable[Mapping[str, Any]],
    touches: Iterable[Mapping[str, Any]],
    redactions: Mapping[str, float],
) -> None:
    """Count touches due after a redaction of the shopper (shopper key -> its time) for a cart
    the shopper started before it (invariant 6); a cart started later is new activity."""
    _, spans = _carts(events)
    for touch in _plain(touches):
        who, cart, due = touch["shopper"], touch["cart"], epoch(touch["due_at"], "due_at")
        redacted = redactions.get(who)
        began = spans.get((who, cart), (float("-inf"), 0.0))[0]
        if redacted is not None and began < redacted <= due:
            tally.after_redaction += 1


def leaks(texts: Mapping[str, str], needles: Iterable[str]) -> list[tuple[str, str]]:
    """(where, what) for every needle (a secret or a contact) found in one of ``texts``."""
    wanted = sorted({n for n in needles if n and len(n) >= 6})
    return [(where, needle) for where, text in texts.items() for needle in wanted if needle in text]
