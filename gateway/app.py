"""The gateway's HTTP shell (aiohttp): read, check, normalize, produce, answer.

Each webhook route runs the same steps: read the body under the size cap (413; the
``Content-Length`` is checked before reading, and the read stops at the cap), check the
content type (415), find the store and verify the signature (401 for either: an unknown
store answers exactly as a bad signature, so a caller cannot learn which stores exist),
take a token from the store's bucket (429), parse and normalize with the pure modules (400),
produce with acks=all and answer 2xx only once acknowledged (503 when the broker does not
acknowledge). Every refusal is counted by reason and written to ``ingest-dlq``; if even that
write fails, the answer is 503 so the platform delivers again. No input gets a 5xx
otherwise: an unexpected error is a 400 ``unprocessable``, dead-lettered. Logs carry
reasons, stores, routes and hashed shopper keys, never a secret, an email, a phone or an
address, nor an exception's message (which may quote the input).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway import bigcommerce, generic, shopify, twilio, woocommerce
from gateway.bigcommerce_api import BigCommerceApi, EnrichmentFailed
from gateway.config import GatewayConfig, StoreIngest, site_host
from gateway.dlq import rejection
from gateway.emit import Emit
from gateway.errors import Reject
from gateway.fields import to_time
from gateway.metrics import GatewayMetrics
from gateway.output import BrokerUnavailable, Output
from gateway.ratelimit import TokenBucket
from gateway.signatures import bearer, verify_body_hmac, verify_token, verify_twilio
from recovery.ids import normalize_phone

log = logging.getLogger(__name__)

ONE_MIB = 1024 * 1024
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
_ACCEPTED = {n: orjson.dumps({"accepted": n}) for n in range(0, 4)}
_NO_SECRET = (b"no store: the HMAC is computed anyway",)
_FORGED = {
    "shopify": "X-Shopify-Hmac-Sha256 does not match the body",
    "woocommerce": "X-WC-Webhook-Signature does not match the body",
    "bigcommerce": "the hook's secret header does not match",
    "events": "a valid bearer token or HMAC header is required",
    "twilio": "X-Twilio-Signature does not match",
}


class TooLarge(Reject):
    def __init__(self, detail: str, partial: bytes) -> None:
        super().__init__(413, "too_large", detail)
        self.partial = partial


@dataclass
class Delivery:
    """What is known of one request so far (for the dead-letter record and the logs)."""

    route: str
    headers: Mapping[str, str]
    body: bytes = b""
    store: str | None = None
    truncated: bool = False


async def read_body(request: web.Request, limit: int) -> bytes:
    """The body, refusing (413) a declared or actual size above ``limit`` without reading on."""
    declared = request.content_length
    if declared is not None and declared > limit:
        partial = request.content.read_nowait(limit)
        raise TooLarge(f"body of {declared} bytes is over the {limit}-byte limit", partial)
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.readany()
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            chunks.append(chunk)
            raise TooLarge(f"body is over the {limit}-byte limit", b"".join(chunks)[:limit])
        chunks.append(chunk)
    return b"".join(chunks)


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Reject(400, "malformed_json", f"body is not valid JSON: {exc}") from None


def _need_type(request: web.Request, wanted: str) -> None:
    if request.content_type != wanted:
        raise Reject(415, "unsupported_media_type", f"Content-Type must be {wanted}")


def _header(request: web.Request, name: str) -> str:
    value = request.headers.get(name, "").strip()
    if not value:
        raise Reject(400, "missing_field", f"{name}: required header is missing")
    return value


def _forged(route: str) -> Reject:
    return Reject(401, "bad_signature", _FORGED[route])


def _unknown_store(route: str, detail: str) -> Reject:
    """An unknown store, answered exactly as a bad signature on ``route`` (see the module
    doc); the metric and the dead letter keep the real reason."""
    return Reject(401, "unknown_store", detail, answer=("bad_signature", _FORGED[route]))


def _where(exc: BaseException) -> str:
    """Where an exception was raised (file:line), for a log line without its message."""
    trace = exc.__traceback__
    while trace is not None and trace.tb_next is not None:
        trace = trace.tb_next
    if trace is None:
        return "?"
    return f"{trace.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{trace.tb_lineno}"


def _problem(status: int, reason: str, detail: str) -> web.Response:
    return web.Response(
        status=status,
        body=orjson.dumps({"error": reason, "detail": detail}),
        content_type=JSON,
    )


def _accepted(count: int, note: str | None = None) -> web.Response:
    if note is None and count in _ACCEPTED:
        body = _ACCEPTED[count]
    else:
        body = orjson.dumps({"accepted": count, **({"ignored": note} if note else {})})
    return web.Response(status=200, body=body, content_type=JSON)


class Gateway:
    def __init__(
        self,
        config: GatewayConfig,
        output: Output,
        *,
        max_body: int = ONE_MIB,
        public_url: str | None = None,
        bigcommerce_api: BigCommerceApi | None = None,
        metrics: GatewayMetrics | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.config = config
        self.output = output
        self.max_body = max_body
        self.public_url = public_url.rstrip("/") if public_url else None
        self.api = bigcommerce_api or BigCommerceApi()
        self.metrics = metrics or GatewayMetrics()
        self.clock = clock or (lambda: datetime.now(UTC))
        self._buckets: dict[str, TokenBucket] = {}
        self._per_status: dict[tuple[str, int], tuple[Any, Any]] = {}
        self._per_kind: dict[tuple[str, str], Any] = {}
        self._secret_headers = config.secret_headers

    # -- application -------------------------------------------------------------------

    def build(self, manage_output: bool = True) -> web.Application:
        app = web.Application(client_max_size=self.max_body)
        app.router.add_post("/webhooks/shopify", self.shopify)
        app.router.add_post("/webhooks/bigcommerce", self.bigcommerce)
        app.router.add_post("/webhooks/woocommerce", self.woocommerce)
        app.router.add_post("/webhooks/twilio/inbound", self.twilio)
        app.router.add_post("/events", self.events)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/metrics", self.metrics_page)

        async def _start(_: web.Application) -> None:
            if manage_output:
                await self.output.start()

        async def _stop(_: web.Application) -> None:
            if manage_output:
                await self.output.stop()
            await self.api.close()

        app.on_startup.append(_start)
        app.on_cleanup.append(_stop)
        return app

    async def healthz(self, _: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(self, _: web.Request) -> web.Response:
        if await self.output.ready():
            return web.Response(text="ready\n")
        return web.Response(status=503, text=f"not ready: {self.output.not_ready_reason}\n")

    async def metrics_page(self, _: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.metrics.registry),
            headers={"Content-Type": CONTENT_TYPE_LATEST},
        )

    # -- the common frame ----------------------------------------------------------------

    async def _run(
        self,
        request: web.Request,
        route: str,
        work: Callable[[web.Request, Delivery], Awaitable[web.Response]],
    ) -> web.Response:
        started = time.perf_counter()
        delivery = Delivery(route, request.headers)
        try:
            delivery.body = await read_body(request, self.max_body)
            response = await work(request, delivery)
        except TooLarge as too_large:
            delivery.body = too_large.partial
            delivery.truncated = True
            response = await self._refuse(delivery, too_large)
            response.force_close()
        except Reject as rejected:
            response = await self._refuse(delivery, rejected)
        except BrokerUnavailable as exc:
            self.metrics.rejections.labels(route, "broker_unavailable").inc()
            log.warning("%s: broker unavailable (%s); answered 503", route, exc)
            response = _problem(503, "broker_unavailable", "the broker is unavailable; retry")
        except Exception as exc:
            # Its message may quote the input: log the type and place only.
            log.error(
                "%s: unexpected %s at %s (store %s); answered 400",
                route,
                type(exc).__name__,
                _where(exc),
                delivery.store or "?",
            )
            response = await self._refuse(
                delivery, Reject(400, "unprocessable", "the request could not be processed")
            )
        key = (route, response.status)
        counters = self._per_status.get(key)
        if counters is None:
            counters = self._per_status[key] = (
                self.metrics.requests.labels(route, str(response.status)),
                self.metrics.latency.labels(route),
            )
        counters[0].inc()
        counters[1].observe(time.perf_counter() - started)
        return response

    async def _refuse(self, delivery: Delivery, rejected: Reject) -> web.Response:
        """Count, log (no personal data) and dead-letter a refusal; 503 if that write fails."""
        route = delivery.route
        self.metrics.rejections.labels(route, rejected.reason).inc()
        log.info(
            "%s: refused %s (%s) for store %s",
            route,
            rejected.status,
            rejected.reason,
            delivery.store or "?",
        )
        record = rejection(
            route=route,
            status=rejected.status,
            reason=rejected.reason,
            detail=rejected.detail,
            headers=delivery.headers,
            body=delivery.body,
            limit=self.max_body,
            received_at=self.clock(),
            store=delivery.store,
            secret_headers=self._secret_headers,
            truncated=delivery.truncated,
        )
        try:
            await self.output.send([record])
        except BrokerUnavailable:
            self.metrics.dlq_failures.inc()
            log.warning(
                "%s: could not dead-letter a %s refusal; answered 503", route, rejected.reason
            )
            return _problem(503, "broker_unavailable", "the broker is unavailable; retry")
        except Exception as exc:
            self.metrics.dlq_failures.inc()
            log.error(
                "%s: could not dead-letter a %s refusal: %s at %s",
                route,
                rejected.reason,
                type(exc).__name__,
                _where(exc),
            )
        return _problem(rejected.status, *rejected.answer)

    async def _ignore(
        self, delivery: Delivery, reason: str, detail: str, record: bool = False
    ) -> web.Response:
        """Accept a delivery that stands for no record; ``record``: also dead-letter it."""
        self.metrics.ignored.labels(delivery.route, reason).inc()
        if record:
            entry = rejection(
                route=delivery.route,
                status=200,
                reason=reason,
                detail=detail,
                headers=delivery.headers,
                body=delivery.body,
                limit=self.max_body,
                received_at=self.clock(),
                store=delivery.store,
                secret_headers=self._secret_headers,
            )
            await self.output.send([entry])
        return _accepted(0, reason)

    def refused_unparsed(self, reason: str) -> None:
        """Count a request the HTTP server refused before any route (see gateway.server)."""
        self.metrics.rejections.labels("http", reason).inc()
        self.metrics.requests.labels("http", "400").inc()

    def _limit(self, store: StoreIngest) -> None:
        bucket = self._buckets.get(store.store)
        if bucket is None:
            limit = store.policy.rate_limit
            bucket = self._buckets[store.store] = TokenBucket(limit.per_second, limit.burst)
        if not bucket.take(time.monotonic()):
            raise Reject(429, "rate_limited", f"store {store.store!r} is over its request rate")

    async def _produce(self, emits: list[Emit], platform: str) -> None:
        await self.output.send(emits)
        for emit in emits:
            key = (platform, emit.kind)
            counter = self._per_kind.get(key)
            if counter is None:
                counter = self._per_kind[key] = self.metrics.events.labels(platform, emit.kind)
            counter.inc()

    def _received_at(self, header: str | None) -> datetime:
        if header:
            try:
                return to_time(header, "triggered_at")
            except Reject:
                pass
        return self.clock()

    # -- Shopify -----------------------------------------------------------------------

    async def shopify(self, request: web.Request) -> web.Response:
        return await self._run(request, "shopify", self._shopify)

    async def _shopify(self, request: web.Request, delivery: Delivery) -> web.Response:
        _need_type(request, JSON)
        domain = _header(request, "X-Shopify-Shop-Domain").lower()
        store_id = self.config.shopify_domains.get(domain)
        signature = request.headers.get("X-Shopify-Hmac-Sha256")
        if store_id is None:
            verify_body_hmac(delivery.body, signature, _NO_SECRET)  # the same work either way
            raise _unknown_store("shopify", "no store is mapped to this shop domain")
        delivery.store = store_id
        store = self.config.stores[store_id]
        if not verify_body_hmac(delivery.body, signature, store.shopify_secrets):
            raise _forged("shopify")
        self._limit(store)
        topic = _header(request, "X-Shopify-Topic")
        if topic not in shopify.TOPICS:
            # A refusal would be retried and, repeated, make Shopify remove the subscription.
            return await self._ignore(delivery, "unhandled_topic", "this topic is not used")
        webhook_id = _header(request, "X-Shopify-Webhook-Id")
        payload = _json(delivery.body)
        received = self._received_at(request.headers.get("X-Shopify-Triggered-At"))
        emits = shopify.normalize(topic, payload, store_id, webhook_id, received)
        await self._produce(emits, "shopify")
        if topic == "customers/data_request":
            log.info("shopify: data request recorded for shopper %s", emits[0].key)
        return _accepted(len(emits))

    # -- BigCommerce -------------------------------------------------------------------

    async def bigcommerce(self, request: web.Request) -> web.Response:
        return await self._run(request, "bigcommerce", self._bigcommerce)

    async def _bigcommerce(self, request: web.Request, delivery: Delivery) -> web.Response:
        _need_type(request, JSON)
        hook = bigcommerce.parse_hook(_json(delivery.body))
        store_id = self.config.bigcommerce_hashes.get(hook.store_hash)
        if store_id is None:
            raise _unknown_store("bigcommerce", "no store has this store hash")
        delivery.store = store_id
        store = self.config.stores[store_id]
        header = store.policy.bigcommerce.secret_header
        if not verify_token(request.headers.get(header), store.bigcommerce_secrets):
            raise _forged("bigcommerce")
        self._limit(store)
        if not hook.handled:
            return await self._ignore(delivery, "unhandled_topic", "this scope is not used")
        try:
            if hook.wants_cart:
                assert hook.cart_id is not None
                cart = await self.api.get_cart(store, hook.cart_id)
                self.metrics.enrichment.labels("cart" if cart is not None else "gone").inc()
                if cart is None:
                    return await self._ignore(
                        delivery, "cart_not_found", f"cart {hook.cart_id} no longer exists", True
                    )
                emit = bigcommerce.cart_event(cart, store_id, hook)
            else:
                assert hook.order_id is not None
                order = await self.api.get_order(store, hook.order_id)
                self.metrics.enrichment.labels("order" if order is not None else "gone").inc()
                if order is None:
                    return await self._ignore(
                        delivery, "order_not_found", f"order {hook.order_id} not found", True
                    )
                coupons = None
                if bigcommerce.wants_coupons(order):
                    coupons = await self.api.get_order_coupons(store, hook.order_id)
                emit = bigcommerce.order_event(order, store_id, hook, coupons)
        except EnrichmentFailed as exc:
            self.metrics.enrichment.labels("failed").inc()
            raise Reject(503, "enrichment_failed", f"BigCommerce API: {exc}; retry") from None
        await self._produce([emit], "bigcommerce")
        return _accepted(1)

    # -- WooCommerce -------------------------------------------------------------------

    async def woocommerce(self, request: web.Request) -> web.Response:
        return await self._run(request, "woocommerce", self._woocommerce)

    async def _woocommerce(self, request: web.Request, delivery: Delivery) -> web.Response:
        if request.content_type == FORM and delivery.body.startswith(b"webhook_id="):
            return await self._ignore(delivery, "ping", "webhook creation ping")
        _need_type(request, JSON)
        host = site_host(_header(request, "X-WC-Webhook-Source"))
        store_id = self.config.woocommerce_sites.get(host)
        signature = request.headers.get("X-WC-Webhook-Signature")
        if store_id is None:
            verify_body_hmac(delivery.body, signature, _NO_SECRET)
            raise _unknown_store("woocommerce", "no store is mapped to this site")
        delivery.store = store_id
        store = self.config.stores[store_id]
        if not verify_body_hmac(delivery.body, signature, store.woocommerce_secrets):
            raise _forged("woocommerce")
        self._limit(store)
        topic = _header(request, "X-WC-Webhook-Topic")
        if woocommerce.is_unused_topic(topic):
            return await self._ignore(delivery, "unhandled_topic", "this topic is not used")
        payload = _json(delivery.body)
        if woocommerce.is_order_topic(topic):
            delivery_id = _header(request, "X-WC-Webhook-Delivery-ID")
            meta_key = store.policy.woocommerce.checkout_meta_key
            emit = woocommerce.order_event(payload, store_id, f"wc:{delivery_id}", meta_key)
            if emit is None:
                status = woocommerce.order_status(payload)
                return await self._ignore(delivery, "unpaid_order", f"order status {status}")
            await self._produce([emit], "woocommerce")
            return _accepted(1)
        emits = generic.normalize(payload, store_id, platform="woocommerce")
        await self._produce(emits, "woocommerce")
        return _accepted(len(emits))

    # -- generic -----------------------------------------------------------------------

    async def events(self, request: web.Request) -> web.Response:
        return await self._run(request, "events", self._events)

    async def _events(self, request: web.Request, delivery: Delivery) -> web.Response:
        _need_type(request, JSON)
        payload: Any = None
        store_id = request.headers.get("X-Cartbands-Store", "").strip()
        if not store_id:
            payload = _json(delivery.body)
            first = payload[0] if isinstance(payload, list) and payload else payload
            named = first.get("store") if isinstance(first, dict) else None
            if not isinstance(named, str) or not named:
                raise Reject(400, "missing_field", "X-Cartbands-Store header or store is missing")
            store_id = named
        store = self.config.stores.get(store_id)
        if store is None:
            raise _unknown_store("events", "the store is not configured")
        delivery.store = store_id
        token_ok = verify_token(bearer(request.headers.get("Authorization")), store.generic_tokens)
        hmac_ok = verify_body_hmac(
            delivery.body,
            request.headers.get("X-Cartbands-Hmac-Sha256"),
            store.generic_hmac_secrets,
        )
        if not (token_ok or hmac_ok):
            raise _forged("events")
        self._limit(store)
        if payload is None:
            payload = _json(delivery.body)
        emits = generic.normalize(payload, store_id)
        await self._produce(emits, "generic")
        return _accepted(len(emits))

    # -- Twilio ------------------------------------------------------------------------

    async def twilio(self, request: web.Request) -> web.Response:
        return await self._run(request, "twilio", self._twilio)

    async def _twilio(self, request: web.Request, delivery: Delivery) -> web.Response:
        _need_type(request, FORM)
        try:
            params = parse_qsl(
                delivery.body.decode("utf-8"), keep_blank_values=True, strict_parsing=False
            )
        except (UnicodeDecodeError, ValueError):
            raise Reject(400, "malformed_form", "body is not a UTF-8 form") from None
        form = dict(params)
        to = form.get("To", "").strip()
        if not to:
            raise Reject(400, "missing_field", "To: required field is missing")
        store_id = self.config.twilio_numbers.get(normalize_phone(to))
        if store_id is None:
            raise _unknown_store("twilio", "no store owns the To number")
        delivery.store = store_id
        store = self.config.stores[store_id]
        url = (self.public_url + request.path_qs) if self.public_url else str(request.url)
        if not verify_twilio(
            url, params, request.headers.get("X-Twilio-Signature"), store.twilio_tokens
        ):
            raise _forged("twilio")
        self._limit(store)
        for name in ("From", "MessageSid"):
            if not form.get(name, "").strip():
                raise Reject(400, "missing_field", f"{name}: required field is missing")
        word = twilio.keyword(form.get("Body", ""))
        if word is not None:
            try:
                emit = twilio.consent_event(
                    store_id, form["From"], form["MessageSid"].strip(), word, self.clock()
                )
            except ValueError as exc:
                raise Reject(400, "invalid_field", f"From: {exc}") from None
            await self._produce([emit], "twilio")
            log.info("twilio: %s from shopper %s", word, emit.key)
        else:
            self.metrics.ignored.labels("twilio", "not_a_keyword").inc()
        return web.Response(text=twilio.EMPTY_TWIML, content_type="text/xml")
