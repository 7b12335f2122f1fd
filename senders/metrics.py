"""Provider-level metrics of the senders (served on ``--metrics-port``).

Outcomes per channel and DLQ records are the shared ``telemetry.metrics`` counters
(``cartbands_deliveries``, ``cartbands_dlq_records``); these add the provider's view.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

ATTEMPTS = Counter(
    "cartbands_sender_attempts_total",
    "Delivery attempts, by channel, provider and result (ok, transient, permanent).",
    ["channel", "provider", "result"],
)
MALFORMED = Counter(
    "cartbands_sender_malformed_total",
    "Records on a touch topic that are not touch commands (sent to the DLQ).",
    ["channel"],
)
LATENCY = Histogram(
    "cartbands_sender_delivery_seconds",
    "Time from the first attempt to the outcome, retries and waits included.",
    ["channel", "provider"],
)
RATE_WAIT = Counter(
    "cartbands_sender_rate_limit_wait_seconds_total",
    "Seconds spent waiting for a rate-limit token, by provider.",
    ["provider"],
)
