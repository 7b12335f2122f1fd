"""Email over SMTP (STARTTLS, implicit TLS or plain), with optional AUTH.

:mod:`smtplib` runs in a worker thread; each message uses its own connection, which keeps
failure handling simple (a relay that drops us affects one attempt) at a small cost per mail.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections.abc import Callable, Mapping
from datetime import datetime

from recovery.delivery_policy import SmtpAdapter as SmtpConfig
from schemas.records import TouchCommand
from senders.adapters.base import ConfigError, secret, utcnow
from senders.messages import EmailMessage, Message
from senders.mime import build_mime
from senders.outcomes import PermanentError, TransientError


def _smtp_error(exc: smtplib.SMTPException) -> PermanentError | TransientError:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refusals = list(exc.recipients.values())
        codes = [code for code, _ in refusals]
        answers = "; ".join(
            f"{code} {text.decode(errors='replace') if isinstance(text, bytes) else text}"
            for code, text in refusals
        )
        reason = f"recipient refused: {answers}"  # the address itself is not repeated
        if codes and all(400 <= code < 500 for code in codes):
            return TransientError(reason)
        return PermanentError(reason)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return PermanentError(f"the relay does not support it: {exc}")
    code = getattr(exc, "smtp_code", None)
    text = getattr(exc, "smtp_error", b"")
    detail = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    reason = f"SMTP {code}: {detail}" if code else f"{type(exc).__name__}: {exc}"
    if isinstance(code, int) and code >= 500:
        return PermanentError(reason)
    return TransientError(reason)


class SmtpAdapter:
    provider = "smtp"

    def __init__(
        self,
        config: SmtpConfig,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.config = config
        self.clock = clock
        self.credentials: tuple[str, str] | None = None
        if config.username_env and config.password_env:
            self.credentials = (
                secret(config.username_env, environ),
                secret(config.password_env, environ),
            )
        if config.security == "none" and self.credentials:
            raise ConfigError("refusing SMTP AUTH over an unencrypted connection (security: none)")

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.config.ca_file)

    def _send(self, message: EmailMessage) -> str:
        config = self.config
        timeout = config.timeout.total_seconds()
        mime = build_mime(message, self.clock())
        client: smtplib.SMTP
        if config.security == "ssl":
            client = smtplib.SMTP_SSL(
                config.host, config.port, timeout=timeout, context=self._context()
            )
        else:
            client = smtplib.SMTP(config.host, config.port, timeout=timeout)
        try:
            client.ehlo()
            if config.security == "starttls":
                client.starttls(context=self._context())
                client.ehlo()
            if self.credentials:
                client.login(*self.credentials)
            client.send_message(mime)
        finally:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                client.close()
        return message.message_id

    async def deliver(self, message: Message, touch: TouchCommand) -> str | None:
        if not isinstance(message, EmailMessage):
            raise PermanentError(f"SMTP cannot send a {type(message).__name__}")
        try:
            return await asyncio.to_thread(self._send, message)
        except smtplib.SMTPException as exc:
            raise _smtp_error(exc) from exc
        except ssl.SSLError as exc:
            raise PermanentError(f"TLS failure: {exc}") from exc
        except (TimeoutError, OSError) as exc:
            raise TransientError(f"{type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        return None
