"""Fetching BigCommerce carts and orders for thin webhooks (shell: HTTP).

Enrichment happens inline, before the webhook is answered: the request waits for the fetch
(bounded retries with exponential backoff and jitter, so gateway copies do not retry in step,
never sooner than a ``429``'s ``X-Rate-Limit-Time-Reset-Ms``) and for the
broker's acknowledgement of the canonical record, then answers 200. If the API stays
unavailable the answer is 503 and BigCommerce delivers again later (same ``hash``), so nothing
acknowledged depends on state kept here. Calls per store hash are paced by a token bucket
(the policy's ``bigcommerce.api_rate_limit``) so one busy store cannot exhaust its API quota.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from gateway.config import StoreIngest
from gateway.ratelimit import TokenBucket

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class EnrichmentFailed(RuntimeError):
    """The resource could not be fetched after the allowed attempts."""


class BigCommerceApi:
    def __init__(
        self,
        *,
        attempts: int = 4,
        backoff: float = 0.25,
        timeout: float = 5.0,
        max_wait: float = 10.0,
    ) -> None:
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = timeout
        self.max_wait = max_wait
        self._session: aiohttp.ClientSession | None = None
        self._buckets: dict[str, TokenBucket] = {}
        self.outcomes: dict[str, int] = {}

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self._session

    async def get_cart(self, store: StoreIngest, cart_id: str) -> Any | None:
        """The cart's ``data`` object, or ``None`` when the cart no longer exists."""
        found = await self._get(store, f"/v3/carts/{quote(cart_id, safe='')}")
        if found is None:
            return None
        return found.get("data") if isinstance(found, dict) else found

    async def get_order(self, store: StoreIngest, order_id: str) -> Any | None:
        return await self._get(store, f"/v2/orders/{quote(order_id, safe='')}")

    async def get_order_coupons(self, store: StoreIngest, order_id: str) -> Any:
        """The coupons the order used (``GET /v2/orders/{id}/coupons``, per the Order
        Coupons resource: ``[{id, coupon_id, order_id, code, amount, type, discount}]``);
        an empty list when it has none (v2 answers an empty collection 204, or 404)."""
        found = await self._get(store, f"/v2/orders/{quote(order_id, safe='')}/coupons")
        return [] if found is None else found

    async def _pace(self, store: StoreIngest) -> None:
        hash_ = store.policy.bigcommerce.store_hash or store.store
        limit = store.policy.bigcommerce.api_rate_limit
        bucket = self._buckets.get(hash_)
        if bucket is None:
            bucket = self._buckets[hash_] = TokenBucket(limit.per_second, limit.burst)
        waited = 0.0
        while not bucket.take(time.monotonic()):
            pause = bucket.wait_time(time.monotonic())
            if waited + pause > self.max_wait:
                raise EnrichmentFailed("rate limit: no API call allowed within the wait bound")
            await asyncio.sleep(pause)
            waited += pause

    def _count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    async def _get(self, store: StoreIngest, path: str) -> Any | None:
        big = store.policy.bigcommerce
        if not big.store_hash or not store.bigcommerce_token:
            raise EnrichmentFailed("no store hash or access token configured")
        url = f"{big.api_url.rstrip('/')}/stores/{big.store_hash}{path}"
        headers = {"X-Auth-Token": store.bigcommerce_token, "Accept": "application/json"}
        delay = self.backoff
        last = "no attempt"
        for attempt in range(1, self.attempts + 1):
            reset = 0.0
            await self._pace(store)
            try:
                async with self._client().get(url, headers=headers) as response:
                    if response.status == 200:
                        self._count("ok")
                        return orjson.loads(await response.read())
                    if response.status == 204:  # v2's answer for an empty collection
                        self._count("ok")
                        return []
                    if response.status in (404, 410):
                        self._count("not_found")
                        return None
                    last = f"HTTP {response.status}"
                    if response.status not in RETRY_STATUSES:
                        self._count("refused")
                        raise EnrichmentFailed(f"{path}: {last}")
                    reset_ms = response.headers.get("X-Rate-Limit-Time-Reset-Ms", "")
                    if response.status == 429 and reset_ms.isdigit():
                        reset = int(reset_ms) / 1000
            except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as exc:
                last = type(exc).__name__
            self._count("retry")
            if attempt < self.attempts:
                jittered = delay * (0.5 + 0.5 * random.random())
                await asyncio.sleep(min(max(jittered, reset), self.max_wait))
                delay *= 2
        self._count("failed")
        log.warning("BigCommerce %s failed after %d attempts: %s", path, self.attempts, last)
        raise EnrichmentFailed(f"{path}: {last} after {self.attempts} attempts")
