"""Canonical wire records of cartbands (Faust records) and their JSON Schema files.

Every topic carries JSON encoded with orjson (codec ``"orjson"``); money travels as a decimal
string plus an ISO-4217 currency and is Decimal in memory; times are ISO-8601 UTC. May import
faust, orjson and the standard library; never the agents, the gateway or the senders.
"""

from schemas.codec import register_codec

register_codec()
