"""Meta custom audience identifiers: normalize, then SHA-256; plain PII never leaves here.

Meta matches hashed identifiers: emails trimmed and lower-cased, phones as E.164 digits
(country code, no ``+``, no leading zeros or punctuation), each SHA-256 hex-encoded. A
multi-key row leaves a missing identifier as an empty string.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import phonenumbers

SCHEMA: tuple[str, str] = ("EMAIL", "PHONE")


def normalize_email(email: str) -> str | None:
    text = email.strip().lower()
    return text if "@" in text and not text.startswith("@") and not text.endswith("@") else None


def normalize_phone(phone: str, default_region: str | None = None) -> str | None:
    """E.164 digits without ``+`` (``"+1 (212) 555-0100"`` -> ``"12125550100"``), or None.

    A number without a country code is only understood with ``default_region`` (``"US"``).
    """
    try:
        parsed = phonenumbers.parse(phone.strip(), default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164).lstrip("+")


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class AudienceRow:
    """One shopper as Meta takes them: hashes in ``SCHEMA`` order ("" when unknown)."""

    email_sha256: str
    phone_sha256: str

    @property
    def row(self) -> list[str]:
        return [self.email_sha256, self.phone_sha256]


def audience_row(
    email: str | None, phone: str | None, default_region: str | None = None
) -> AudienceRow | None:
    """The hashed row for a shopper, or None when neither identifier is usable."""
    norm_email = normalize_email(email) if email else None
    norm_phone = normalize_phone(phone, default_region) if phone else None
    if norm_email is None and norm_phone is None:
        return None
    return AudienceRow(
        email_sha256=sha256_hex(norm_email) if norm_email else "",
        phone_sha256=sha256_hex(norm_phone) if norm_phone else "",
    )


def audience_payload(row: AudienceRow) -> dict[str, object]:
    """The ``payload`` parameter of ``/{audience_id}/users`` for one shopper."""
    return {"schema": list(SCHEMA), "data": [row.row]}
