"""Conversions between wire records and the core's frozen dataclasses."""

from __future__ import annotations

from datetime import datetime

from recovery.ids import shopper_key
from recovery.model import Cart, ContactInfo, Item, Plan, PlannedTouch
from schemas.records import (
    CartSummary,
    CartUpdated,
    Contact,
    Incentive,
    LineItem,
    TouchCommand,
)


def contact_info(event: CartUpdated) -> ContactInfo:
    contact = event.contact or Contact()
    address = event.shipping_address or event.billing_address
    return ContactInfo(
        email=contact.email,
        phone=contact.phone,
        sms_phone=contact.sms_phone,
        customer_id=contact.customer_id,
        first_name=contact.first_name,
        email_consent=contact.email_consent,
        sms_consent=contact.sms_consent,
        locale=contact.locale,
        country_code=address.country_code if address else None,
        province_code=address.province_code if address else None,
    )


def cart_from_event(event: CartUpdated, abandoned_at: datetime, cycle: int = 1) -> Cart:
    return Cart(
        store=event.store,
        checkout=event.checkout,
        currency=event.currency,
        total=event.total,
        subtotal=event.subtotal,
        presentment_currency=event.presentment_currency,
        abandoned_at=abandoned_at,
        items=tuple(
            Item(
                title=li.title,
                quantity=li.quantity,
                price=li.price,
                cost=li.cost,
                product_id=li.product_id,
                variant_id=li.variant_id,
                sku=li.sku,
            )
            for li in event.line_items
        ),
        contact=contact_info(event),
        recovery_url=event.recovery_url,
        cycle=cycle,
    )


def shopper_of(event: CartUpdated) -> str | None:
    contact = event.contact or Contact()
    return shopper_key(event.store, contact.customer_id, contact.email, contact.phone)


def touch_command(plan: Plan, touch: PlannedTouch, cart: Cart) -> TouchCommand:
    incentive = None
    if touch.incentive_kind is not None:
        incentive = Incentive(
            kind=touch.incentive_kind,
            value=touch.incentive_value,
            service=touch.incentive_service,
        )
    c = cart.contact
    return TouchCommand(
        touch_id=touch.touch_id,
        store=plan.store,
        shopper=plan.shopper,
        cart=plan.cart,
        band=plan.band,
        segment=plan.segment,
        step=touch.step,
        channel=touch.channel,
        template=touch.template,
        due_at=touch.due_at,
        plan_version=plan.version,
        incentive=incentive,
        recovery_url=cart.recovery_url,
        contact=Contact(
            email=c.email,
            phone=c.phone,
            sms_phone=c.sms_phone,
            customer_id=c.customer_id,
            first_name=c.first_name,
            email_consent=c.email_consent,
            sms_consent=c.sms_consent,
            locale=c.locale,
        ),
        cart_summary=CartSummary(
            total=cart.total,
            currency=cart.currency,
            items=[LineItem(title=i.title, quantity=i.quantity, price=i.price) for i in cart.items],
        ),
        reason="; ".join(plan.reasons),
    )
