"""HTTP provider adapters: Brevo (email), Twilio (SMS), Meta custom audiences (ads),
Gorgias and Slack (human follow-up). Each follows its provider's documented request format;
base URLs are configurable so tests (and proxies) can stand in for the provider."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import aiohttp
import orjson

from recovery.delivery_policy import BrevoAdapter as BrevoConfig
from recovery.delivery_policy import GorgiasAdapter as GorgiasConfig
from recovery.delivery_policy import MetaAudienceAdapter as MetaConfig
from recovery.delivery_policy import SlackAdapter as SlackConfig
from recovery.delivery_policy import TwilioAdapter as TwilioConfig
from schemas.records import TouchCommand
from senders.adapters.base import (
    HttpResult,
    basic_auth,
    error_detail,
    http_call,
    secret,
    utcnow,
)
from senders.audience import audience_payload
from senders.messages import AudienceChange, EmailMessage, HumanNote, Message, SmsMessage
from senders.outcomes import PermanentError, SuppressedError, TransientError


class _HttpAdapter:
    provider = "http"

    def __init__(self, timeout: float, clock: Callable[[], datetime] = utcnow) -> None:
        self.timeout = timeout
        self.clock = clock
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def call(
        self,
        method: str,
        url: str,
        classify: Callable[[HttpResult], Exception | None] | None = None,
        **kwargs: Any,
    ) -> HttpResult:
        return await http_call(
            self.session,
            method,
            url,
            timeout=self.timeout,
            clock=self.clock,
            classify=classify,
            **kwargs,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _expect(message: Message, kind: type, provider: str) -> None:
    if not isinstance(message, kind):
        raise PermanentError(f"{provider} cannot send a {type(message).__name__}")


# Namespace of the Brevo idempotency keys: uuid5(namespace, touch id), the same on every retry.
BREVO_KEY_NAMESPACE = uuid.UUID("5d0f2c3e-8a4b-5c6d-9e7f-0a1b2c3d4e5f")


def brevo_idempotency_key(touch_id: str) -> str:
    """Brevo wants a UUID as ``idempotencyKey``: one derived from the touch id, so every
    attempt of one touch carries the same key and different touches never share one."""
    return str(uuid.uuid5(BREVO_KEY_NAMESPACE, touch_id))


class BrevoAdapter(_HttpAdapter):
    """``POST /v3/smtp/email`` with the ``api-key`` header; ``headers.idempotencyKey`` is a
    UUID derived from the touch id (Brevo keeps it 15 to 30 minutes: it covers our retries,
    not restarts, which the de-dup log covers)."""

    provider = "brevo"

    def __init__(self, config: BrevoConfig, environ: Mapping[str, str] | None = None) -> None:
        super().__init__(config.timeout.total_seconds())
        self.url = config.base_url.rstrip("/") + "/v3/smtp/email"
        self.api_key = secret(config.api_key_env, environ)

    @staticmethod
    def body(message: EmailMessage, touch: TouchCommand) -> dict[str, Any]:
        to: dict[str, str] = {"email": message.to_email}
        if message.to_name:
            to["name"] = message.to_name
        headers = {
            "idempotencyKey": brevo_idempotency_key(touch.touch_id),
            "List-Unsubscribe": message.list_unsubscribe,
        }
        if message.one_click:
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        body: dict[str, Any] = {
            "sender": {"name": message.from_name, "email": message.from_email},
            "to": [to],
            "subject": message.subject,
            "htmlContent": message.html,
            "textContent": message.text,
            "headers": headers,
            "tags": ["cart-recovery", touch.template],
        }
        if message.reply_to:
            body["replyTo"] = {"email": message.reply_to}
        return body

    async def deliver(self, message: Message, touch: TouchCommand) -> str | None:
        _expect(message, EmailMessage, self.provider)
        assert isinstance(message, EmailMessage)
        result = await self.call(
            "POST",
            self.url,
            json=self.body(message, touch),
            headers={"api-key": self.api_key, "accept": "application/json"},
        )
        data = result.json()
        return (
            str(data.get("messageId")) if isinstance(data, dict) and data.get("messageId") else None
        )


# Twilio error codes that mean "this recipient cannot be messaged" rather than a bad request.
TWILIO_OPTED_OUT = 21610


def _twilio_classify(result: HttpResult) -> Exception | None:
    data = result.json()
    if not isinstance(data, dict):
        return None
    code, text = data.get("code"), data.get("message", "")
    if code == TWILIO_OPTED_OUT:
        return SuppressedError(f"Twilio {code}: {text}")
    if result.status == 429 or result.status >= 500:
        return None
    return PermanentError(f"HTTP {result.status}: Twilio {code}: {text}")


class TwilioAdapter(_HttpAdapter):
    """``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``, form-encoded, basic auth.

    Twilio has no idempotency key for Messages: at-most-once rests on our de-dup log.
    """

    provider = "twilio"

    def __init__(self, config: TwilioConfig, environ: Mapping[str, str] | None = None) -> None:
        super().__init__(config.timeout.total_seconds())
        self.config = config
        self.account_sid = secret(config.account_sid_env, environ)
        self.auth_token = secret(config.auth_token_env, environ)
        self.url = (
            f"{config.base_url.rstrip('/')}/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        )

    def form(self, message: SmsMessage) -> dict[str, str]:
        form = {"To": message.to, "Body": message.body}
        if self.config.messaging_service_sid:
            form["MessagingServiceSid"] = self.config.messaging_service_sid
        else:
            form["From"] = self.config.from_number or ""
        return form

    async def deliver(self, message: Message, touch: TouchCommand) -> str | None:
        _expect(message, SmsMessage, self.provider)
        assert isinstance(message, SmsMessage)
        result = await self.call(
            "POST",
            self.url,
            classify=_twilio_classify,
            data=self.form(message),
            headers=basic_auth(self.account_sid, self.auth_token),
        )
        data = result.json()
        return str(data["sid"]) if isinstance(data, dict) and data.get("sid") else None


# Graph API error codes for throttling: retry later rather than dead-letter.
META_THROTTLED = {4, 17, 32, 613, 80003}


def _meta_classify(result: HttpResult) -> Exception | None:
    data = result.json()
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return None
    code, text = error.get("code"), error.get("message", "")
    if code in META_THROTTLED:
        return TransientError(f"Meta throttled ({code}): {text}", retry_after=None)
    if result.status == 429 or result.status >= 500:
        return None
    return PermanentError(f"HTTP {result.status}: Meta {code}: {text}")


class MetaAudienceAdapter(_HttpAdapter):
    """``POST`` (add) / ``DELETE`` (remove) ``/{version}/{audience_id}/users`` with the
    ``payload`` parameter ``{"schema": ["EMAIL", "PHONE"], "data": [[sha256, sha256]]}``.
    Adding a member twice is harmless at Meta, so retries are safe here."""

    provider = "meta_audience"

    def __init__(self, config: MetaConfig, environ: Mapping[str, str] | None = None) -> None:
        super().__init__(config.timeout.total_seconds())
        self.access_token = secret(config.access_token_env, environ)
        self.url = f"{config.base_url.rstrip('/')}/{config.api_version}/{config.audience_id}/users"

    async def deliver(self, message: Message, touch: TouchCommand) -> str | None:
        _expect(message, AudienceChange, self.provider)
        assert isinstance(message, AudienceChange)
        method = "DELETE" if message.action == "remove" else "POST"
        form = {
            "payload": orjson.dumps(audience_payload(message.row)).decode(),
            "access_token": self.access_token,
        }
        result = await self.call(method, self.url, classify=_meta_classify, data=form)
        data = result.json()
        if isinstance(data, dict):
            if data.get("num_invalid_entries"):
                raise PermanentError(f"Meta rejected the entry: {error_detail(result.body)}")
            for key in ("session_id", "audience_id"):
                if data.get(key):
                    return str(data[key])
        return None


class GorgiasAdapter(_HttpAdapter):
    """``POST https://{domain}.gorgias.com/api/tickets`` (basic auth: account email, API
    key): an ``api`` channel ticket with one message; ``external_id`` is the touch id."""

    provider = "gorgias"

    def __init__(
        self,
        config: GorgiasConfig,
        from_email: str,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(config.timeout.total_seconds())
        self.config = config
        self.from_email = from_email
        self.username = secret(config.username_env, environ)
        self.api_key = secret(config.api_key_env, environ)
        self.url = config.url.rstrip("/") + "/api/tickets"

    def body(self, note: HumanNote, touch: TouchCommand) -> dict[str, Any]:
        sender_email = note.customer_email or self.from_email
        message = {
            "channel": "api",
            "via": "api",
            "from_agent": False,
            "sender": {"email": sender_email},
            "subject": note.subject,
            "body_text": note.text,
            "external_id": touch.touch_id,
        }
        body: dict[str, Any] = {
            "channel": "api",
            "via": "api",
            "from_agent": False,
            "subject": note.subject,
            "external_id": touch.touch_id,
            "messages": [message],
            "tags": [{"name": tag} for tag in self.config.tags],
        }
        if note.customer_email:
            customer: dict[str, str] = {"email": note.customer_email}
            if note.customer_name:
                customer["firstname"] = note.customer_name
            body["customer"] = customer
        return body

    async def deliver(self, message: Message, touch: TouchCommand) -> str | None:
        _expect(message, HumanNote, self.provider)
        assert isinstance(message, HumanNote)
        result = await self.call(
            "POST",
            self.url,
            json=self.body(message, touch),
            headers={**basic_auth(self.username, self.api_key), "accept": "application/json"},
        )
        data = result.json()
        return str(data["id"]) if isinstance(data, dict) and data.get("id") else None


class SlackAdapter(_HttpAdapter):
    """A Slack incoming webhook: ``{"text": ..., "blocks": [...]}`` (text is the fallback)."""

    provider = "slack"

    def __init__(self, config: SlackConfig, environ: Mapping[str, str] | None = None) -> None:
        super().__init__(config.timeout.total_seconds())
        self.url = secret(config.webhook_url_env, environ)

    @staticmethod
    def body(note: HumanNote) -> dict[str, Any]:
        fields = [{"type": "mrkdwn", "text": f"*{label}*\n{value}"} for label, value in note.facts]
        contact = " / ".join(
            part for part in (note.customer_name, note.customer_email, note.customer_phone) if part
        )
        return {
            "text": f"{note.subject}\n{note.text}",
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": note.subject[:150]}},
                {"type": "section", "text": {"type": "mrkdwn", "text": f"*Customer:* {contact}"}},
                {"type": "section", "fields": fields[:10]},
            ],
        }

    async def deliver(self, message: Message, touch: TouchCommand) -> str | None:
        _expect(message, HumanNote, self.provider)
        assert isinstance(message, HumanNote)
        await self.call("POST", self.url, json=self.body(message))
        return None
