"""Every message the default policy can plan renders with the shipped templates.

Each band's sequence as each segment refines it (templates swapped, incentives withheld): the
template exists for its channel, renders, and an offer template (one that leads with the
incentive) is only planned with an incentive to show.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from cartbands.explain import profile_for
from config.policyfile import load_policy
from recovery.delivery_policy import SenderIdentity
from recovery.model import Cart, ContactInfo, Item
from recovery.plan import plan_recovery
from recovery.policy import SEGMENTS
from senders.compose import compose
from senders.messages import HumanNote
from senders.templates import TemplateSource

IDENTITY = SenderIdentity(
    from_email="shop@acme.test",
    from_name="Acme Kitchen",
    postal_address="1 Main Street, Springfield, IL 62701, USA",
    unsubscribe_url="https://acme.test/unsubscribe",
)
AT = datetime(2026, 6, 10, 15, 0, tzinfo=UTC)
SHIPPED = Path(__file__).resolve().parents[2] / "senders" / "templates"
OFFER_TEMPLATES = {"offer_sms"}  # the message is the incentive: "$incentive on your cart"


def planned() -> list[tuple[str, str, str, str, bool]]:
    policy = load_policy().defaults
    found = set()
    for band in policy.bands:
        total = max(band.min, Decimal(10)) + 1
        cart = Cart(
            store="s1", checkout="c1", currency="USD", total=total, abandoned_at=AT,
            items=(Item("thing", 1, total),),
            contact=ContactInfo(email="a@example.com", phone="+12125550100",
                                email_consent=True, sms_consent=True),
        )  # fmt: skip
        for segment in SEGMENTS:
            plan = plan_recovery(profile_for(segment, policy, AT), cart, "s1:a", policy, AT)
            assert plan.segment == segment
            for touch in plan.touches:
                offered = touch.incentive_kind is not None
                found.add((band.name, segment, touch.channel, touch.template, offered))
    return sorted(found)


PLANNED = planned()


def test_the_merchandising_review_is_planned():
    assert ("high", "new", "human", "merchandising_review", False) in PLANNED


@pytest.mark.parametrize(("band", "segment", "channel", "template", "offered"), PLANNED)
def test_every_planned_template_renders(make_touch, band, segment, channel, template, offered):
    assert channel == "ads" or any((SHIPPED / channel).glob(f"{template}.*"))
    if template in OFFER_TEMPLATES:
        assert offered, f"{band}/{segment}: {template} planned without an incentive"
    incentive = {"kind": "percent_off", "value": "10", "code": "CODE"} if offered else None
    touch = make_touch(
        channel=channel, template=template, band=band, segment=segment, incentive=incentive
    )
    message = compose(touch, channel, IDENTITY, TemplateSource())
    assert message is not None


def test_the_merchandising_review_tells_a_person_the_cart_is_still_open(make_touch):
    touch = make_touch(channel="human", template="merchandising_review", step=5)
    note = compose(touch, "human", IDENTITY, TemplateSource())
    assert isinstance(note, HumanNote)
    assert note.subject == "Still open after 48h: 310.00 USD (high band) for Fay"
    assert "still open 48 hours after it was abandoned" in note.text
    assert "Recovery link: https://demo.example.com/checkouts/chk-high-1/recover" in note.text
