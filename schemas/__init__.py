"""Canonical wire records of cartbands (Faust records) and their JSON Schema files.

Every topic carries JSON encoded with orjson (codec ``"orjson"``); money travels as a decimal
string plus an ISO-4217 currency and is Decimal in memory; times are ISO-8601 UTC. May import
faust, msgspec, orjson and the standard library; never the agents, the gateway or the senders.

Importing the package imports nothing else, so a process without Faust can use its Faust-free
modules (:mod:`schemas.json_codec`, :mod:`schemas.batches`, and :mod:`schemas.cart_events`,
the typed cart events the pure core reads). The ``orjson`` codec is registered
with Faust where it is named: by :mod:`schemas.records` and by the app of :mod:`streams.app`.
"""
