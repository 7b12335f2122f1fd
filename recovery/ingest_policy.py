"""The ``ingest`` section of a store's policy: how the gateway recognises and trusts the store.

Every secret is named by the environment variable that holds it (``SHOPIFY_SECRET_ACME``),
never written in the policy file; lists of names allow rotation (old and new secret both
accepted). Pure data and validation: resolving the variables is the gateway shell's job.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints


def _as_list(value: object) -> object:
    """A single name where a list is expected is a list of one."""
    if isinstance(value, str):
        return [value]
    return value


EnvName = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=200),
]
EnvNames = Annotated[list[EnvName], BeforeValidator(_as_list)]
Names = Annotated[list[str], BeforeValidator(_as_list)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RateLimit(_Strict):
    """A token bucket: ``per_second`` sustained, up to ``burst`` at once."""

    per_second: float = Field(default=50.0, gt=0)
    burst: int = Field(default=100, ge=1)


class ShopifyIngest(_Strict):
    """``domains``: the shop's ``*.myshopify.com`` domains; ``secret_env``: app secret(s)."""

    domains: Names = []
    secret_env: EnvNames = []


class BigCommerceIngest(_Strict):
    """The store hash (``stores/{hash}`` in webhooks), API token and the hook's secret header."""

    store_hash: str | None = None
    access_token_env: EnvName | None = None
    secret_header: str = Field(default="X-Cartbands-Secret", min_length=1)
    secret_env: EnvNames = []
    api_url: str = "https://api.bigcommerce.com"
    api_rate_limit: RateLimit = RateLimit(per_second=4.0, burst=8)


class WooCommerceIngest(_Strict):
    """``sites``: hosts of ``X-WC-Webhook-Source``; ``checkout_meta_key``: the order meta entry
    in which the store's cart plugin records the checkout id its cart events used."""

    sites: Names = []
    secret_env: EnvNames = []
    checkout_meta_key: str = "_cartbands_checkout"


class GenericIngest(_Strict):
    """``POST /events``: a bearer token or an HMAC-SHA256 secret (either authenticates)."""

    token_env: EnvNames = []
    hmac_env: EnvNames = []


class TwilioIngest(_Strict):
    """The store's SMS numbers (``To`` of inbound messages) and the account auth token(s)."""

    numbers: Names = []
    auth_token_env: EnvNames = []


class IngestPolicy(_Strict):
    """How a store's events enter: platform identities, secret references, limits."""

    shopify: ShopifyIngest = ShopifyIngest()
    bigcommerce: BigCommerceIngest = BigCommerceIngest()
    woocommerce: WooCommerceIngest = WooCommerceIngest()
    generic: GenericIngest = GenericIngest()
    twilio: TwilioIngest = TwilioIngest()
    rate_limit: RateLimit = RateLimit()
