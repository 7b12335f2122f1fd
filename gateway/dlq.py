"""The ``ingest-dlq`` record of a rejected request: reason, status, scrubbed headers, body.

Pure. Headers that carry credentials (signatures, tokens, cookies, the configured shared-secret
headers) are dropped; the body is kept as text when it is UTF-8, else base64, truncated to the
size limit so one record never exceeds what the gateway accepts.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from gateway.emit import Emit

_SECRET_WORDS = ("signature", "hmac", "secret", "token", "authorization", "cookie", "auth", "key")


def is_secret_header(name: str, extra: Iterable[str] = ()) -> bool:
    lowered = name.lower()
    if lowered in {e.lower() for e in extra}:
        return True
    return any(word in lowered for word in _SECRET_WORDS)


def text_of(value: str) -> str:
    """``value`` as valid UTF-8 text: aiohttp keeps a header's non-UTF-8 bytes as surrogates,
    which no JSON encoder writes; each such byte becomes U+FFFD."""
    if value.isascii():
        return value
    try:
        raw = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that stands for no byte
        raw = value.encode("utf-8", "surrogatepass")
    return raw.decode("utf-8", "replace")


def scrub_headers(headers: Mapping[str, str], extra: Iterable[str] = ()) -> dict[str, str]:
    extra = tuple(extra)
    return {text_of(k): text_of(v) for k, v in headers.items() if not is_secret_header(k, extra)}


def encode_body(body: bytes, limit: int, truncated: bool = False) -> dict[str, Any]:
    """``truncated``: the body was cut before it got here (e.g. reading stopped at the cap)."""
    truncated = truncated or len(body) > limit
    kept = body[:limit]
    try:
        text = kept.decode("utf-8")
        return {"body": text, "body_encoding": "utf-8", "truncated": truncated}
    except UnicodeDecodeError:
        encoded = base64.b64encode(kept).decode("ascii")
        return {"body": encoded, "body_encoding": "base64", "truncated": truncated}


def rejection(
    *,
    route: str,
    status: int,
    reason: str,
    detail: str,
    headers: Mapping[str, str],
    body: bytes,
    limit: int,
    received_at: datetime,
    store: str | None = None,
    secret_headers: Iterable[str] = (),
    truncated: bool = False,
) -> Emit:
    value: dict[str, Any] = {
        "type": "ingest_rejected",
        "reason": reason,
        "status": status,
        "detail": detail,
        "route": route,
        "store": store,
        "received_at": received_at,
        "headers": scrub_headers(headers, secret_headers),
        **encode_body(body, limit, truncated),
    }
    return Emit("ingest_dlq", store or route, value)
