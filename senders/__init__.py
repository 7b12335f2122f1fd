"""Sender services: deliver touch commands through provider adapters, once per touch id.

Holds the pure parts (message composition and templates, MIME building, Meta identifier
hashing, HTTP outcome classification, retry schedule, token bucket, lateness check) and the
shell around them (provider adapters, the Kafka de-duplication log, per-channel consumers, the
``cartbands sender`` command).

May import: aiokafka, aiohttp, smtplib/email/aiosmtplib, orjson, prometheus-client, click,
``schemas``, ``recovery``, ``bus.topics``, ``telemetry`` and ``cartbands`` shell helpers.
Never the agents.
"""
