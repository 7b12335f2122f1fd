"""Local stand-ins for Klaviyo's and Brevo's event APIs that check requests as the docs say.

Each fake answers a malformed request the way the provider would (401 without the key, 400
with an error body for a wrong shape) so a test that only looks at the recorded events still
fails on a bad request. ``script`` holds forced answers (status, body, headers) served first.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from aiohttp import web
from sender_helpers import FakeProvider

JSON_API = "application/vnd.api+json"
REVISION = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[A-Za-z0-9]+)?$")
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
FILTER = re.compile(r'^equals\((email|phone_number),"([^"]+)"\)$')


class _Fake(FakeProvider):
    """A :class:`FakeProvider` whose default answer comes from :meth:`answer`."""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        record = {
            "method": request.method,
            "path": request.path,
            "query": dict(request.query),
            "headers": dict(request.headers),
            "body": orjson.loads(raw) if raw else None,
        }
        self.requests.append(record)
        if self.script:
            status, payload, headers = self.script.pop(0)
            return web.json_response(payload, status=status, headers=headers)
        return self.answer(request, record)

    def answer(self, request: web.Request, record: dict[str, Any]) -> web.StreamResponse:
        raise NotImplementedError


def _klaviyo_error(status: int, code: str, detail: str) -> web.Response:
    body = {"errors": [{"id": "e1", "code": code, "title": code, "detail": detail}]}
    return web.Response(body=orjson.dumps(body), status=status, content_type=JSON_API)


class FakeKlaviyo(_Fake):
    """Klaviyo's Create Event, Get Profiles and Bulk Subscribe Profiles, with the documented
    de-duplication: an event whose ``unique_id`` was seen for the same profile and metric is
    accepted (202) but not recorded again."""

    def __init__(self, api_key: str) -> None:
        super().__init__()
        self.api_key = api_key
        self.events: list[dict[str, Any]] = []
        self.jobs: list[dict[str, Any]] = []
        # identifier -> {"email": consent, "sms": consent}
        self.consent: dict[str, dict[str, str]] = {}
        self._seen: set[tuple[str, str, str]] = set()

    def answer(self, request: web.Request, record: dict[str, Any]) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Klaviyo-API-Key {self.api_key}":
            return _klaviyo_error(401, "not_authenticated", "bad or missing private key")
        if not REVISION.match(request.headers.get("revision", "")):
            return _klaviyo_error(400, "invalid", "a dated revision header is required")
        if JSON_API not in request.headers.get("accept", ""):
            return _klaviyo_error(406, "not_acceptable", "accept must be JSON:API")
        if request.method == "GET" and request.path == "/api/profiles":
            return self._profiles(record)
        if request.method != "POST":
            return _klaviyo_error(405, "method_not_allowed", request.method)
        if request.headers.get("Content-Type") != JSON_API:
            return _klaviyo_error(415, "unsupported_media_type", "JSON:API body expected")
        body = record["body"]
        if request.path == "/api/events":
            return self._event(body)
        if request.path == "/api/profile-subscription-bulk-create-jobs":
            return self._subscribe(body)
        return _klaviyo_error(404, "not_found", request.path)

    def _profiles(self, record: dict[str, Any]) -> web.Response:
        query = record["query"]
        match = FILTER.match(query.get("filter", ""))
        if match is None or query.get("additional-fields[profile]") != "subscriptions":
            return _klaviyo_error(400, "invalid", "filter equals(email|phone_number,...)")
        consent = self.consent.get(match.group(2))
        data = []
        if consent is not None:
            subscriptions = {
                channel: {"marketing": {"consent": consent.get(channel, "NEVER_SUBSCRIBED")}}
                for channel in ("email", "sms")
            }
            data = [
                {"type": "profile", "id": "01P", "attributes": {"subscriptions": subscriptions}}
            ]
        return web.Response(body=orjson.dumps({"data": data}), content_type=JSON_API)

    def _event(self, body: Any) -> web.Response:
        try:
            data = body["data"]
            assert data["type"] == "event"
            attributes = data["attributes"]
            assert isinstance(attributes["properties"], dict)
            metric = attributes["metric"]["data"]
            assert metric["type"] == "metric" and 0 < len(metric["attributes"]["name"]) < 128
            profile = attributes["profile"]["data"]
            assert profile["type"] == "profile"
            who = profile["attributes"].get("email") or profile["attributes"].get("phone_number")
            assert who
            phone = profile["attributes"].get("phone_number")
            assert phone is None or E164.match(phone)
            assert isinstance(attributes.get("value", 0), int | float)
            unique_id = attributes.get("unique_id")
            assert unique_id is None or isinstance(unique_id, str)
        except (KeyError, TypeError, AssertionError) as exc:
            return _klaviyo_error(400, "invalid", f"bad event body: {exc!r}")
        key = (who, metric["attributes"]["name"], unique_id or "")
        if key not in self._seen:
            self._seen.add(key)
            self.events.append(body)
        return web.Response(status=202)

    def _subscribe(self, body: Any) -> web.Response:
        try:
            data = body["data"]
            assert data["type"] == "profile-subscription-bulk-create-job"
            (profile,) = data["attributes"]["profiles"]["data"]
            assert profile["type"] == "profile"
            attributes = profile["attributes"]
            subscriptions = attributes["subscriptions"]
            for channel, parameters in subscriptions.items():
                assert parameters["marketing"]["consent"] == "SUBSCRIBED"
                assert "consented_at" not in parameters["marketing"]  # historical imports only
                identifier = (
                    attributes["email"] if channel == "email" else attributes["phone_number"]
                )
                if channel == "sms":
                    assert E164.match(identifier)
                self.consent.setdefault(identifier, {})[channel] = "SUBSCRIBED"
            relationships = data.get("relationships")
            if relationships is not None:
                assert relationships["list"]["data"]["type"] == "list"
        except (KeyError, TypeError, ValueError, AssertionError) as exc:
            return _klaviyo_error(400, "invalid", f"bad subscription job: {exc!r}")
        self.jobs.append(body)
        return web.Response(status=202)


class FakeBrevoEvents(_Fake):
    """Brevo's ``POST /v3/events``: 204 for a valid event, 400 ``{code, message}`` otherwise."""

    NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
    KEY = re.compile(r"^[A-Za-z0-9_-]{1,255}$")

    def __init__(self, api_key: str) -> None:
        super().__init__()
        self.api_key = api_key
        self.events: list[dict[str, Any]] = []

    def answer(self, request: web.Request, record: dict[str, Any]) -> web.StreamResponse:
        if request.headers.get("api-key") != self.api_key:
            return web.json_response(
                {"code": "unauthorized", "message": "Key not found"}, status=401
            )
        if (request.method, request.path) != ("POST", "/v3/events"):
            return web.json_response({"code": "not_found", "message": request.path}, status=404)
        body = record["body"]
        try:
            assert request.headers.get("Content-Type", "").startswith("application/json")
            assert self.NAME.match(body["event_name"])
            identifiers = body["identifiers"]
            assert identifiers and set(identifiers) <= {"email_id", "phone_id", "ext_id"}
            assert all(isinstance(v, str) and v for v in identifiers.values())
            properties = body.get("event_properties", {})
            assert all(self.KEY.match(k) and v is not None for k, v in properties.items())
            assert all(
                isinstance(v, str | int | bool) for v in body.get("contact_properties", {}).values()
            )
        except (KeyError, TypeError, AssertionError) as exc:
            return web.json_response(
                {"code": "invalid_parameter", "message": f"bad event: {exc!r}"}, status=400
            )
        self.events.append(body)
        return web.Response(status=204)
