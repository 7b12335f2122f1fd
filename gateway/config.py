"""The gateway's view of the policy: who each request belongs to and which secrets it needs.

Built once at start from the validated :class:`recovery.policyset.PolicySet` and an environment
mapping (pure: the caller passes ``os.environ``). Only stores named under ``stores`` are
reachable; identities (shop domains, store hashes, sites, phone numbers) must be unique, and
every platform a store enables needs at least one of its secret variables set. All problems
are reported at once, naming the policy path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from recovery.ids import normalize_phone
from recovery.ingest_policy import IngestPolicy
from recovery.policyset import PolicySet


class ConfigError(ValueError):
    """The ingest configuration cannot be used; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid ingest configuration:\n" + "\n".join(f"  {p}" for p in problems))


@dataclass(frozen=True)
class StoreIngest:
    """One store's ingest settings with its secrets resolved from the environment."""

    store: str
    policy: IngestPolicy
    shopify_secrets: tuple[bytes, ...] = ()
    bigcommerce_secrets: tuple[bytes, ...] = ()
    bigcommerce_token: str | None = None
    woocommerce_secrets: tuple[bytes, ...] = ()
    generic_tokens: tuple[bytes, ...] = ()
    generic_hmac_secrets: tuple[bytes, ...] = ()
    twilio_tokens: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class GatewayConfig:
    stores: Mapping[str, StoreIngest] = field(default_factory=dict)
    shopify_domains: Mapping[str, str] = field(default_factory=dict)
    bigcommerce_hashes: Mapping[str, str] = field(default_factory=dict)
    woocommerce_sites: Mapping[str, str] = field(default_factory=dict)
    twilio_numbers: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def secret_headers(self) -> frozenset[str]:
        """Configured shared-secret header names, scrubbed from dead-letter records."""
        return frozenset(s.policy.bigcommerce.secret_header.lower() for s in self.stores.values())


def site_host(site: str) -> str:
    """``https://Shop.Example.com/`` and ``shop.example.com`` both name ``shop.example.com``."""
    text = site.strip()
    try:
        host = urlsplit(text if "://" in text else f"//{text}").hostname or ""
    except ValueError:  # e.g. "http://[x": an unclosed IPv6 literal names no site
        return ""
    return host.lower()


def _secrets(
    names: list[str], path: str, env: Mapping[str, str], problems: list[str], warnings: list[str]
) -> tuple[bytes, ...]:
    found = []
    for name in names:
        value = env.get(name)
        if value:
            found.append(value.encode("utf-8"))
        else:
            warnings.append(f"{path}: environment variable {name} is not set")
    if names and not found:
        problems.append(f"{path}: none of {', '.join(names)} is set in the environment")
    return tuple(found)


def build_config(policies: PolicySet, env: Mapping[str, str]) -> GatewayConfig:
    problems: list[str] = []
    warnings: list[str] = []
    stores: dict[str, StoreIngest] = {}
    maps: dict[str, dict[str, str]] = {"shopify": {}, "bigcommerce": {}, "woo": {}, "twilio": {}}

    def claim(kind: str, ident: str, store: str, path: str) -> None:
        owner = maps[kind].get(ident)
        if owner is not None and owner != store:
            problems.append(f"{path}: {ident!r} is already claimed by store {owner!r}")
        maps[kind][ident] = store

    for store, policy in sorted(policies.stores.items()):
        ingest = policy.ingest
        base = f"stores.{store}.ingest"

        def need(names: list[str], what: str, used: bool, base: str = base) -> tuple[bytes, ...]:
            path = f"{base}.{what}"
            if used and not names:
                problems.append(f"{path}: required to accept this platform's webhooks")
            return _secrets(names, path, env, problems, warnings)

        shop = ingest.shopify
        for domain in shop.domains:
            claim("shopify", domain.strip().lower(), store, f"{base}.shopify.domains")
        big = ingest.bigcommerce
        if big.store_hash:
            claim("bigcommerce", big.store_hash.strip().lower(), store, f"{base}.bigcommerce")
            if not big.access_token_env:
                problems.append(f"{base}.bigcommerce.access_token_env: required to fetch carts")
            elif not env.get(big.access_token_env):
                problems.append(
                    f"{base}.bigcommerce.access_token_env: {big.access_token_env} is not set"
                )
        woo = ingest.woocommerce
        for site in woo.sites:
            claim("woo", site_host(site), store, f"{base}.woocommerce.sites")
        tw = ingest.twilio
        for number in tw.numbers:
            claim("twilio", normalize_phone(number), store, f"{base}.twilio.numbers")
        stores[store] = StoreIngest(
            store=store,
            policy=ingest,
            shopify_secrets=need(shop.secret_env, "shopify.secret_env", bool(shop.domains)),
            bigcommerce_secrets=need(
                big.secret_env, "bigcommerce.secret_env", bool(big.store_hash)
            ),
            bigcommerce_token=env.get(big.access_token_env) if big.access_token_env else None,
            woocommerce_secrets=need(woo.secret_env, "woocommerce.secret_env", bool(woo.sites)),
            generic_tokens=need(ingest.generic.token_env, "generic.token_env", False),
            generic_hmac_secrets=need(ingest.generic.hmac_env, "generic.hmac_env", False),
            twilio_tokens=need(tw.auth_token_env, "twilio.auth_token_env", bool(tw.numbers)),
        )
    if problems:
        raise ConfigError(problems)
    return GatewayConfig(
        stores=stores,
        shopify_domains=maps["shopify"],
        bigcommerce_hashes=maps["bigcommerce"],
        woocommerce_sites=maps["woo"],
        twilio_numbers=maps["twilio"],
        warnings=tuple(warnings),
    )
