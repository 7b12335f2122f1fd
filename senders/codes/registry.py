"""Build each store's code provisioner from its policy (``delivery.codes``).

Built once at start, like the delivery adapters (:mod:`senders.registry`): a missing credential
variable stops the sender with a clear message instead of dead-lettering touches later. Stores
with equal settings share one provisioner.
"""

from __future__ import annotations

from collections.abc import Mapping

from recovery import codes_policy as cp
from recovery.policyset import PolicySet
from senders.adapters.base import ConfigError
from senders.codes.base import Provisioner
from senders.codes.bigcommerce import BigCommerceProvisioner
from senders.codes.shopify import ShopifyProvisioner
from senders.codes.woocommerce import WooCommerceProvisioner


def build_provisioner(
    config: cp.NoCodes | cp.ShopifyCodes | cp.BigCommerceCodes | cp.WooCommerceCodes,
    environ: Mapping[str, str] | None = None,
) -> Provisioner | None:
    """The provisioner ``config`` asks for; None for ``platform: none``."""
    if isinstance(config, cp.ShopifyCodes):
        return ShopifyProvisioner(config, environ)
    if isinstance(config, cp.BigCommerceCodes):
        return BigCommerceProvisioner(config, environ)
    if isinstance(config, cp.WooCommerceCodes):
        return WooCommerceProvisioner(config, environ)
    return None


class CodeRoutes:
    def __init__(
        self,
        policies: PolicySet,
        environ: Mapping[str, str] | None = None,
        disabled: bool = False,
    ) -> None:
        """``disabled`` (``--outbox-only``): no store gets codes, whatever its policy says."""
        self.policies = policies
        self._by_store: dict[str | None, Provisioner | None] = {}
        built: dict[str, Provisioner | None] = {}
        problems: list[str] = []
        for store in [None, *sorted(policies.stores)]:
            policy = policies.defaults if store is None else policies.stores[store]
            config = cp.NoCodes() if disabled else policy.delivery.codes
            key = config.model_dump_json()
            try:
                if key not in built:
                    built[key] = build_provisioner(config, environ)
            except ConfigError as exc:
                where = "defaults" if store is None else f"stores.{store}"
                problems.append(f"{where}.delivery.codes ({config.platform}): {exc}")
                continue
            self._by_store[store] = built[key]
        if problems:
            raise ConfigError(
                "cannot build the discount-code provisioners:\n  " + "\n  ".join(problems)
            )
        self.provisioners = [p for p in built.values() if p is not None]

    def for_store(self, store: str) -> Provisioner | None:
        """The store's provisioner; None when its codes are only printed."""
        return self._by_store[store if store in self.policies.stores else None]

    async def close(self) -> None:
        for provisioner in self.provisioners:
            await provisioner.close()
