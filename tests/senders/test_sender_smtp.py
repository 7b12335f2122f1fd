"""The SMTP adapter against a real SMTP server (aiosmtpd) in the test."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from recovery.delivery_policy import RetryPolicy, SenderIdentity
from recovery.delivery_policy import SmtpAdapter as SmtpConfig
from senders.adapters.base import ConfigError
from senders.adapters.smtp import SmtpAdapter
from senders.compose import compose
from senders.delivery import deliver_with_retries
from senders.outcomes import Outcome
from senders.templates import TemplateSource

IDENTITY = SenderIdentity(
    from_email="shop@acme.test",
    from_name="Acme Kitchen",
    postal_address="1 Main Street, Springfield, IL 62701, USA",
    unsubscribe_url="https://acme.test/unsubscribe",
)
RETRY = RetryPolicy(max_attempts=2, base_delay="10ms", max_delay="20ms")


class Mailbox:
    def __init__(self, rcpt_reply: str | None = None) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.rcpt_reply = rcpt_reply

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(handler: Mailbox, **options) -> Controller:
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **options)
    controller.start()
    return controller


async def send(config: SmtpConfig, touch, environ=None):
    message = compose(touch, "email", IDENTITY, TemplateSource())
    adapter = SmtpAdapter(config, environ or {})

    async def no_sleep(_: float) -> None:
        return None

    return await deliver_with_retries(adapter, message, touch, RETRY, "email", sleep=no_sleep)


async def test_plain_smtp_message_is_complete(make_touch):
    box = Mailbox()
    server = serve(box)
    try:
        touch = make_touch()
        config = SmtpConfig(adapter="smtp", host="127.0.0.1", port=server.port, security="none")
        result = await send(config, touch)
    finally:
        server.stop()
    assert result.outcome is Outcome.DELIVERED
    assert result.provider_id == f"<{touch.touch_id}@acme.test>"
    ((mail_from, rcpts, content),) = box.messages
    assert mail_from == "shop@acme.test" and rcpts == ["Fay@Example.com"]
    mail = message_from_bytes(content, policy=policy.default)
    assert mail["Subject"] == "Fay, you left something in your cart"
    assert mail["From"] == "Acme Kitchen <shop@acme.test>"
    assert mail["Message-ID"] == f"<{touch.touch_id}@acme.test>"
    unsubscribe = mail["List-Unsubscribe"]
    assert unsubscribe.startswith("<https://acme.test/unsubscribe?") and "touch=t_" in unsubscribe
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail.get_content_type() == "multipart/alternative"
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    link = unsubscribe.strip("<>")
    for part in (text, html.replace("&amp;", "&")):
        assert link in part
        assert "1 Main Street, Springfield, IL 62701, USA" in part
        assert "https://demo.example.com/checkouts/chk-high-1/recover" in part
    assert "Espresso &lt;grinder&gt;" in html


async def test_rejected_recipient_dead_letters_and_busy_server_retries(make_touch):
    box = Mailbox(rcpt_reply="550 5.1.1 mailbox unavailable")
    server = serve(box)
    try:
        config = SmtpConfig(adapter="smtp", host="127.0.0.1", port=server.port, security="none")
        rejected = await send(config, make_touch())
        box.rcpt_reply = "451 4.3.0 try again later"
        busy = await send(config, make_touch())
    finally:
        server.stop()
    assert rejected.outcome is Outcome.DEAD_LETTERED and rejected.attempts == 1
    assert "550" in (rejected.reason or "")
    assert "example.com" not in (rejected.reason or "").lower(), "no address in the reason"
    assert busy.outcome is Outcome.FAILED and busy.attempts == RETRY.max_attempts


async def test_unreachable_relay_is_transient(make_touch):
    config = SmtpConfig(adapter="smtp", host="127.0.0.1", port=free_port(), security="none",
                        timeout="2s")  # fmt: skip
    result = await send(config, make_touch())
    assert result.outcome is Outcome.FAILED


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to make a cert")
async def test_starttls_with_auth(make_touch, tmp_path: Path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        assert isinstance(auth_data, LoginPassword)
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"s3cret")

    box = Mailbox()
    server = serve(box, tls_context=context, require_starttls=True,
                   authenticator=authenticator, auth_require_tls=True)  # fmt: skip
    try:
        config = SmtpConfig(
            adapter="smtp", host="127.0.0.1", port=server.port, security="starttls",
            username_env="SMTP_USER", password_env="SMTP_PASSWORD", ca_file=str(cert),
        )  # fmt: skip
        env = {"SMTP_USER": "relay-user", "SMTP_PASSWORD": "s3cret"}
        result = await send(config, make_touch(), env)
    finally:
        server.stop()
    assert result.outcome is Outcome.DELIVERED
    assert logins[0] == (b"relay-user", b"s3cret")
    assert len(box.messages) == 1
    implicit = Mailbox()
    server = serve(implicit, ssl_context=context)
    try:
        config = SmtpConfig(adapter="smtp", host="127.0.0.1", port=server.port, security="ssl",
                            ca_file=str(cert))  # fmt: skip
        assert (await send(config, make_touch())).outcome is Outcome.DELIVERED
        untrusted = SmtpConfig(adapter="smtp", host="127.0.0.1", port=server.port, security="ssl")
        refused = await send(untrusted, make_touch())
    finally:
        server.stop()
    assert len(implicit.messages) == 1
    assert refused.outcome is Outcome.DEAD_LETTERED and "TLS" in (refused.reason or "")


def test_no_auth_over_plaintext():
    config = SmtpConfig(adapter="smtp", host="h", security="none", username_env="U",
                        password_env="P")  # fmt: skip
    with pytest.raises(ConfigError, match="unencrypted"):
        SmtpAdapter(config, {"U": "u", "P": "p"})
