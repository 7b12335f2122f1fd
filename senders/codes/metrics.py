"""Metrics of the discount codes the senders create and delete in stores."""

from __future__ import annotations

from prometheus_client import Counter

CODES = Counter(
    "cartbands_sender_codes_total",
    "Discount codes by platform and result: created, found (made by an earlier attempt), "
    "refused (dead-lettered), failed (retries ran out), removed, not_removed.",
    ["platform", "result"],
)
