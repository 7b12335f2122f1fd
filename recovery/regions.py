"""Where a recipient is: their time zone and region, from phone number or address.

Order: the phone number's zone (``phonenumbers`` time-zone lookup, when it names exactly one),
else the shipping/billing address (country + province, through the store's
``region_timezones`` then the built-in table below), else every zone the phone's country
spans when there are a few (a touch must then fit the window in all of them), else the
store's zone. Lookups are cached: parsing a phone number is the slowest step of a decision.

Regions (for per-region send windows such as ``US-FL``) come from the address's province and,
for US and Canadian numbers, from the state or province the phone number's area code belongs
to (``phonenumbers`` geocoder): a Florida number is under Florida's rules even when the cart
carries no address, and an address elsewhere does not lift them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import geocoder
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

# Subdivision codes of the geocoder's English names (it also writes "San Francisco, CA").
_SUBDIVISION_NAMES: Mapping[str, Mapping[str, str]] = {
    "US": {
        "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA",
        "Colorado": "CO", "Connecticut": "CT", "Delaware": "DE", "Florida": "FL",
        "Georgia": "GA", "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL", "Indiana": "IN",
        "Iowa": "IA", "Kansas": "KS", "Kentucky": "KY", "Louisiana": "LA", "Maine": "ME",
        "Maryland": "MD", "Massachusetts": "MA", "Michigan": "MI", "Minnesota": "MN",
        "Mississippi": "MS", "Missouri": "MO", "Montana": "MT", "Nebraska": "NE",
        "Nevada": "NV", "New Hampshire": "NH", "New Jersey": "NJ", "New Mexico": "NM",
        "New York": "NY", "North Carolina": "NC", "North Dakota": "ND", "Ohio": "OH",
        "Oklahoma": "OK", "Oregon": "OR", "Pennsylvania": "PA", "Rhode Island": "RI",
        "South Carolina": "SC", "South Dakota": "SD", "Tennessee": "TN", "Texas": "TX",
        "Utah": "UT", "Vermont": "VT", "Virginia": "VA", "Washington": "WA",
        "West Virginia": "WV", "Wisconsin": "WI", "Wyoming": "WY", "Washington D.C.": "DC",
    },
    "CA": {
        "Alberta": "AB", "British Columbia": "BC", "Manitoba": "MB", "New Brunswick": "NB",
        "Newfoundland and Labrador": "NL", "Nova Scotia": "NS", "Ontario": "ON",
        "Prince Edward Island": "PE", "Quebec": "QC", "Saskatchewan": "SK",
    },
}  # fmt: skip

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
    """The recipient's zones (usually one) and region keys: subdivisions (address, then
    phone area code) before the country."""

    zones: tuple[ZoneInfo, ...]
    regions: tuple[str, ...]
    source: str

    @property
    def zone_names(self) -> str:
        return ",".join(z.key for z in self.zones)


@lru_cache(maxsize=65_536)
def _phone_facts(
    phone: str, region: str | None = None
) -> tuple[str | None, tuple[str, ...], str | None]:
    """(country, zones, subdivision) of a phone number, international or national in the
    address's ``region``; (None, (), None) when it does not parse. The subdivision (``FL``)
    is known for US and Canadian area codes."""
    try:
        parsed = phonenumbers.parse(phone, region)
    except phonenumbers.NumberParseException:
        return None, (), None
    country = phonenumbers.region_code_for_number(parsed)
    zones = tuple(
        z for z in phone_timezone.time_zones_for_number(parsed) if z and z != "Etc/Unknown"
    )
    return country, zones, _subdivision(country, parsed)


def _subdivision(country: str | None, parsed: phonenumbers.PhoneNumber) -> str | None:
    names = _SUBDIVISION_NAMES.get(country or "")
    if names is None:
        return None
    place = geocoder.description_for_number(parsed, "en")
    head, _, tail = place.rpartition(", ")
    if head and tail in names.values():
        return tail
    return names.get(place)


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
    country, phone_zones, phone_sub = (
        _phone_facts(phone, address_country) if phone else (None, (), None)
    )
    country = country or address_country
    regions: tuple[str, ...] = ()
    if country:
        subs = []
        if province and (address_country is None or address_country == country):
            subs.append(f"{country}-{province}")
        if phone_sub and f"{country}-{phone_sub}" not in subs:
            subs.append(f"{country}-{phone_sub}")
        regions = (*subs, country)
    if len(phone_zones) == 1:
        return Locale((zone(phone_zones[0]),), regions, f"phone {phone_zones[0]}")
    address = region_zone(address_country, province, dict(overrides))
    if address:
        return Locale((zone(address),), regions, f"address {address}")
    if 1 < len(phone_zones) <= _MAX_PHONE_ZONES:
        zones = tuple(zone(z) for z in phone_zones)
        return Locale(zones, regions, f"phone zones {','.join(phone_zones)}")
    return Locale((zone(store_zone),), regions, f"store {store_zone}")
