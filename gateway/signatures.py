"""Signature checks of each platform, pure and constant-time.

Shopify and WooCommerce sign the raw body: base64(HMAC-SHA256(body, secret)). Twilio signs
the full URL followed by every POST parameter (sorted by name, name then value, no
separators): base64(HMAC-SHA1(data, auth token)). Several secrets are tried so that a secret
can be rotated without refusing deliveries signed with the old one.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Iterable, Sequence


def hmac_sha256_b64(body: bytes, secret: bytes) -> str:
    return base64.b64encode(hmac.digest(secret, body, "sha256")).decode("ascii")


def verify_body_hmac(body: bytes, header: str | None, secrets: Sequence[bytes]) -> bool:
    """True when ``header`` is the base64 HMAC-SHA256 of ``body`` under one of ``secrets``."""
    if not header or not secrets:
        return False
    try:
        given = base64.b64decode(header.strip(), validate=True)
    except (ValueError, TypeError):
        return False
    matched = False
    for secret in secrets:
        expected = hmac.digest(secret, body, "sha256")
        # Try every secret (no early exit) so timing does not tell which one matched.
        matched |= hmac.compare_digest(expected, given)
    return matched


def verify_token(given: str | None, tokens: Sequence[bytes]) -> bool:
    """Constant-time comparison of a bearer token or shared secret against the accepted ones."""
    if not given or not tokens:
        return False
    raw = given.encode("utf-8", "surrogateescape")
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(raw, token)
    return matched


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def twilio_signature(url: str, params: Iterable[tuple[str, str]], auth_token: bytes) -> str:
    """Twilio's request signature of ``url`` and the form ``params``."""
    data = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.digest(auth_token, data.encode("utf-8"), "sha1")
    return base64.b64encode(digest).decode("ascii")


def verify_twilio(
    url: str, params: Sequence[tuple[str, str]], header: str | None, tokens: Sequence[bytes]
) -> bool:
    if not header or not tokens:
        return False
    given = header.strip().encode("ascii", "replace")
    matched = False
    for token in tokens:
        expected = twilio_signature(url, params, token).encode("ascii")
        matched |= hmac.compare_digest(expected, given)
    return matched
