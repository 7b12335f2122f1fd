"""WooCommerce coupons through the REST API (``wc/v3``).

Per the WooCommerce REST API reference (Coupons): ``POST /wp-json/wc/v3/coupons`` creates a
coupon (``code``, ``discount_type`` ``percent`` | ``fixed_cart``, ``amount`` as a string,
``date_expires_gmt``, ``usage_limit``, ``usage_limit_per_user``, ``individual_use``,
``email_restrictions``, ``minimum_amount``, ``free_shipping``); ``GET /wp-json/wc/v3/coupons
?code=`` finds one by code; ``DELETE /wp-json/wc/v3/coupons/{id}?force=true`` deletes it (without
``force`` it would only go to the trash, where its code still counts as taken). Authentication
is HTTP basic with the consumer key and secret, over HTTPS only. A code that exists already is
refused with 400 ``woocommerce_rest_coupon_code_already_exists``.

A free-shipping coupon enables the store's "Free shipping" method when that method is set to
require a valid coupon (WooCommerce's own rule): the README says so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from recovery.code_spec import CodeSpec
from recovery.codes_policy import WooCommerceCodes
from senders.adapters.base import HttpResult, basic_auth, secret, utcnow
from senders.adapters.http import _HttpAdapter
from senders.codes.base import NotOurs, Provisioned, money, percent
from senders.outcomes import PermanentError, TransientError

ALREADY_EXISTS = "woocommerce_rest_coupon_code_already_exists"


def _gmt(moment: datetime) -> str:
    """WooCommerce dates are ``YYYY-MM-DDTHH:MM:SS`` without an offset; ``_gmt`` ones are UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def create_body(spec: CodeSpec) -> dict[str, Any]:
    """The JSON body that creates ``spec``'s coupon."""
    body: dict[str, Any] = {
        "code": spec.code,
        "description": spec.title,
        "date_expires_gmt": _gmt(spec.expires_at),
        "usage_limit": 1,
        "usage_limit_per_user": 1,
        "individual_use": True,
    }
    if spec.kind == "percent_off":
        body.update(discount_type="percent", amount=percent(spec.value))
    elif spec.kind == "fixed_off":
        body.update(discount_type="fixed_cart", amount=money(spec.value))
    else:
        body.update(discount_type="fixed_cart", amount="0", free_shipping=True)
    if spec.email:
        body["email_restrictions"] = [spec.email]
    if spec.min_subtotal is not None:
        body["minimum_amount"] = money(spec.min_subtotal)
    return body


def _already_exists(result: HttpResult) -> Exception | None:
    body = result.json()
    if result.status == 400 and isinstance(body, dict) and body.get("code") == ALREADY_EXISTS:
        return _Exists(str(body.get("message", "the coupon code already exists")))
    return None


class _Exists(PermanentError):
    pass


class WooCommerceProvisioner(_HttpAdapter):
    platform = "woocommerce"
    provider = "woocommerce"

    def __init__(
        self,
        config: WooCommerceCodes,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(config.timeout.total_seconds(), clock)
        self.config = config
        self.url = f"{config.base_url}/wp-json/wc/v3/coupons"
        key = secret(config.consumer_key_env, environ)
        token = secret(config.consumer_secret_env, environ)
        self.headers = {**basic_auth(key, token), "Accept": "application/json"}

    async def find(self, code: str) -> dict[str, Any] | None:
        result = await self.call("GET", self.url, params={"code": code}, headers=self.headers)
        listed = result.json()
        if not isinstance(listed, list):
            raise TransientError("WooCommerce listed coupons without a JSON array")
        for coupon in listed:
            # codes are stored lower-cased: compare without case
            if isinstance(coupon, dict) and str(coupon.get("code", "")).lower() == code.lower():
                return coupon
        return None

    async def _existing(self, spec: CodeSpec) -> Provisioned | None:
        coupon = await self.find(spec.code)
        if coupon is None:
            return None
        if coupon.get("description") != spec.title:
            raise NotOurs(
                f"code {spec.code} exists in the store as {coupon.get('description')!r}, "
                f"not {spec.title!r}"
            )
        return Provisioned(spec.code, str(coupon.get("id")), created=False)

    async def ensure(self, spec: CodeSpec) -> Provisioned:
        existing = await self._existing(spec)
        if existing is not None:
            return existing
        try:
            result = await self.call(
                "POST",
                self.url,
                json=create_body(spec),
                headers=self.headers,
                classify=_already_exists,
            )
        except _Exists:
            existing = await self._existing(spec)
            if existing is not None:
                return existing
            raise TransientError(f"code {spec.code} exists but could not be found") from None
        created = result.json()
        if not isinstance(created, dict) or created.get("id") is None:
            raise PermanentError("WooCommerce created a coupon without an id")
        return Provisioned(spec.code, str(created["id"]), created=True)

    async def remove(self, code: str, ref: str) -> bool:
        def gone(result: HttpResult) -> Exception | None:
            return _Gone() if result.status in (404, 410) else None

        try:
            await self.call(
                "DELETE",
                f"{self.url}/{ref}",
                params={"force": "true"},
                headers=self.headers,
                classify=gone,
            )
        except _Gone:
            return False
        return True


class _Gone(PermanentError):
    def __init__(self) -> None:
        super().__init__("the coupon is gone")
