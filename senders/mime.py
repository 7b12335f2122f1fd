"""Build the MIME email for an :class:`EmailMessage` (pure: no sending here)."""

from __future__ import annotations

from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage as MimeMessage
from email.utils import format_datetime

from senders.messages import EmailMessage


def _address(name: str | None, email: str) -> str:
    local, _, domain = email.partition("@")
    return str(Address(display_name=name or "", username=local, domain=domain))


def build_mime(message: EmailMessage, now: datetime) -> MimeMessage:
    """multipart/alternative (text, then HTML) with List-Unsubscribe (RFC 2369) and, for an
    https link, List-Unsubscribe-Post one-click (RFC 8058); Message-ID from the touch id."""
    mime = MimeMessage()
    mime["From"] = _address(message.from_name, message.from_email)
    mime["To"] = _address(message.to_name, message.to_email)
    if message.reply_to:
        mime["Reply-To"] = message.reply_to
    mime["Subject"] = message.subject
    mime["Date"] = format_datetime(now)
    mime["Message-ID"] = message.message_id
    mime["List-Unsubscribe"] = message.list_unsubscribe
    if message.one_click:
        mime["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    mime["Auto-Submitted"] = "auto-generated"
    mime.set_content(message.text)
    mime.add_alternative(message.html, subtype="html")
    return mime
