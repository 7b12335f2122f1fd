"""Where a store's discount codes are created (``delivery.codes`` in the policy).

Pure data and validation. Credentials are never in the file: each platform names the
*environment variables* that hold them, read by the sender at start (a missing one stops it).

```yaml
delivery:
  codes: {platform: shopify, shop: acme.myshopify.com, api_version: "2026-10",
          access_token_env: SHOPIFY_ADMIN_TOKEN}
  # codes: {platform: bigcommerce, store_hash: abc123, access_token_env: BIGCOMMERCE_TOKEN}
  # codes: {platform: woocommerce, base_url: "https://shop.example.com",
  #         consumer_key_env: WC_CONSUMER_KEY, consumer_secret_env: WC_CONSUMER_SECRET}
```

``platform: none`` (the default) creates nothing: the code is only printed in the message,
as on the embedded demo.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from recovery.durations import parse_duration

# Not imported from recovery.delivery_policy: that module embeds this one (delivery.codes).
Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
MinSubtotal = Literal["band", "none"]
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _variable(value: str) -> str:
    if not _VARIABLE.match(value):
        raise ValueError(
            f"{value!r} is not an environment variable name; put the credential in the "
            "environment and name the variable here"
        )
    return value


EnvName = Annotated[str, BeforeValidator(_variable)]


class _Codes(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_subtotal: MinSubtotal = "band"
    """``band``: the code needs a subtotal of at least the band's lower bound; ``none``."""
    restrict_to_shopper: bool = True
    timeout: Duration = timedelta(seconds=30)


class NoCodes(_Codes):
    """Create nothing in the store; the message still prints the code."""

    platform: Literal["none"] = "none"


class ShopifyCodes(_Codes):
    """Shopify GraphQL Admin API (``write_discounts`` scope)."""

    platform: Literal["shopify"]
    shop: str
    """The shop's ``*.myshopify.com`` domain."""
    api_version: str = "2026-10"
    access_token_env: EnvName = "SHOPIFY_ADMIN_TOKEN"
    base_url: str | None = None
    """Overrides ``https://{shop}`` (a test server)."""

    @field_validator("api_version")
    @classmethod
    def _version(cls, value: str) -> str:
        if value != "unstable" and not (
            len(value) == 7 and value[4] == "-" and value[:4].isdigit() and value[5:].isdigit()
        ):
            raise ValueError(f"{value!r} is not a Shopify API version (YYYY-MM)")
        return value

    @property
    def url(self) -> str:
        return (self.base_url or f"https://{self.shop}").rstrip("/")


class BigCommerceCodes(_Codes):
    """BigCommerce Promotions API (v3), one coupon promotion per code."""

    platform: Literal["bigcommerce"]
    store_hash: str
    access_token_env: EnvName = "BIGCOMMERCE_ACCESS_TOKEN"
    channel_ids: list[int] = Field(default_factory=list)
    """Channels the promotion applies to; empty: every channel."""
    base_url: str = "https://api.bigcommerce.com"

    @property
    def url(self) -> str:
        return f"{self.base_url.rstrip('/')}/stores/{self.store_hash}/v3"


class WooCommerceCodes(_Codes):
    """WooCommerce REST API ``wc/v3`` (basic auth with a consumer key and secret: HTTPS only)."""

    platform: Literal["woocommerce"]
    base_url: str
    consumer_key_env: EnvName = "WC_CONSUMER_KEY"
    consumer_secret_env: EnvName = "WC_CONSUMER_SECRET"

    @field_validator("base_url")
    @classmethod
    def _https(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in LOOPBACK):
            raise ValueError(
                "WooCommerce takes basic auth only over HTTPS: base_url must be https:// "
                "(http:// only for a server on this machine)"
            )
        return value.rstrip("/")


CodesConfig = Annotated[
    NoCodes | ShopifyCodes | BigCommerceCodes | WooCommerceCodes,
    Field(discriminator="platform"),
]
