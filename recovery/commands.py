"""Wire records stage B emits: touch commands (schemas TouchCommand) and audience removals.

Pure: plain dicts in the wire form, so the stream, the simulator and the tests share them.
"""

from __future__ import annotations

import hashlib
from typing import Any

from recovery.checkouts import iso
from recovery.model import Cart, Plan, PlannedTouch
from recovery.shoppers import Emission


def _contact(cart: Cart) -> dict[str, Any]:
    c = cart.contact
    return {
        "email": c.email,
        "phone": c.phone,
        "sms_phone": c.sms_phone,
        "customer_id": c.customer_id,
        "first_name": c.first_name,
        "email_consent": c.email_consent,
        "sms_consent": c.sms_consent,
        "locale": c.locale,
    }


def _summary(cart: Cart) -> dict[str, Any]:
    return {
        "total": str(cart.total),
        "currency": cart.currency,
        "items": [
            {
                "title": i.title,
                "quantity": i.quantity,
                "price": str(i.price),
                "product_id": i.product_id,
                "variant_id": i.variant_id,
                "sku": i.sku,
                "cost": None,
            }
            for i in cart.items
        ],
    }


def _reason(touch: PlannedTouch) -> str:
    """Why the touch goes; a human touch adds the one-line cart summary for the person."""
    if touch.channel == "human" and touch.summary:
        return f"{touch.reason}. Cart: {touch.summary}"
    return touch.reason


def _base(plan: Plan, touch: PlannedTouch, cart: Cart, due: float) -> dict[str, Any]:
    return {
        "type": "touch",
        "touch_id": touch.touch_id,
        "store": plan.store,
        "shopper": plan.shopper,
        "cart": plan.cart,
        "band": plan.band,
        "segment": plan.segment,
        "step": touch.step,
        "channel": touch.channel,
        "template": touch.template,
        "plan_version": plan.version,
        "due_at": iso(due),
        "contact": _contact(cart),
        "cart_summary": _summary(cart),
        "recovery_url": cart.recovery_url,
        "incentive": None,
        "reason": _reason(touch),
    }


def touch_command(emission: Emission) -> dict[str, Any]:
    touch, decision = emission.touch, emission.decision
    command = _base(emission.plan, touch, emission.cart, emission.due)
    if touch.incentive_kind is not None:
        command["incentive"] = {
            "kind": touch.incentive_kind,
            "value": str(touch.incentive_value) if touch.incentive_value is not None else None,
            "code": decision.code,
            "service": touch.incentive_service,
            "expires_at": iso(decision.expires_at.timestamp()) if decision.expires_at else None,
        }
    return command


def audience_removal(plan: Plan, cart: Cart, at: float, why: str) -> list[dict[str, Any]]:
    """Commands taking the shopper back out of every retargeting audience the plan used."""
    out = []
    for touch in plan.touches:
        if touch.channel != "ads":
            continue
        command = _base(plan, touch, cart, at)
        digest = hashlib.blake2b(f"{touch.touch_id}:remove".encode(), digest_size=16).hexdigest()
        command.update(touch_id=f"t_{digest}", template="audience_remove", reason=why)
        out.append(command)
    return out
