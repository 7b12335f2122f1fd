"""Shopify discount codes through the GraphQL Admin API.

Per Shopify's GraphQL Admin reference: ``POST https://{shop}/admin/api/{version}/graphql.json``
with the ``X-Shopify-Access-Token`` header (scope ``write_discounts``); an amount-off code is
``discountCodeBasicCreate(basicCodeDiscount: DiscountCodeBasicInput!)``, a free-shipping code
``discountCodeFreeShippingCreate(freeShippingCodeDiscount: DiscountCodeFreeShippingInput!)``;
a code is looked up with ``codeDiscountNodeByCode(code:)`` and removed with
``discountCodeDelete(id:)``. Buyers are chosen with ``context`` (``customers.add`` of customer
GIDs, or ``all: ALL``); a percentage is a share of 1 (``0.1``); a minimum subtotal is
``minimumRequirement.subtotal.greaterThanOrEqualToSubtotal``. A code that exists already is the
user error ``TAKEN``. A throttled call answers 200 with an error whose
``extensions.code`` is ``THROTTLED``: retried like a 429.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from recovery.code_spec import CodeSpec
from recovery.codes_policy import ShopifyCodes
from senders.adapters.base import HttpResult, secret, utcnow
from senders.adapters.http import _HttpAdapter
from senders.codes.base import NotOurs, Provisioned, money
from senders.outcomes import PermanentError, TransientError

LOOKUP = """query cartbandsCode($code: String!) {
  codeDiscountNodeByCode(code: $code) {
    id
    codeDiscount {
      __typename
      ... on DiscountCodeBasic { title }
      ... on DiscountCodeFreeShipping { title }
    }
  }
}"""

BASIC_CREATE = """mutation cartbandsBasic($basicCodeDiscount: DiscountCodeBasicInput!) {
  discountCodeBasicCreate(basicCodeDiscount: $basicCodeDiscount) {
    codeDiscountNode { id }
    userErrors { field code message }
  }
}"""

FREE_SHIPPING_CREATE = """mutation cartbandsShipping(
  $freeShippingCodeDiscount: DiscountCodeFreeShippingInput!
) {
  discountCodeFreeShippingCreate(freeShippingCodeDiscount: $freeShippingCodeDiscount) {
    codeDiscountNode { id }
    userErrors { field code message }
  }
}"""

DELETE = """mutation cartbandsDelete($id: ID!) {
  discountCodeDelete(id: $id) {
    deletedCodeDiscountId
    userErrors { field code message }
  }
}"""


def customer_gid(customer_id: str | None) -> str | None:
    """Shopify customer ids travel as numbers; the API takes ``gid://shopify/Customer/N``.
    None for anything else (not a Shopify customer id: the code is then open to all buyers,
    still single use, rather than refused by Shopify)."""
    if not customer_id:
        return None
    if customer_id.startswith("gid://shopify/Customer/"):
        return customer_id
    return f"gid://shopify/Customer/{customer_id}" if customer_id.isdigit() else None


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _common(spec: CodeSpec) -> dict[str, Any]:
    customer = customer_gid(spec.customer_id)
    data: dict[str, Any] = {
        "title": spec.title,
        "code": spec.code,
        "startsAt": _iso(spec.starts_at),
        "endsAt": _iso(spec.expires_at),
        "usageLimit": 1,
        "appliesOncePerCustomer": True,
        "context": {"customers": {"add": [customer]}} if customer else {"all": "ALL"},
    }
    if spec.min_subtotal is not None:
        data["minimumRequirement"] = {
            "subtotal": {"greaterThanOrEqualToSubtotal": money(spec.min_subtotal)}
        }
    return data


def create_request(spec: CodeSpec) -> dict[str, Any]:
    """The GraphQL request (query and variables) that creates ``spec``'s code."""
    data = _common(spec)
    if spec.kind == "free_shipping":
        data["destination"] = {"all": True}
        return {"query": FREE_SHIPPING_CREATE, "variables": {"freeShippingCodeDiscount": data}}
    if spec.kind == "percent_off":
        value: dict[str, Any] = {"percentage": float(spec.percentage)}
    else:
        value = {"discountAmount": {"amount": money(spec.value), "appliesOnEachItem": False}}
    data["customerGets"] = {"value": value, "items": {"all": True}}
    return {"query": BASIC_CREATE, "variables": {"basicCodeDiscount": data}}


def lookup_request(code: str) -> dict[str, Any]:
    return {"query": LOOKUP, "variables": {"code": code}}


def delete_request(ref: str) -> dict[str, Any]:
    return {"query": DELETE, "variables": {"id": ref}}


def _data(result: HttpResult) -> dict[str, Any]:
    """The ``data`` of a GraphQL answer; top-level errors raised (throttling is transient)."""
    body = result.json()
    if not isinstance(body, dict):
        raise TransientError(f"Shopify answered {result.status} without a JSON object")
    errors = body.get("errors")
    if errors:
        listed = errors if isinstance(errors, list) else [errors]
        codes = {(e.get("extensions") or {}).get("code") for e in listed if isinstance(e, dict)}
        text = "; ".join(
            str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in listed
        )[:300]
        if "THROTTLED" in codes or "INTERNAL_SERVER_ERROR" in codes:
            raise TransientError(f"Shopify GraphQL: {text}")
        raise PermanentError(f"Shopify GraphQL: {text}")
    data = body.get("data")
    if not isinstance(data, dict):
        raise PermanentError("Shopify GraphQL answer without data")
    return data


def _user_errors(payload: dict[str, Any]) -> list[dict[str, Any]]:
    errors = payload.get("userErrors") or []
    return [e for e in errors if isinstance(e, dict)]


class ShopifyProvisioner(_HttpAdapter):
    platform = "shopify"
    provider = "shopify"

    def __init__(
        self,
        config: ShopifyCodes,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(config.timeout.total_seconds(), clock)
        self.config = config
        self.endpoint = f"{config.url}/admin/api/{config.api_version}/graphql.json"
        self.headers = {
            "X-Shopify-Access-Token": secret(config.access_token_env, environ),
            "Content-Type": "application/json",
            "Accept": "application/json",
        }

    async def _graphql(self, request: dict[str, Any]) -> dict[str, Any]:
        result = await self.call("POST", self.endpoint, json=request, headers=self.headers)
        return _data(result)

    async def find(self, code: str) -> tuple[str, str | None] | None:
        """(id, title) of the code in the shop, or None."""
        data = await self._graphql(lookup_request(code))
        node = data.get("codeDiscountNodeByCode")
        if not isinstance(node, dict) or not node.get("id"):
            return None
        discount = node.get("codeDiscount") or {}
        title = discount.get("title") if isinstance(discount, dict) else None
        return str(node["id"]), title if isinstance(title, str) else None

    async def _existing(self, spec: CodeSpec) -> Provisioned | None:
        found = await self.find(spec.code)
        if found is None:
            return None
        ref, title = found
        if title != spec.title:
            raise NotOurs(f"code {spec.code} exists in the shop as {title!r}, not {spec.title!r}")
        return Provisioned(spec.code, ref, created=False)

    async def ensure(self, spec: CodeSpec) -> Provisioned:
        existing = await self._existing(spec)
        if existing is not None:
            return existing
        request = create_request(spec)
        field = (
            "discountCodeFreeShippingCreate"
            if spec.kind == "free_shipping"
            else "discountCodeBasicCreate"
        )
        payload = (await self._graphql(request)).get(field) or {}
        errors = _user_errors(payload)
        if any(e.get("code") == "TAKEN" for e in errors):
            # another sender created it between our look-up and our create
            existing = await self._existing(spec)
            if existing is not None:
                return existing
            raise TransientError(f"code {spec.code} is taken but could not be found")
        if errors:
            text = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in errors)
            raise PermanentError(f"Shopify refused the code: {text}"[:300])
        node = payload.get("codeDiscountNode") or {}
        if not node.get("id"):
            raise PermanentError("Shopify created no discount and said no error")
        return Provisioned(spec.code, str(node["id"]), created=True)

    async def remove(self, code: str, ref: str) -> bool:
        payload = (await self._graphql(delete_request(ref))).get("discountCodeDelete") or {}
        errors = _user_errors(payload)
        if errors:
            if await self.find(code) is None:
                return False  # gone already (deleted by hand, or by another sender)
            text = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in errors)
            raise PermanentError(f"Shopify did not delete {code}: {text}"[:300])
        return bool(payload.get("deletedCodeDiscountId"))
