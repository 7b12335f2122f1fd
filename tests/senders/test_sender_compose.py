"""Rendering touches into messages: templates, escaping, compliance parts."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from urllib.parse import parse_qs, urlsplit

import pytest

from recovery.delivery_policy import SenderIdentity
from recovery.social_proof import Proof
from senders.compose import SMS_OPT_OUT, compose
from senders.messages import AudienceChange, EmailMessage, HumanNote, SmsMessage
from senders.mime import build_mime
from senders.outcomes import PermanentError
from senders.templates import TemplateSource

IDENTITY = SenderIdentity(
    from_email="shop@acme.test",
    from_name="Acme Kitchen",
    postal_address="1 Main Street, Springfield, IL 62701, USA",
    unsubscribe_url="https://acme.test/unsubscribe?list=cart",
)
NOW = datetime(2026, 11, 2, 16, 0, tzinfo=UTC)


def test_email_parts_footer_and_escaping(make_touch):
    message = compose(make_touch(), "email", IDENTITY, TemplateSource())
    assert isinstance(message, EmailMessage)
    assert message.to_email == "Fay@Example.com"
    assert message.subject == "Fay, you left something in your cart"
    assert "Espresso <grinder> & co" in message.text
    assert "Espresso &lt;grinder&gt; &amp; co" in message.html
    assert "<grinder>" not in message.html
    assert "recover?a=1&amp;b=2" in message.html
    for part in (message.text, message.html):
        assert "1 Main Street, Springfield" in part
        assert "https://acme.test/unsubscribe" in part
    query = parse_qs(urlsplit(message.unsubscribe_url).query)
    assert query["list"] == ["cart"] and query["touch"] == [make_touch().touch_id]
    assert message.message_id == f"<{make_touch().touch_id}@acme.test>"
    assert message.one_click


def test_mime_headers(make_touch):
    message = compose(make_touch(), "email", IDENTITY, TemplateSource())
    assert isinstance(message, EmailMessage)
    parsed = message_from_bytes(bytes(build_mime(message, NOW)), policy=policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    assert parsed["List-Unsubscribe"] == f"<{message.unsubscribe_url}>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["Message-ID"] == message.message_id
    assert "Acme Kitchen" in parsed["From"]
    kinds = [part.get_content_type() for part in parsed.iter_parts()]
    assert kinds == ["text/plain", "text/html"]


def test_offer_incentive_and_social_proof(make_touch):
    touch = make_touch(
        template="offer",
        segment="hesitant",
        incentive={"kind": "percent_off", "value": "12", "code": "CB-XYZ",
                   "expires_at": "2026-11-04T16:00:00Z"},
    )  # fmt: skip
    proof = Proof("Espresso <grinder> & co", 42, 7)
    message = compose(touch, "email", IDENTITY, TemplateSource(), proof=proof)
    assert isinstance(message, EmailMessage)
    assert message.subject == "Fay, 12% off on the cart you left"
    assert "Use code CB-XYZ at checkout for 12% off. Offer ends Nov 04, 2026 at 16:00 UTC." in (
        message.text
    )
    claim = "was in 42 orders at this store in the last 7 days."
    assert f"Espresso <grinder> & co {claim}" in message.text
    assert f"Espresso &lt;grinder&gt; &amp; co {claim}" in message.html
    plain = compose(make_touch(template="offer"), "email", IDENTITY, TemplateSource(), proof=proof)
    assert isinstance(plain, EmailMessage)
    assert claim not in plain.text and claim not in plain.html  # not hesitant: no claim
    unproven = compose(touch, "email", IDENTITY, TemplateSource())
    assert isinstance(unproven, EmailMessage)
    assert "Popular" not in unproven.text and "Popular" not in unproven.html


def test_sms_ends_with_opt_out(make_touch):
    offer = {"kind": "percent_off", "value": "10", "code": "SAVE10"}
    touch = make_touch(channel="sms", template="offer_sms", incentive=offer)
    message = compose(touch, "sms", IDENTITY, TemplateSource())
    assert isinstance(message, SmsMessage)
    assert message.to == "+12125550100"
    assert message.body.startswith("Acme Kitchen: Hi Fay, 10% off")
    assert "with code SAVE10" in message.body
    assert message.body.endswith(SMS_OPT_OUT)


def test_store_templates_override(make_touch, tmp_path):
    (tmp_path / "sms").mkdir()
    (tmp_path / "sms" / "reminder_sms.txt").write_text("Yo $first_name: $recovery_url")
    touch = make_touch(channel="sms", template="reminder_sms")
    message = compose(touch, "sms", IDENTITY, TemplateSource(tmp_path))
    assert isinstance(message, SmsMessage)
    assert message.body.startswith("Acme Kitchen: Yo Fay: https://demo.example.com/")
    assert message.body.endswith(SMS_OPT_OUT)
    email = compose(make_touch(), "email", IDENTITY, TemplateSource(tmp_path))  # falls back
    assert isinstance(email, EmailMessage)


def test_bad_templates_and_contacts_are_permanent(make_touch, tmp_path):
    with pytest.raises(PermanentError, match="no template"):
        compose(make_touch(template="nope"), "email", IDENTITY, TemplateSource())
    (tmp_path / "sms").mkdir()
    (tmp_path / "sms" / "reminder.txt").write_text("Hi $nobody")
    with pytest.raises(PermanentError, match=r"unknown placeholder \$nobody"):
        compose(make_touch(template="reminder"), "sms", IDENTITY, TemplateSource(tmp_path))
    no_mail = make_touch(contact={"first_name": "X"})
    with pytest.raises(PermanentError, match="email address"):
        compose(no_mail, "email", IDENTITY, TemplateSource())


def test_unsubscribe_falls_back_to_mailto(make_touch):
    identity = SenderIdentity(from_email="shop@acme.test", from_name="Acme")
    message = compose(make_touch(), "email", identity, TemplateSource())
    assert isinstance(message, EmailMessage)
    assert message.unsubscribe_url == "mailto:shop@acme.test?subject=unsubscribe"
    assert not message.one_click


def test_audience_add_and_remove(make_touch):
    add = compose(make_touch(channel="ads", template="retarget"), "ads", IDENTITY, TemplateSource())
    assert isinstance(add, AudienceChange) and add.action == "add"
    remove = compose(make_touch(channel="ads", template="audience_remove"), "ads", IDENTITY,
                     TemplateSource())  # fmt: skip
    assert isinstance(remove, AudienceChange) and remove.action == "remove"


def test_human_note(make_touch):
    note = compose(make_touch(channel="human", template="human_follow_up"), "human", IDENTITY,
                   TemplateSource())  # fmt: skip
    assert isinstance(note, HumanNote)
    assert note.subject == "Cart follow-up: 310.00 USD (high band) for Fay"
    assert "Recovery link: https://demo.example.com/checkouts/chk-high-1/recover" in note.text
    assert dict(note.facts)["Why"] == "band high; segment new"


def test_social_proof_in_sms_and_human_notes(make_touch):
    proof = Proof("Linen Shirt", 12, 7)
    sms = make_touch(channel="sms", template="social_proof", segment="hesitant")
    message = compose(sms, "sms", IDENTITY, TemplateSource(), proof=proof)
    assert isinstance(message, SmsMessage)
    assert message.body == (
        "Acme Kitchen: Hi Fay, still deciding? Linen Shirt: 12 orders in the last 7 days. "
        "Your cart (310.00 USD) is saved: "
        "https://demo.example.com/checkouts/chk-high-1/recover?a=1&b=2 Reply STOP to opt out"
    )
    bare = compose(sms, "sms", IDENTITY, TemplateSource())
    assert isinstance(bare, SmsMessage)
    assert bare.body.startswith("Acme Kitchen: Hi Fay, still deciding? Your cart (310.00 USD)")
    assert "orders" not in bare.body


def test_a_store_rewords_the_social_proof_sentence(make_touch, tmp_path):
    (tmp_path / "social_proof.txt").write_text("$orders x $product / $days d @ $store\n")
    touch = make_touch(template="social_proof", segment="hesitant")
    message = compose(touch, "email", IDENTITY, TemplateSource(tmp_path), proof=Proof("Mug", 10, 3))
    assert isinstance(message, EmailMessage)
    assert "10 x Mug / 3 d @ demo" in message.text
    broken = tmp_path / "broken"  # template files are cached per path: another directory
    broken.mkdir()
    (broken / "social_proof.txt").write_text("$orders of $nonsense\n")
    with pytest.raises(PermanentError, match=r"\$nonsense"):
        compose(touch, "email", IDENTITY, TemplateSource(broken), proof=Proof("Mug", 10, 3))
