"""Touch commands as senders get them: reasons, the human summary, incentive code and expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from config.policyfile import load_policy
from recovery.commands import touch_command
from recovery.decide import PlanState, due_touches
from recovery.model import Cart, ContactInfo, Item, Profile
from recovery.plan import plan_recovery
from recovery.shoppers import Emission

AT = datetime(2026, 6, 10, 15, 0, tzinfo=UTC)


def test_commands_carry_why_summary_code_and_expiry():
    everyone = load_policy().defaults
    policy = everyone.model_copy(
        update={"bands": [b.model_copy(update={"holdout": Decimal(0)}) for b in everyone.bands]}
    )
    cart = Cart(
        store="s1", checkout="c1", currency="USD", total=Decimal("310"), abandoned_at=AT,
        items=(Item("Espresso machine", 1, Decimal("310")),), recovery_url="https://shop/r/1",
        contact=ContactInfo(email="a@example.com", phone="+12125550100", email_consent=True,
                            sms_consent=True),
    )  # fmt: skip
    plan = plan_recovery(Profile(), cart, "s1:a", policy, AT)
    out = due_touches(plan, PlanState(), Profile(), cart, policy, AT + timedelta(days=5), b"k")
    commands = {
        i.touch.channel + str(i.touch.step): touch_command(
            Emission(i.touch, plan, cart, i.decision, i.at.timestamp())
        )
        for i in out.sent
    }
    human = commands["human5"]
    assert human["reason"].startswith(
        "step 5: human +2d merchandising_review; follow up by a person"
    )
    assert "1x Espresso machine @ 310" in human["reason"] and "https://shop/r/1" in human["reason"]
    assert human["cart_summary"]["items"][0]["title"] == "Espresso machine"
    offer = commands["email4"]
    assert offer["incentive"]["kind"] == "percent_off" and offer["incentive"]["value"] == "12"
    assert offer["incentive"]["code"] and offer["incentive"]["expires_at"].startswith("2026-06-14")
    assert commands["email1"]["incentive"] is None
    assert commands["email1"]["reason"] == "step 1: email +1h reminder"
