"""Build the adapters and rate limiters each store's delivery policy asks for.

Built once at start for every store and channel the process serves, so a missing credential
variable stops the process with a clear message instead of dead-lettering touches later.
Stores whose adapter settings are equal share one adapter and one token bucket.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from recovery import delivery_policy as dp
from recovery.policyset import PolicySet
from senders.adapters.base import Adapter, ConfigError
from senders.adapters.brevo_events import BrevoEventsAdapter
from senders.adapters.http import (
    BrevoAdapter,
    GorgiasAdapter,
    MetaAudienceAdapter,
    SlackAdapter,
    TwilioAdapter,
)
from senders.adapters.klaviyo import KlaviyoEventsAdapter
from senders.adapters.outbox import OutboxAdapter
from senders.adapters.smtp import SmtpAdapter
from senders.ratelimit import Limiter
from senders.templates import TemplateSource


@dataclass
class Route:
    """How one store's touches on one channel go out."""

    adapter: Adapter
    limiter: Limiter | None
    delivery: dp.DeliveryPolicy
    templates: TemplateSource
    events: bool = False
    """The adapter takes the touch's facts (a flow event), not a rendered message."""


def build_adapter(
    config: dp.AnyAdapter,
    channel: str,
    delivery: dp.DeliveryPolicy,
    outbox_dir: Path,
    environ: Mapping[str, str] | None = None,
) -> Adapter:
    if isinstance(config, dp.OutboxAdapter):
        return OutboxAdapter(outbox_dir, channel)
    if isinstance(config, dp.SmtpAdapter):
        return SmtpAdapter(config, environ)
    if isinstance(config, dp.BrevoAdapter):
        return BrevoAdapter(config, environ)
    if isinstance(config, dp.TwilioAdapter):
        return TwilioAdapter(config, environ)
    if isinstance(config, dp.MetaAudienceAdapter):
        return MetaAudienceAdapter(config, environ)
    if isinstance(config, dp.GorgiasAdapter):
        return GorgiasAdapter(config, delivery.sender.from_email, environ)
    if isinstance(config, dp.SlackAdapter):
        return SlackAdapter(config, environ)
    if isinstance(config, dp.KlaviyoEventsAdapter):
        return KlaviyoEventsAdapter(config, environ)
    if isinstance(config, dp.BrevoEventsAdapter):
        return BrevoEventsAdapter(config, environ)
    raise ConfigError(f"no adapter for {config!r}")


class Routes:
    def __init__(
        self,
        policies: PolicySet,
        channels: Iterable[str],
        outbox_dir: Path,
        environ: Mapping[str, str] | None = None,
        outbox_only: bool = False,
    ) -> None:
        self.policies = policies
        self._routes: dict[tuple[str | None, str], Route] = {}
        adapters: dict[str, Adapter] = {}
        limiters: dict[str, Limiter] = {}
        problems: list[str] = []
        stores: list[str | None] = [None, *sorted(policies.stores)]
        for store in stores:
            policy = policies.defaults if store is None else policies.stores[store]
            delivery = policy.delivery
            for channel in channels:
                config = dp.OutboxAdapter() if outbox_only else delivery.adapter_for(channel)
                key = f"{channel}:{config.model_dump_json()}"
                try:
                    if key not in adapters:
                        adapters[key] = build_adapter(
                            config, channel, delivery, outbox_dir, environ
                        )
                except ConfigError as exc:
                    where = "defaults" if store is None else f"stores.{store}"
                    problems.append(f"{where}.delivery.{channel} ({config.adapter}): {exc}")
                    continue
                limit = delivery.rate_limits.get(config.adapter)
                if limit is not None and key not in limiters:
                    limiters[key] = Limiter(limit.rate, limit.burst)
                self._routes[(store, channel)] = Route(
                    adapter=adapters[key],
                    limiter=limiters.get(key),
                    delivery=delivery,
                    templates=TemplateSource(delivery.templates_dir),
                    events=isinstance(config, dp.FLOW_EVENT_ADAPTERS),
                )
        if problems:
            raise ConfigError("cannot build the senders:\n  " + "\n  ".join(problems))
        self.adapters = list(adapters.values())

    def route(self, store: str, channel: str) -> Route:
        key = (store if store in self.policies.stores else None, channel)
        return self._routes[key]

    async def close(self) -> None:
        for adapter in self.adapters:
            await adapter.close()
