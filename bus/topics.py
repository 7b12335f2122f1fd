"""Topic names of the pipeline (see ../shared/DESIGN.md), under an optional prefix.

A prefix (``CARTBANDS_TOPIC_PREFIX``) lets several pipelines share one cluster: tests use it
to keep their topics apart on one broker.
"""

from __future__ import annotations

from dataclasses import dataclass

CHANNELS = ("email", "sms", "ads", "human")
# the stages a worker can run: stage A (cart-events to shopper-events), stage B (shopper-events
# to the touch topics), or both
STAGES = ("both", "a", "b")


def group_of(app_id: str, stage: str) -> str:
    """The consumer group (and table prefix) of a worker running ``stage`` (``both``, ``a`` or
    ``b``): the workers of one stage alone form a group of their own, with their own tables,
    never mixed with the workers of the other stage or of both (a group's members read the
    same topics)."""
    return app_id if stage == "both" else f"{app_id}-{stage}"


@dataclass(frozen=True)
class TopicNames:
    prefix: str = ""

    def _named(self, base: str) -> str:
        return f"{self.prefix}{base}"

    @property
    def cart_events(self) -> str:
        """Canonical cart and order events, key ``store:checkout``."""
        return self._named("cart-events")

    @property
    def shopper_events(self) -> str:
        """Abandoned/converted carts, orders, consents and redactions, key ``store:shopper``."""
        return self._named("shopper-events")

    @property
    def ingest_dlq(self) -> str:
        return self._named("ingest-dlq")

    @property
    def cart_events_dlq(self) -> str:
        return self._named("cart-events.dlq")

    @property
    def touch_results(self) -> str:
        return self._named("touch-results")

    @property
    def touches_dlq(self) -> str:
        return self._named("touches.dlq")

    @property
    def sender_dedup(self) -> str:
        """The senders' per-touch delivery record (intent, then outcome), key touch id."""
        return self._named("sender-dedup")

    @property
    def recoveries(self) -> str:
        return self._named("recoveries")

    def touches(self, channel: str) -> str:
        return self._named(f"touches.{channel}")

    @property
    def touch_topics(self) -> tuple[str, ...]:
        return tuple(self.touches(c) for c in CHANNELS)

    @property
    def pipeline_topics(self) -> tuple[str, ...]:
        """Every topic the stream workers read or write (created up front by the shell)."""
        return (
            self.cart_events,
            self.shopper_events,
            self.cart_events_dlq,
            self.recoveries,
            *self.touch_topics,
        )
