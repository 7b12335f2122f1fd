"""BigCommerce coupon codes through the Promotions API (v3).

BigCommerce's docs recommend the Promotions API over the legacy v2 coupons (which only work
in the store's default currency). One code is one coupon promotion, since the end date, the
use limit and the minimum spend are a promotion's: per the Promotions API reference,
``POST /stores/{store_hash}/v3/promotions`` with ``redemption_type: COUPON``, ``rules`` (an
``action`` of ``cart_value.discount.percentage_amount`` | ``fixed_amount`` or
``shipping.free_shipping``, a ``condition.cart.minimum_spend``), ``max_uses``, ``end_date``
(ISO 8601), ``status: ENABLED``; then ``POST /promotions/{id}/codes`` with ``code``,
``max_uses`` and ``max_uses_per_customer``. ``GET /promotions?code=`` finds a promotion by
code, ``GET /promotions?name=`` by name (ours carry the touch), ``DELETE /promotions/{id}``
removes it with its codes. Authentication: the ``X-Auth-Token`` header (an API account with
the Marketing scope, modify). A promotion cannot name one customer (only customer groups).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from recovery.code_spec import CodeSpec
from recovery.codes_policy import BigCommerceCodes
from senders.adapters.base import HttpResult, secret, utcnow
from senders.adapters.http import _HttpAdapter
from senders.codes.base import NotOurs, Provisioned, money, percent
from senders.outcomes import PermanentError, TransientError


def _action(spec: CodeSpec) -> dict[str, Any]:
    if spec.kind == "percent_off":
        return {"cart_value": {"discount": {"percentage_amount": percent(spec.value)}}}
    if spec.kind == "fixed_off":
        return {"cart_value": {"discount": {"fixed_amount": money(spec.value)}}}
    return {"shipping": {"free_shipping": True, "zone_ids": "*"}}


def promotion_body(spec: CodeSpec, channel_ids: list[int]) -> dict[str, Any]:
    """The JSON body of the coupon promotion that carries ``spec``'s code."""
    rule: dict[str, Any] = {"action": _action(spec), "apply_once": True, "stop": False}
    if spec.min_subtotal is not None:
        rule["condition"] = {"cart": {"minimum_spend": money(spec.min_subtotal)}}
    return {
        "name": spec.title,
        "redemption_type": "COUPON",
        "channels": [{"id": channel} for channel in channel_ids],
        "rules": [rule],
        "max_uses": 1,
        "currency_code": spec.currency,
        "start_date": spec.starts_at.isoformat(),
        "end_date": spec.expires_at.isoformat(),
        "status": "ENABLED",
    }


def code_body(spec: CodeSpec) -> dict[str, Any]:
    return {"code": spec.code, "max_uses": 1, "max_uses_per_customer": 1}


def _listed(result: HttpResult) -> list[dict[str, Any]]:
    body = result.json()
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        raise TransientError("BigCommerce answered a list without data")
    return [item for item in data if isinstance(item, dict)]


class _Conflict(PermanentError):
    pass


def _conflict(result: HttpResult) -> Exception | None:
    return _Conflict(f"HTTP {result.status}") if result.status == 409 else None


class BigCommerceProvisioner(_HttpAdapter):
    platform = "bigcommerce"
    provider = "bigcommerce"

    def __init__(
        self,
        config: BigCommerceCodes,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(config.timeout.total_seconds(), clock)
        self.config = config
        self.base = config.url
        self.headers = {
            "X-Auth-Token": secret(config.access_token_env, environ),
            "Accept": "application/json",
            "Content-Type": "application/json",
        }

    async def _promotions(self, **query: str) -> list[dict[str, Any]]:
        result = await self.call(
            "GET", f"{self.base}/promotions", params=query, headers=self.headers
        )
        return _listed(result)

    async def _codes(self, promotion: str) -> list[dict[str, Any]]:
        result = await self.call(
            "GET", f"{self.base}/promotions/{promotion}/codes", headers=self.headers
        )
        return _listed(result)

    async def _ours(self, spec: CodeSpec) -> str | None:
        """The id of our promotion for ``spec`` (made by an earlier attempt), or None; a
        promotion of someone else's that holds the code is refused."""
        for promotion in await self._promotions(code=spec.code):
            if promotion.get("name") != spec.title:
                raise NotOurs(
                    f"code {spec.code} belongs to the promotion {promotion.get('name')!r}"
                )
            return str(promotion.get("id"))
        for promotion in await self._promotions(name=spec.title):
            if promotion.get("name") == spec.title:
                return str(promotion.get("id"))
        return None

    async def _add_code(self, spec: CodeSpec, promotion: str) -> None:
        codes = {str(c.get("code", "")).upper() for c in await self._codes(promotion)}
        if spec.code.upper() in codes:
            return
        await self.call(
            "POST",
            f"{self.base}/promotions/{promotion}/codes",
            json=code_body(spec),
            headers=self.headers,
        )

    async def ensure(self, spec: CodeSpec) -> Provisioned:
        promotion = await self._ours(spec)
        created = promotion is None
        if promotion is None:
            try:
                result = await self.call(
                    "POST",
                    f"{self.base}/promotions",
                    json=promotion_body(spec, self.config.channel_ids),
                    headers=self.headers,
                    classify=_conflict,
                )
            except _Conflict:
                promotion = await self._ours(spec)
                if promotion is None:
                    raise TransientError(
                        f"promotion {spec.title!r} conflicts but is not found"
                    ) from None
            else:
                body = result.json()
                data = body.get("data") if isinstance(body, dict) else None
                if not isinstance(data, dict) or data.get("id") is None:
                    raise PermanentError("BigCommerce created a promotion without an id")
                promotion = str(data["id"])
        # a crash between the two requests leaves the promotion without its code: add it now
        await self._add_code(spec, promotion)
        return Provisioned(spec.code, promotion, created=created)

    async def remove(self, code: str, ref: str) -> bool:
        def gone(result: HttpResult) -> Exception | None:
            return _Conflict("gone") if result.status == 404 else None

        try:
            await self.call(
                "DELETE", f"{self.base}/promotions/{ref}", headers=self.headers, classify=gone
            )
        except _Conflict:
            return False
        return True
