"""Seeded hostile HTTP requests for every gateway route, as raw bytes on a socket.

Raw bytes, because a client library refuses to send most of what a hostile caller sends: a
header value with a non-UTF-8 byte or a control character, a URL that does not parse, a body
that is not what its Content-Type says. Each case keeps what it carries (the secrets it
presents, the contacts in its body) so that a response or a log line repeating them is found.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import hmac
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from gateway.signatures import twilio_signature
from tests.gateway.helpers import (
    BC_SECRET,
    ENV,
    GENERIC_HMAC,
    GENERIC_TOKEN,
    SHOP_DOMAIN,
    SHOPIFY_SECRET,
    STORE_NUMBER,
    TWILIO_TOKEN,
    WOO_SECRET,
    fixture_json,
)

SECRETS = sorted({*ENV.values(), GENERIC_TOKEN, GENERIC_HMAC})
# amounts no currency has: the core cannot compute with them
POISON = ("1e400", "1" * 30, "9" * 5000, "NaN", "-Infinity", "²", "0x10", "-1", " 12", "1_000")
JUNK_VALUES: tuple[Any, ...] = (
    None, "", " ", True, 0, -1, 2**70, 1.5, 1e308, "²", "\u0000", "\ud7ff", "x" * 5000,
    [], {}, [None], {"a": None}, "2026-13-45T99:99:99Z", "9999-12-31T23:59:59Z",
)  # fmt: skip
ROUTES = (
    "/webhooks/shopify",
    "/webhooks/woocommerce",
    "/webhooks/bigcommerce",
    "/webhooks/twilio/inbound",
    "/events",
)


@dataclass
class Case:
    kind: str
    method: str
    path: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    forged: bool = False  # must never be accepted
    contacts: list[str] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)  # /events: stored if accepted


@dataclass
class Answer:
    status: int  # 0: no status line came back
    raw: bytes


def sign(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


class Fuzzer:
    """``cases(n)``: n seeded cases over every route; ``port`` is where they will be sent (the
    Twilio signature covers the URL)."""

    def __init__(self, seed: int, port: int) -> None:
        self.rng = random.Random(seed)
        self.port = port
        self.number = 0
        self.checkout = fixture_json("shopify_checkout.json")
        self.order = fixture_json("shopify_order.json")

    def cases(self, count: int) -> list[Case]:
        makers: list[tuple[Callable[[], Case], int]] = [
            (self.shopify, 20),
            (self.events, 25),
            (self.woocommerce, 10),
            (self.bigcommerce, 4),
            (self.twilio, 8),
            (self.forged, 12),
            (self.bad_headers, 12),
            (self.bad_bodies, 6),
            (self.garbage, 3),
        ]
        choices = [maker for maker, weight in makers for _ in range(weight)]
        return [self.rng.choice(choices)() for _ in range(count)]

    # -- helpers ---------------------------------------------------------------------

    def _email(self) -> str:
        self.number += 1
        return f"fuzz.shopper{self.number}@example.org"

    def _phone(self) -> str:
        return f"+1212555{self.rng.randrange(10000):04d}"

    def _mutate(self, value: Any, depth: int = 0) -> Any:
        """A copy of ``value`` with some fields replaced, removed or added."""
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                roll = self.rng.random()
                if roll < 0.06:
                    continue
                if roll < 0.14:
                    out[key] = self.rng.choice(JUNK_VALUES)
                else:
                    out[key] = self._mutate(item, depth + 1) if depth < 4 else item
            if self.rng.random() < 0.05:
                out["x" * self.rng.randrange(1, 300)] = self.rng.choice(JUNK_VALUES)
            return out
        if isinstance(value, list):
            return [self._mutate(item, depth + 1) for item in value[: self.rng.randrange(0, 4)]]
        return value

    def _money(self, payload: dict[str, Any], *names: str) -> None:
        """Sometimes a poison amount in one of the money fields."""
        if self.rng.random() < 0.3:
            payload[self.rng.choice(names)] = self.rng.choice(POISON)

    def _json(self, payload: Any) -> bytes:
        # the standard library's encoder: it writes integers beyond 64 bits, as a caller may
        return json.dumps(payload).encode()

    # -- the routes, signed ----------------------------------------------------------

    def shopify(self) -> Case:
        topic = self.rng.choice(
            ["checkouts/create", "checkouts/update", "orders/create", "orders/paid",
             "customers/redact", "customers/data_request", "checkouts/delete", "²/x"]
        )  # fmt: skip
        base = self.order if topic.startswith("orders") else self.checkout
        payload = copy.deepcopy(base)
        email, phone = self._email(), self._phone()
        payload["email"], payload["phone"] = email, phone
        if topic.startswith("customers"):
            payload = {"customer": {"id": self.rng.randrange(10**6), "email": email}}
        self._money(payload, "total_price", "subtotal_price")
        if self.rng.random() < 0.2 and isinstance(payload.get("line_items"), list):
            for item in payload["line_items"]:
                item["quantity"] = self.rng.choice(["²", "9" * 5000, -3, 10**30, "1"])
        if self.rng.random() < 0.1 and isinstance(payload.get("customer"), dict):
            payload["customer"]["orders_count"] = self.rng.choice(["²", "9" * 5000, -1])
        payload = self._mutate(payload) if self.rng.random() < 0.5 else payload
        body = self._json(payload)
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Shop-Domain": SHOP_DOMAIN,
            "X-Shopify-Hmac-Sha256": sign(body, SHOPIFY_SECRET),
            "X-Shopify-Webhook-Id": f"fz-{self.rng.random()}",
        }
        return self._case("shopify", "/webhooks/shopify", headers, body, [email, phone])

    def events(self) -> Case:
        count = self.rng.choice([1, 1, 1, 2, 5])
        payload: list[dict[str, Any]] = []
        contacts: list[str] = []
        ids: list[str] = []
        for _ in range(count):
            email = self._email()
            event_id = f"fz-{self.rng.getrandbits(64):016x}"
            event = {
                "type": self.rng.choice(["cart_updated", "cart_completed", "consent_changed"]),
                "store": "acme",
                "checkout": f"fz-{self.rng.randrange(500)}",
                "event_id": event_id,
                "occurred_at": "2026-11-02T15:00:00Z",
                "currency": self.rng.choice(["USD", "EUR", "JPY", "XXX", "usd"]),
                "total": f"{self.rng.randrange(1, 200000) / 100:.2f}",
                "line_items": [{"title": "t", "quantity": 1, "price": "1.00"}],
                "contact": {"email": email, "email_consent": True},
            }
            self._money(event, "total")
            if self.rng.random() < 0.4:
                event = self._mutate(event)
            payload.append(event)
            contacts.append(email)
            if event.get("event_id") == event_id:  # else the mutation took the id away
                ids.append(event_id)
        body = self._json(payload if count > 1 or self.rng.random() < 0.5 else payload[0])
        if self.rng.random() < 0.5:
            auth = {"Authorization": f"Bearer {GENERIC_TOKEN}"}
        else:
            auth = {"X-Cartbands-Hmac-Sha256": sign(body, GENERIC_HMAC)}
        headers = {"Content-Type": "application/json", **auth}
        case = self._case("events", "/events", headers, body, contacts)
        case.event_ids = ids
        return case

    def woocommerce(self) -> Case:
        email = self._email()
        payload = {
            "id": self.rng.randrange(10**6),
            "status": self.rng.choice(["pending", "processing", "completed", "²"]),
            "currency": "EUR",
            "total": "64.00",
            "date_created_gmt": "2026-11-02T15:20:00",
            "date_paid_gmt": "2026-11-02T15:21:00",
            "customer_id": 0,
            "billing": {"first_name": "Bo", "email": email, "phone": self._phone()},
            "meta_data": [{"id": 1, "key": "_cartbands_checkout", "value": "gen-1"}],
        }
        self._money(payload, "total")
        body = self._json(self._mutate(payload) if self.rng.random() < 0.5 else payload)
        topic = self.rng.choice(["order.created", "order.updated", "action.cartbands_cart", "x"])
        source = self.rng.choice(["https://shop.acme.example/", "http://[x", "", "ftp://a"])
        headers = {
            "Content-Type": "application/json",
            "X-WC-Webhook-Source": source,
            "X-WC-Webhook-Topic": topic,
            "X-WC-Webhook-Delivery-ID": str(self.rng.randrange(10**6)),
            "X-WC-Webhook-Signature": sign(body, WOO_SECRET),
        }
        return self._case("woocommerce", "/webhooks/woocommerce", headers, body, [email])

    def bigcommerce(self) -> Case:
        scope = self.rng.choice(["store/cart/updated", "store/order/created", "store/x", ""])
        payload = {
            "created_at": self.rng.choice([1793631600, "²", -1, 10**30]),
            "store_id": "1025646",
            "producer": self.rng.choice(["stores/abc123", "stores/zzz", None]),
            "scope": scope,
            "hash": f"fz{self.rng.random()}",
            "data": {"type": "cart", "id": self.rng.choice(["c1", None, "²", 10**30])},
        }
        body = self._json(self._mutate(payload) if self.rng.random() < 0.5 else payload)
        secret = BC_SECRET if self.rng.random() < 0.3 else "wrong"
        headers = {"Content-Type": "application/json", "X-Cartbands-Secret": secret}
        case = self._case("bigcommerce", "/webhooks/bigcommerce", headers, body, [])
        case.forged = secret != BC_SECRET
        return case

    def twilio(self) -> Case:
        phone = self._phone()
        params = {
            "MessageSid": f"SM{self.rng.getrandbits(64):x}",
            "From": phone,
            "To": self.rng.choice([STORE_NUMBER, "+15550000000", "²", ""]),
            "Body": self.rng.choice(["STOP", "START", "stop please", "\u00e9\u00e9", "x" * 2000]),
        }
        path = "/webhooks/twilio/inbound"
        url = f"http://127.0.0.1:{self.port}{path}"
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": twilio_signature(url, params.items(), TWILIO_TOKEN.encode()),
        }
        return self._case("twilio", path, headers, urlencode(params).encode(), [phone])

    # -- hostile: forged, broken headers, broken bodies, not HTTP at all ------------

    def forged(self) -> Case:
        case = self.rng.choice([self.shopify, self.events, self.woocommerce, self.twilio])()
        names = {
            b"x-shopify-hmac-sha256", b"x-wc-webhook-signature", b"x-twilio-signature",
            b"authorization", b"x-cartbands-hmac-sha256",
        }  # fmt: skip
        kept = [(k, v) for k, v in case.headers if k.lower() not in names]
        how = self.rng.random()
        if how < 0.4:  # the signature of another body
            other = sign(case.body + b" ", SHOPIFY_SECRET)
            kept += [(name, other.encode()) for name in sorted(names) if name != b"authorization"]
        elif how < 0.6:
            kept.append((b"Authorization", b"Bearer tok_" + str(self.rng.random()).encode()))
        case.headers = kept
        case.kind = "forged"
        case.forged = True
        case.event_ids = []
        return case

    def bad_headers(self) -> Case:
        case = self.rng.choice([self.shopify, self.events, self.woocommerce])()
        bad = self.rng.choice(
            [b"\xff\xfe", b"caf\xe9", b"a\x01b", b"a\x7fb", b"a\x00b", b"\x80" * 40,
             b"x" * 9000, b"http://[x", b"\xc3\x28", b" ", b"a\rb"]
        )  # fmt: skip
        if self.rng.random() < 0.3:  # the broken byte in a header that carries a secret
            secret = self.rng.choice([f"Bearer {GENERIC_TOKEN}", BC_SECRET, SHOPIFY_SECRET])
            case.headers.append((b"X-Secret", secret.encode() + bad))
        name = self.rng.choice(
            [b"X-Shopify-Shop-Domain", b"X-Shopify-Topic", b"Content-Type", b"X-Custom",
             b"X-WC-Webhook-Source", b"X-Cartbands-Store", b"X-Shopify-Hmac-Sha256", b"Bad\xffName"]
        )  # fmt: skip
        case.headers = [(k, v) for k, v in case.headers if k.lower() != name.lower()]
        case.headers.append((name, bad))
        # what a leak would show: the secrets a caller presents
        case.headers.append((b"Authorization", f"Bearer {GENERIC_TOKEN}".encode()))
        case.headers.append((b"X-Cartbands-Secret", BC_SECRET.encode()))
        case.kind = "bad header"
        case.forged = False
        case.event_ids = []
        return case

    def bad_bodies(self) -> Case:
        route = self.rng.choice(ROUTES)
        body = self.rng.choice(
            [
                bytes(self.rng.getrandbits(8) for _ in range(self.rng.randrange(1, 400))),
                b'{"total": "' + b"\xff" * 10 + b'"}',
                b"[" * 100_000,
                b'{"a":' * 3000,
                b"{" + b'"k": 1,' * 20_000 + b'"k": 2}',
                b"x" * (70 * 1024),  # over the 64 KiB cap of this gateway
                b"",
                b"null",
                b'"' + GENERIC_TOKEN.encode() + b'"',
            ]
        )
        kind = self.rng.choice(
            ["application/json", "text/plain", "application/x-www-form-urlencoded"]
        )
        headers = {"Content-Type": kind, "Authorization": f"Bearer {GENERIC_TOKEN}"}
        case = self._case("bad body", route, headers, body, [])
        case.forged = route != "/events"
        return case

    def garbage(self) -> Case:
        raw = self.rng.choice(
            [
                b"GARBAGE\r\n\r\n",
                b"POST /events HTTP/9.9\r\n\r\n",
                b"POST /\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
                b"POST /events?" + b"a=" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                b"GET /readyz HTTP/1.1\r\nHost: x\r\nX-Bad: \x01\r\n\r\n",
                b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
                b"POST /events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS hello
                b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
                b"DELETE /webhooks/shopify HTTP/1.1\r\nHost: x\r\n\r\n",
            ]
        )
        return Case("garbage", "RAW", b"", [], raw, forged=True)

    def _case(
        self, kind: str, path: str, headers: dict[str, str], body: bytes, contacts: list[str]
    ) -> Case:
        pairs = [(k.encode(), v.encode("utf-8", "surrogatepass")) for k, v in headers.items()]
        return Case(kind, "POST", path.encode(), pairs, body, contacts=contacts)


def request_bytes(case: Case, port: int) -> bytes:
    if case.method == "RAW":
        return case.body
    lines = [case.method.encode() + b" " + case.path + b" HTTP/1.1", b"Host: 127.0.0.1:%d" % port]
    lines += [name + b": " + value for name, value in case.headers]
    lines += [b"Content-Length: %d" % len(case.body), b"Connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n" + case.body


async def send(case: Case, port: int, timeout: float = 60.0) -> Answer:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        try:
            writer.write(request_bytes(case, port))
            await writer.drain()
            if case.method == "RAW":
                writer.write_eof()
        except ConnectionError:
            pass  # the server answered early (e.g. 413 on the declared length) and closed
        raw = await asyncio.wait_for(reader.read(), timeout)
    except (ConnectionError, TimeoutError):
        raw = b""
    finally:
        writer.close()
    head = raw.split(b"\r\n", 1)[0].split(b" ")
    status = int(head[1]) if len(head) > 1 and head[1].isdigit() else 0
    return Answer(status, raw)


async def send_all(cases: list[Case], port: int, concurrency: int = 32) -> list[Answer]:
    gate = asyncio.Semaphore(concurrency)

    async def one(case: Case) -> Answer:
        async with gate:
            return await send(case, port)

    return list(await asyncio.gather(*(one(case) for case in cases)))
