"""Turn a touch command into the message its channel sends (pure, given the templates).

Compliance parts are added here, not left to templates a store may override: the email
footer (unsubscribe link and postal address, CAN-SPAM) and the SMS opt-out line.

Social proof (``$social_proof``, hesitant shoppers only) is a sentence rendered from
``social_proof.txt`` (``social_proof_sms.txt`` for SMS) with the true count the sender found
(:func:`recovery.social_proof.best_seller`): ``$orders``, ``$product``, ``$days``. Without a
count at or above the store's threshold it is empty and the message makes no claim.
"""

from __future__ import annotations

import html
import re
from decimal import Decimal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from recovery.delivery_policy import SenderIdentity
from recovery.social_proof import Proof
from schemas.records import Incentive, TouchCommand
from senders.audience import audience_row, normalize_email, normalize_phone
from senders.messages import (
    AudienceChange,
    EmailMessage,
    EventItem,
    HumanNote,
    Message,
    SmsMessage,
    TouchEvent,
)
from senders.outcomes import PermanentError
from senders.templates import TemplateSource, render_html, render_text

SMS_OPT_OUT = "Reply STOP to opt out"
AUDIENCE_REMOVE = "audience_remove"
HESITANT = "hesitant"
PROOF_SENTENCE = "social_proof.txt"
PROOF_SENTENCE_SMS = "social_proof_sms.txt"


def _amount(value: Decimal) -> str:
    return f"{value.normalize():f}"


def _money(value: Decimal, currency: str) -> str:
    return f"{value.quantize(Decimal('0.01')):f} {currency}"


def incentive_short(incentive: Incentive | None, currency: str) -> str:
    """``10% off``, ``5 USD off``, ``free shipping``, ``free expedited shipping``, or ""."""
    if incentive is None:
        return ""
    if incentive.kind == "percent_off" and incentive.value is not None:
        return f"{_amount(incentive.value)}% off"
    if incentive.kind == "fixed_off" and incentive.value is not None:
        return f"{_money(incentive.value, currency)} off"
    if incentive.kind == "free_shipping":
        return "free shipping"
    if incentive.kind == "service" and incentive.service:
        return incentive.service.replace("_", " ")
    return ""


def incentive_line(incentive: Incentive | None, currency: str) -> str:
    what = incentive_short(incentive, currency)
    if incentive is None or not what:
        return ""
    if incentive.code:
        line = f"Use code {incentive.code} at checkout for {what}."
    else:
        line = f"Complete your order with {what}."
    if incentive.expires_at is not None:
        line += f" Offer ends {incentive.expires_at:%b %d, %Y at %H:%M} UTC."
    return line


def unsubscribe_link(identity: SenderIdentity, command: TouchCommand, channel: str) -> str:
    """The store's unsubscribe URL with who/what in the query (no PII: the shopper key is a
    hash), else a ``mailto:`` to the sender, which is a working opt-out too."""
    if identity.unsubscribe_url:
        parts = urlsplit(identity.unsubscribe_url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        query += [
            ("store", command.store),
            ("shopper", command.shopper),
            ("channel", channel),
            ("touch", command.touch_id),
        ]
        return urlunsplit(parts._replace(query=urlencode(query)))
    return f"mailto:{identity.reply_to or identity.from_email}?subject=unsubscribe"


def _items_text(command: TouchCommand) -> str:
    summary = command.cart_summary
    return "\n".join(
        f"- {item.quantity} x {item.title} ({_money(item.price, summary.currency)})"
        for item in summary.items
    )


def _items_html(command: TouchCommand) -> str:
    summary = command.cart_summary
    rows = "".join(
        f"<li>{item.quantity} &times; {html.escape(item.title)} "
        f"({html.escape(_money(item.price, summary.currency))})</li>"
        for item in summary.items
    )
    return f"<ul>{rows}</ul>" if rows else ""


def social_proof(
    command: TouchCommand, source: TemplateSource, proof: Proof | None, sentence: str
) -> str:
    """The social proof sentence for a hesitant shopper's touch, or "" (no count to tell)."""
    if command.segment != HESITANT or proof is None or not source.has(sentence):
        return ""
    values = {
        "store": command.store,
        "product": proof.title,
        "orders": str(proof.orders),
        "days": str(proof.days),
    }
    return " ".join(render_text(source.text(sentence), values, sentence).split())


def context(
    command: TouchCommand,
    identity: SenderIdentity,
    source: TemplateSource,
    proof: Proof | None = None,
    sentence: str = PROOF_SENTENCE,
) -> dict[str, str]:
    """Every placeholder a template may use, as text."""
    summary = command.cart_summary
    incentive = command.incentive
    social = social_proof(command, source, proof, sentence)
    return {
        "first_name": (command.contact.first_name or "").strip() or "there",
        "store": command.store,
        "from_name": identity.from_name,
        "recovery_url": command.recovery_url or "",
        "items": _items_text(command),
        "cart_total": _money(summary.total, summary.currency),
        "band": command.band,
        "segment": command.segment,
        "step": str(command.step),
        "touch_id": command.touch_id,
        "cart": command.cart,
        "incentive": incentive_short(incentive, summary.currency),
        "incentive_line": incentive_line(incentive, summary.currency),
        "discount_code": (incentive.code or "") if incentive else "",
        "discount_code_part": f" with code {incentive.code}"
        if incentive and incentive.code
        else "",
        "incentive_expiry": (
            f"{incentive.expires_at:%b %d, %Y at %H:%M} UTC"
            if incentive and incentive.expires_at
            else ""
        ),
        "social_proof": social,
        "reason": command.reason or "",
        "email": command.contact.email or "",
        "phone": command.contact.sms_phone or command.contact.phone or "",
    }


def _tidy(text: str) -> str:
    """Drop the blank runs left by empty optional lines; end with one newline."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)) + "\n"


def _html_paragraph(text: str) -> str:
    return f"<p>{html.escape(text)}</p>" if text else ""


def _require_link(command: TouchCommand) -> None:
    if not command.recovery_url:
        raise PermanentError("the touch has no recovery link to send")


def compose_email(
    command: TouchCommand,
    identity: SenderIdentity,
    source: TemplateSource,
    proof: Proof | None = None,
) -> EmailMessage:
    to = (command.contact.email or "").strip()
    if "@" not in to:
        raise PermanentError("no valid email address for this shopper")
    _require_link(command)
    values = context(command, identity, source, proof)
    unsubscribe = unsubscribe_link(identity, command, "email")
    values["unsubscribe_url"] = unsubscribe
    name = f"email/{command.template}"
    subject = render_text(source.text(f"{name}.subject.txt"), values, name).strip()
    subject = " ".join(subject.split())
    text = _tidy(render_text(source.text(f"{name}.txt"), values, name))
    footer_lines = [
        "--",
        f"You are receiving this because you started a checkout at {identity.from_name}.",
        f"Unsubscribe: {unsubscribe}",
    ]
    if identity.postal_address:
        footer_lines.append(identity.postal_address)
    text += "\n" + "\n".join(footer_lines) + "\n"
    markup = {
        "items_html": _items_html(command),
        "incentive_html": _html_paragraph(values["incentive_line"]),
        "social_proof_html": _html_paragraph(values["social_proof"]),
    }
    body = render_html(source.text(f"{name}.html"), values, markup, name)
    footer = (
        '<hr><p style="font-size:12px;color:#666">'
        "You are receiving this because you started a checkout at "
        f"{html.escape(identity.from_name)}. "
        f'<a href="{html.escape(unsubscribe, quote=True)}">Unsubscribe</a>'
        + (f"<br>{html.escape(identity.postal_address)}" if identity.postal_address else "")
        + "</p>"
    )
    lower = body.lower()
    cut = lower.rfind("</body>")
    body = body[:cut] + footer + body[cut:] if cut >= 0 else body + footer
    one_click = unsubscribe.startswith("https://")
    domain = identity.from_email.rsplit("@", 1)[-1] or "cartbands.invalid"
    return EmailMessage(
        to_email=to,
        to_name=command.contact.first_name,
        from_email=identity.from_email,
        from_name=identity.from_name,
        reply_to=identity.reply_to,
        subject=subject,
        text=text,
        html=body,
        message_id=f"<{command.touch_id}@{domain}>",
        unsubscribe_url=unsubscribe,
        list_unsubscribe=f"<{unsubscribe}>",
        one_click=one_click,
    )


def compose_sms(
    command: TouchCommand,
    identity: SenderIdentity,
    source: TemplateSource,
    proof: Proof | None = None,
) -> SmsMessage:
    to = (command.contact.sms_phone or command.contact.phone or "").strip()
    if not to:
        raise PermanentError("no phone number for this shopper")
    _require_link(command)
    values = context(command, identity, source, proof, PROOF_SENTENCE_SMS)
    name = f"sms/{command.template}"
    body = " ".join(render_text(source.text(f"{name}.txt"), values, name).split())
    sender = identity.sms_sender_name or identity.from_name
    if sender and not body.startswith(sender):
        body = f"{sender}: {body}"
    if not body.rstrip(". ").endswith(SMS_OPT_OUT):
        body = f"{body} {SMS_OPT_OUT}"
    return SmsMessage(to=to, body=body)


def compose_audience(command: TouchCommand) -> AudienceChange:
    row = audience_row(command.contact.email, command.contact.sms_phone or command.contact.phone)
    if row is None:
        raise PermanentError("no email or E.164 phone to match in the audience")
    action = "remove" if command.template == AUDIENCE_REMOVE else "add"
    return AudienceChange(action=action, row=row)


def compose_human(
    command: TouchCommand,
    identity: SenderIdentity,
    source: TemplateSource,
    proof: Proof | None = None,
) -> HumanNote:
    values = context(command, identity, source, proof)
    name = f"human/{command.template}"
    subject = " ".join(render_text(source.text(f"{name}.subject.txt"), values, name).split())
    text = _tidy(render_text(source.text(f"{name}.txt"), values, name))
    facts = (
        ("Cart value", values["cart_total"]),
        ("Band", command.band),
        ("Segment", command.segment),
        ("Recovery link", values["recovery_url"] or "(none)"),
        ("Why", values["reason"] or "(not given)"),
    )
    return HumanNote(
        subject=subject,
        text=text,
        customer_email=(command.contact.email or "").strip() or None,
        customer_phone=(command.contact.sms_phone or command.contact.phone or "").strip() or None,
        customer_name=(command.contact.first_name or "").strip() or None,
        facts=facts,
    )


def compose_event(command: TouchCommand, channel: str) -> TouchEvent:
    """The touch's facts for the merchant's flow: the shopper's address on ``channel`` (an
    E.164 number for SMS, as Klaviyo and Brevo want it) and a recovery link are required.

    The email is lower-cased: the ESP matches profiles by it, and a consent look-up that
    missed an unsubscribed profile over letter case would subscribe the shopper again.
    """
    contact = command.contact
    email = normalize_email(contact.email or "")
    number = (contact.sms_phone or contact.phone or "").strip()
    digits = normalize_phone(number) if number else None
    phone = f"+{digits}" if digits else None
    if channel == "email":
        if email is None:
            raise PermanentError("no valid email address for this shopper")
        consent = contact.email_consent
    elif channel == "sms":
        if phone is None:
            raise PermanentError("no phone number in international (E.164) form for this shopper")
        consent = contact.sms_consent
    else:
        raise PermanentError(f"a flow event cannot carry a {channel} touch")
    _require_link(command)
    assert command.recovery_url is not None
    summary = command.cart_summary
    incentive = command.incentive
    items = tuple(
        EventItem(
            title=item.title,
            quantity=item.quantity,
            price=item.price,
            product_id=item.product_id,
            variant_id=item.variant_id,
            sku=item.sku,
        )
        for item in summary.items
    )
    return TouchEvent(
        touch_id=command.touch_id,
        store=command.store,
        cart=command.cart,
        channel=channel,
        step=command.step,
        band=command.band,
        segment=command.segment,
        template=command.template,
        email=email if channel == "email" else None,
        phone=phone if channel == "sms" else None,
        first_name=(contact.first_name or "").strip() or None,
        locale=contact.locale,
        marketing_consent=consent,
        cart_total=summary.total,
        currency=summary.currency,
        items=items,
        recovery_url=command.recovery_url,
        due_at=command.due_at,
        incentive_kind=incentive.kind if incentive else None,
        incentive_value=incentive.value if incentive else None,
        discount_code=incentive.code if incentive else None,
        incentive_service=incentive.service if incentive else None,
        incentive_expires_at=incentive.expires_at if incentive else None,
        incentive_text=incentive_line(incentive, summary.currency) or None,
        reason=command.reason,
    )


def compose(
    command: TouchCommand,
    channel: str,
    identity: SenderIdentity,
    source: TemplateSource,
    event: bool = False,
    *,
    proof: Proof | None = None,
) -> Message:
    """The message for ``channel`` (with ``event``, the touch's facts for the merchant's own
    flow); :class:`PermanentError` when it cannot be built. ``proof``: the cart's best seller
    and its true count, when it reaches the threshold."""
    if event:
        return compose_event(command, channel)
    if channel == "email":
        return compose_email(command, identity, source, proof)
    if channel == "sms":
        return compose_sms(command, identity, source, proof)
    if channel == "ads":
        return compose_audience(command)
    if channel == "human":
        return compose_human(command, identity, source, proof)
    raise PermanentError(f"unknown channel {channel!r}")
