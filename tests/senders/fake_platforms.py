"""Local stand-ins for the stores' discount APIs: Shopify GraphQL Admin, BigCommerce
Promotions, WooCommerce REST coupons. Each keeps the codes it holds, checks every request as
the platform's docs require (path, API version, auth header, input fields) and answers a
scripted failure first when one is queued (``fail``: status and body, or ``"throttled"``)."""

from __future__ import annotations

import base64
import itertools
from typing import Any

from aiohttp import web

BASIC_FIELDS = {
    "appliesOncePerCustomer", "code", "combinesWith", "context", "customerGets", "endsAt",
    "minimumRequirement", "recurringCycleLimit", "startsAt", "title", "usageLimit",
}  # fmt: skip
FREE_SHIPPING_FIELDS = {
    "appliesOncePerCustomer", "appliesOnOneTimePurchase", "appliesOnSubscription", "code",
    "combinesWith", "context", "destination", "endsAt", "maximumShippingPrice",
    "minimumRequirement", "recurringCycleLimit", "startsAt", "title", "usageLimit",
}  # fmt: skip
WOO_FIELDS = {
    "code", "amount", "discount_type", "description", "date_expires", "date_expires_gmt",
    "individual_use", "product_ids", "excluded_product_ids", "usage_limit",
    "usage_limit_per_user", "limit_usage_to_x_items", "free_shipping", "product_categories",
    "excluded_product_categories", "exclude_sale_items", "minimum_amount", "maximum_amount",
    "email_restrictions", "meta_data",
}  # fmt: skip
PROMOTION_FIELDS = {
    "name", "redemption_type", "channels", "customer", "rules", "notifications", "stop",
    "currency_code", "max_uses", "status", "start_date", "end_date",
    "can_be_used_with_other_promotions",
    "coupon_overrides_automatic_when_offering_higher_discounts",
}  # fmt: skip


class _Fake:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail: list[Any] = []
        self.runner: web.AppRunner | None = None
        self.url = ""
        self._ids = itertools.count(1001)

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self) -> Any:
        app = web.Application(middlewares=[self._record])
        self.routes(app)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(
            {"method": request.method, "path": request.path, "query": dict(request.query),
             "body": body}
        )  # fmt: skip
        if self.fail:
            failure = self.fail.pop(0)
            if failure == "throttled":
                return web.json_response(
                    {"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}]}
                )
            status, payload = failure
            return web.json_response(payload, status=status, headers={"Retry-After": "0"})
        return await handler(request)

    def count(self, method: str, fragment: str = "") -> int:
        return sum(
            1
            for r in self.requests
            if r["method"] == method and fragment.encode() in r["body"] + r["path"].encode()
        )


class FakeShopify(_Fake):
    """``POST /admin/api/{version}/graphql.json``; ``discounts`` by code."""

    def __init__(self, token: str = "shpat_test", version: str = "2026-10") -> None:
        super().__init__()
        self.token = token
        self.version = version
        self.discounts: dict[str, dict[str, Any]] = {}
        self.hide_once = False  # the next look-up misses (another sender's create races ours)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/admin/api/{version}/graphql.json", self._graphql)

    async def _graphql(self, request: web.Request) -> web.Response:
        if request.match_info["version"] != self.version:
            return web.json_response({"errors": "Not Found"}, status=404)
        if request.headers.get("X-Shopify-Access-Token") != self.token:
            return web.json_response(
                {"errors": "[API] Invalid API key or access token"}, status=401
            )
        if request.content_type != "application/json":
            return web.json_response({"errors": "wrong content type"}, status=415)
        body = await request.json()
        query, variables = body.get("query", ""), body.get("variables") or {}
        if "codeDiscountNodeByCode" in query:
            return self._lookup(variables["code"])
        if "discountCodeBasicCreate" in query:
            return self._create(variables["basicCodeDiscount"], "DiscountCodeBasic", BASIC_FIELDS)
        if "discountCodeFreeShippingCreate" in query:
            data = variables["freeShippingCodeDiscount"]
            return self._create(data, "DiscountCodeFreeShipping", FREE_SHIPPING_FIELDS)
        if "discountCodeDelete" in query:
            return self._delete(variables["id"])
        return web.json_response({"errors": [{"message": "unknown operation"}]})

    def _lookup(self, code: str) -> web.Response:
        found = self.discounts.get(code.upper())
        if self.hide_once:
            self.hide_once, found = False, None
        node = None
        if found is not None:
            discount = {"__typename": found["type"], "title": found["input"]["title"]}
            node = {"id": found["id"], "codeDiscount": discount}
        return web.json_response({"data": {"codeDiscountNodeByCode": node}})

    def _create(self, data: dict[str, Any], kind: str, fields: set[str]) -> web.Response:
        field = "discountCodeBasicCreate" if kind == "DiscountCodeBasic" else (
            "discountCodeFreeShippingCreate")  # fmt: skip
        unknown = set(data) - fields
        missing = {"code", "title", "startsAt"} - set(data)
        if "context" not in data and "customerSelection" not in data:
            missing.add("context")
        if kind == "DiscountCodeBasic":
            missing |= {"customerGets"} - set(data)
        if unknown or missing:
            message = f"invalid input: unknown {sorted(unknown)}, missing {sorted(missing)}"
            return web.json_response({"errors": [{"message": message}]})
        if kind == "DiscountCodeBasic":
            value = data["customerGets"]["value"]
            pct = value.get("percentage")
            if pct is not None and not 0 <= pct <= 1:
                return self._user_error(field, "percentage", "INVALID", "between 0 and 1")
        if data["code"].upper() in self.discounts:
            return self._user_error(field, "code", "TAKEN", "Code must be unique.")
        ident = f"gid://shopify/DiscountCodeNode/{next(self._ids)}"
        self.discounts[data["code"].upper()] = {"id": ident, "type": kind, "input": data}
        return web.json_response(
            {"data": {field: {"codeDiscountNode": {"id": ident}, "userErrors": []}}}
        )

    @staticmethod
    def _user_error(field: str, where: str, code: str, message: str) -> web.Response:
        error = {"field": [where], "code": code, "message": message}
        return web.json_response(
            {"data": {field: {"codeDiscountNode": None, "userErrors": [error]}}}
        )

    def _delete(self, ident: str) -> web.Response:
        for code, found in list(self.discounts.items()):
            if found["id"] == ident:
                del self.discounts[code]
                payload = {"deletedCodeDiscountId": ident, "userErrors": []}
                return web.json_response({"data": {"discountCodeDelete": payload}})
        error = {"field": ["id"], "code": "INVALID", "message": "Discount does not exist"}
        payload = {"deletedCodeDiscountId": None, "userErrors": [error]}
        return web.json_response({"data": {"discountCodeDelete": payload}})


class FakeWooCommerce(_Fake):
    """``/wp-json/wc/v3/coupons``; ``coupons`` by id."""

    def __init__(self, key: str = "ck_test", secret: str = "cs_test") -> None:
        super().__init__()
        token = base64.b64encode(f"{key}:{secret}".encode()).decode()
        self.auth = f"Basic {token}"
        self.coupons: dict[int, dict[str, Any]] = {}
        self.hide_once = False  # the next look-up misses (another sender's create races ours)

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/wp-json/wc/v3/coupons", self._list)
        app.router.add_post("/wp-json/wc/v3/coupons", self._create)
        app.router.add_delete("/wp-json/wc/v3/coupons/{id}", self._delete)

    def _denied(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != self.auth:
            return web.json_response(
                {"code": "woocommerce_rest_cannot_view", "message": "Sorry, you cannot list "
                 "resources.", "data": {"status": 401}}, status=401,
            )  # fmt: skip
        return None

    async def _list(self, request: web.Request) -> web.Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        code = request.query.get("code", "").lower()
        if self.hide_once:
            self.hide_once = False
            return web.json_response([])
        return web.json_response([c for c in self.coupons.values() if c["code"] == code])

    async def _create(self, request: web.Request) -> web.Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        data = await request.json()
        unknown = set(data) - WOO_FIELDS
        bad_type = data.get("discount_type") not in ("percent", "fixed_cart", "fixed_product")
        if unknown or "code" not in data or bad_type or not isinstance(data.get("amount"), str):
            return web.json_response(
                {"code": "rest_invalid_param", "message": f"Invalid parameter(s): {unknown}",
                 "data": {"status": 400}}, status=400,
            )  # fmt: skip
        code = data["code"].lower()  # WooCommerce stores codes lower-cased
        if any(c["code"] == code for c in self.coupons.values()):
            return web.json_response(
                {"code": "woocommerce_rest_coupon_code_already_exists",
                 "message": "The coupon code already exists", "data": {"status": 400}},
                status=400,
            )  # fmt: skip
        ident = next(self._ids)
        coupon = {**data, "id": ident, "code": code, "usage_count": 0}
        self.coupons[ident] = coupon
        return web.json_response(coupon, status=201)

    async def _delete(self, request: web.Request) -> web.Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        ident = int(request.match_info["id"])
        if request.query.get("force") != "true":
            return web.json_response({"code": "woocommerce_rest_trash_not_supported"}, status=501)
        coupon = self.coupons.pop(ident, None)
        if coupon is None:
            return web.json_response(
                {"code": "woocommerce_rest_shop_coupon_invalid_id"}, status=404
            )
        return web.json_response(coupon)


class FakeBigCommerce(_Fake):
    """``/stores/{hash}/v3/promotions`` and their ``codes``; ``promotions`` by id."""

    def __init__(self, store_hash: str = "abc123", token: str = "bc_test") -> None:
        super().__init__()
        self.store_hash = store_hash
        self.token = token
        self.promotions: dict[int, dict[str, Any]] = {}

    def routes(self, app: web.Application) -> None:
        base = f"/stores/{self.store_hash}/v3/promotions"
        app.router.add_get(base, self._list)
        app.router.add_post(base, self._create)
        app.router.add_delete(base + "/{id}", self._delete)
        app.router.add_get(base + "/{id}/codes", self._codes)
        app.router.add_post(base + "/{id}/codes", self._add_code)

    def _denied(self, request: web.Request) -> web.Response | None:
        if request.headers.get("X-Auth-Token") != self.token:
            return web.json_response({"status": 401, "title": "Unauthorized"}, status=401)
        return None

    async def _list(self, request: web.Request) -> web.Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        code, name = request.query.get("code"), request.query.get("name")
        found = [
            p for p in self.promotions.values()
            if (code is None or code.upper() in {c["code"].upper() for c in p["codes"]})
            and (name is None or p["name"] == name)
        ]  # fmt: skip
        return web.json_response({"data": found, "meta": {}})

    async def _create(self, request: web.Request) -> web.Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        data = await request.json()
        unknown = set(data) - PROMOTION_FIELDS
        if unknown or not data.get("name") or not data.get("rules"):
            return web.json_response({"status": 422, "title": f"invalid {unknown}"}, status=422)
        if data.get("redemption_type") != "COUPON":
            return web.json_response({"status": 422, "title": "not a coupon"}, status=422)
        ident = next(self._ids)
        self.promotions[ident] = {**data, "id": ident, "codes": [], "current_uses": 0}
        return web.json_response({"data": {**data, "id": ident}, "meta": {}}, status=201)

    async def _delete(self, request: web.Request) -> web.Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        self.promotions.pop(int(request.match_info["id"]), None)
        return web.Response(status=204)

    async def _codes(self, request: web.Request) -> web.Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        promotion = self.promotions.get(int(request.match_info["id"]))
        if promotion is None:
            return web.json_response({"status": 404, "title": "not found"}, status=404)
        return web.json_response({"data": promotion["codes"], "meta": {}})

    async def _add_code(self, request: web.Request) -> web.Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        promotion = self.promotions.get(int(request.match_info["id"]))
        if promotion is None:
            return web.json_response({"status": 404, "title": "not found"}, status=404)
        data = await request.json()
        if set(data) - {"code", "max_uses", "max_uses_per_customer"} or len(data["code"]) > 50:
            return web.json_response({"status": 422, "title": "invalid code"}, status=422)
        taken = any(
            c["code"].upper() == data["code"].upper()
            for p in self.promotions.values()
            for c in p["codes"]
        )
        if taken:
            return web.json_response({"status": 409, "title": "code exists"}, status=409)
        code = {**data, "id": next(self._ids), "current_uses": 0}
        promotion["codes"].append(code)
        return web.json_response({"data": code, "meta": {}}, status=201)
