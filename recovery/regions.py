"""Where a recipient is: their time zone and region, from phone number or address.

Order: the phone number's zone (``phonenumbers`` time-zone lookup, when it names exactly one),
else the shipping/billing address (country + province, through the store's
``region_timezones`` then the built-in table below), else every zone the phone's country
spans when there are a few (a touch must then fit the window in all of them), else the
store's zone. Lookups are cached: parsing a phone number is the slowest step of a decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import timezone as phone_timezone

from recovery.model import ContactInfo

# Main zone of each subdivision of multi-zone countries (a state split between zones gets the
# zone most of its people live in).
SUBDIVISION_ZONES: Mapping[str, str] = {
    **{
        f"US-{code}": zone
        for zone, codes in {
            "America/New_York": "CT DC DE FL GA IN KY MA MD ME MI NC NH NJ NY OH PA RI SC VA VT WV",
            "America/Chicago": "AL AR IA IL KS LA MN MO MS ND NE OK SD TN TX WI",
            "America/Denver": "CO MT NM UT WY",
            "America/Boise": "ID",
            "America/Phoenix": "AZ",
            "America/Los_Angeles": "CA NV OR WA",
            "America/Anchorage": "AK",
            "Pacific/Honolulu": "HI",
            "America/Puerto_Rico": "PR VI",
            "Pacific/Guam": "GU",
        }.items()
        for code in codes.split()
    },
    **{
        f"CA-{code}": zone
        for zone, codes in {
            "America/Toronto": "ON QC",
            "America/Halifax": "NS PE NB",
            "America/St_Johns": "NL",
            "America/Winnipeg": "MB",
            "America/Regina": "SK",
            "America/Edmonton": "AB NT",
            "America/Vancouver": "BC",
            "America/Whitehorse": "YT",
            "America/Iqaluit": "NU",
        }.items()
        for code in codes.split()
    },
    **{
        f"AU-{code}": zone
        for zone, codes in {
            "Australia/Sydney": "NSW ACT",
            "Australia/Melbourne": "VIC",
            "Australia/Brisbane": "QLD",
            "Australia/Adelaide": "SA",
            "Australia/Perth": "WA",
            "Australia/Hobart": "TAS",
            "Australia/Darwin": "NT",
        }.items()
        for code in codes.split()
    },
}

# Countries with one zone (or one that nearly everyone lives in).
COUNTRY_ZONES: Mapping[str, str] = {
    "GB": "Europe/London", "IE": "Europe/Dublin", "FR": "Europe/Paris", "DE": "Europe/Berlin",
    "NL": "Europe/Amsterdam", "BE": "Europe/Brussels", "LU": "Europe/Luxembourg",
    "CH": "Europe/Zurich", "AT": "Europe/Vienna", "IT": "Europe/Rome", "ES": "Europe/Madrid",
    "PT": "Europe/Lisbon", "DK": "Europe/Copenhagen", "SE": "Europe/Stockholm",
    "NO": "Europe/Oslo", "FI": "Europe/Helsinki", "PL": "Europe/Warsaw", "CZ": "Europe/Prague",
    "SK": "Europe/Bratislava", "HU": "Europe/Budapest", "RO": "Europe/Bucharest",
    "BG": "Europe/Sofia", "GR": "Europe/Athens", "HR": "Europe/Zagreb", "SI": "Europe/Ljubljana",
    "EE": "Europe/Tallinn", "LV": "Europe/Riga", "LT": "Europe/Vilnius", "UA": "Europe/Kyiv",
    "TR": "Europe/Istanbul", "IL": "Asia/Jerusalem", "AE": "Asia/Dubai", "SA": "Asia/Riyadh",
    "IN": "Asia/Kolkata", "JP": "Asia/Tokyo", "KR": "Asia/Seoul", "CN": "Asia/Shanghai",
    "HK": "Asia/Hong_Kong", "TW": "Asia/Taipei", "SG": "Asia/Singapore",
    "MY": "Asia/Kuala_Lumpur", "TH": "Asia/Bangkok", "VN": "Asia/Ho_Chi_Minh",
    "PH": "Asia/Manila", "NZ": "Pacific/Auckland", "ZA": "Africa/Johannesburg",
    "NG": "Africa/Lagos", "KE": "Africa/Nairobi", "EG": "Africa/Cairo",
    "AR": "America/Argentina/Buenos_Aires", "CO": "America/Bogota", "PE": "America/Lima",
    "CL": "America/Santiago",
    "PR": "America/Puerto_Rico", "IS": "Atlantic/Reykjavik",
}  # fmt: skip

# More zones than this from a phone number is a country too wide to guess at.
_MAX_PHONE_ZONES = 6


@dataclass(frozen=True, slots=True)
class Locale:
    """The recipient's zones (usually one) and region keys, most specific first."""

    zones: tuple[ZoneInfo, ...]
    regions: tuple[str, ...]
    source: str

    @property
    def zone_names(self) -> str:
        return ",".join(z.key for z in self.zones)


@lru_cache(maxsize=65_536)
def _phone_facts(phone: str) -> tuple[str | None, tuple[str, ...]]:
    """(country, zones) of an E.164-ish phone number; (None, ()) when it does not parse."""
    try:
        parsed = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return None, ()
    country = phonenumbers.region_code_for_number(parsed)
    zones = tuple(
        z for z in phone_timezone.time_zones_for_number(parsed) if z and z != "Etc/Unknown"
    )
    return country, zones


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def region_zone(
    country: str | None, province: str | None, overrides: Mapping[str, str]
) -> str | None:
    """The zone of an address region: store overrides first, then the built-in tables."""
    if not country:
        return None
    country = country.upper()
    if province:
        key = f"{country}-{province.upper()}"
        found = overrides.get(key) or SUBDIVISION_ZONES.get(key)
        if found:
            return found
    return overrides.get(country) or COUNTRY_ZONES.get(country)


def locate(
    contact: ContactInfo, store_zone: str, overrides: Mapping[str, str], *, phone: str | None
) -> Locale:
    """Where ``contact`` is, for the channel that reaches them at ``phone`` (or by address)."""
    return locate_cached(
        phone,
        contact.country_code.upper() if contact.country_code else None,
        contact.province_code.upper() if contact.province_code else None,
        store_zone,
        tuple(sorted(overrides.items())),
    )


@lru_cache(maxsize=65_536)
def locate_cached(
    phone: str | None,
    address_country: str | None,
    province: str | None,
    store_zone: str,
    overrides: tuple[tuple[str, str], ...],
) -> Locale:
    """:func:`locate` on hashable parts (upper-cased codes, overrides as sorted pairs)."""
    country, phone_zones = _phone_facts(phone) if phone else (None, ())
    country = country or address_country
    regions: tuple[str, ...] = ()
    if country:
        same_country = address_country is None or address_country == country
        regions = (f"{country}-{province}", country) if province and same_country else (country,)
    if len(phone_zones) == 1:
        return Locale((zone(phone_zones[0]),), regions, f"phone {phone_zones[0]}")
    address = region_zone(address_country, province, dict(overrides))
    if address:
        return Locale((zone(address),), regions, f"address {address}")
    if 1 < len(phone_zones) <= _MAX_PHONE_ZONES:
        zones = tuple(zone(z) for z in phone_zones)
        return Locale(zones, regions, f"phone zones {','.join(phone_zones)}")
    return Locale((zone(store_zone),), regions, f"store {store_zone}")
