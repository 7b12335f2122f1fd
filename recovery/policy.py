"""The policy model: what a store wants done with its abandoned carts.

A policy file has ``defaults`` and per-store overrides under ``stores``; each store's effective
policy is the defaults deep-merged with its override (lists replace, mappings merge) and then
validated as a :class:`StorePolicy`. Reading the file is the shell's job
(:mod:`config.policyfile`); this module only describes and validates data.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from recovery.delivery_policy import DeliveryPolicy, not_negative
from recovery.durations import format_duration, parse_duration
from recovery.ingest_policy import IngestPolicy
from recovery.money import MoneyError, check_currency, parse_amount
from recovery.social_proof import MAX_WINDOW_DAYS

Channel = Literal["email", "sms", "ads", "human"]
CHANNELS: tuple[Channel, ...] = ("email", "sms", "ads", "human")


def _duration(value: object) -> timedelta:
    return parse_duration(value)


def _amount(value: object) -> Decimal:
    if isinstance(value, float):
        # YAML turns 49.99 into a float; go through its shortest repr, never binary expansion.
        value = repr(value)
    try:
        return parse_amount(value)
    except MoneyError as exc:
        raise ValueError(str(exc)) from exc


def _currency(value: object) -> str:
    try:
        return check_currency(value)
    except MoneyError as exc:
        raise ValueError(str(exc)) from exc


def _share(value: object) -> Decimal:
    amount = _amount(value)
    if not 0 <= amount <= 1:
        raise ValueError(f"a share is between 0 and 1 (e.g. 0.05 for 5%), not {amount}")
    return amount


def _clock(value: object) -> int:
    """``'08:00'`` -> minutes since midnight; ``'24:00'`` is the end of the day."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 1440:
        # YAML 1.1 reads an unquoted 08:00 as the sexagesimal integer 480: minutes, as wanted.
        return value
    match = _CLOCK.match(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"time of day must look like '08:00' or '21:30', not {value!r}")
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        raise ValueError(f"not a time of day: {value!r}")
    return hours * 60 + minutes


def format_clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


_CLOCK = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*$")
_REGION = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")

Duration = Annotated[timedelta, BeforeValidator(_duration)]
Amount = Annotated[Decimal, BeforeValidator(_amount)]
# a cost or a threshold of money: zero is fine, below zero is a typo that would pay the shopper
Cost = Annotated[Decimal, BeforeValidator(_amount), AfterValidator(not_negative)]
Currency = Annotated[str, BeforeValidator(_currency)]
Share = Annotated[Decimal, BeforeValidator(_share)]
Clock = Annotated[int, BeforeValidator(_clock)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Incentive(Strict):
    """An incentive a touch may carry; ``service`` perks cost no price."""

    kind: Literal["percent_off", "fixed_off", "free_shipping", "service"]
    # checked field by field (not after the whole model) so a bad validity beside a bad value
    # reports both, each at its own path
    value: Amount | None = Field(default=None, validate_default=True)
    service: str | None = Field(default=None, validate_default=True)
    validity: Duration = timedelta(hours=48)

    @field_validator("value")
    @classmethod
    def _check_value(cls, value: Decimal | None, info: ValidationInfo) -> Decimal | None:
        kind = info.data.get("kind")
        if kind in ("percent_off", "fixed_off"):
            if value is None or value <= 0:
                raise ValueError(f"{kind} needs a positive value")
            if kind == "percent_off" and value > 100:
                raise ValueError("percent_off value must be at most 100")
        return value

    @field_validator("service")
    @classmethod
    def _check_service(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("kind") == "service" and not value:
            raise ValueError("a service incentive names its service (e.g. free_expedited_shipping)")
        return value


class TouchSpec(Strict):
    """One touch of a sequence: when (offset from abandonment), how, and with what."""

    offset: Duration
    channel: Channel
    template: str = "reminder"
    incentive: Incentive | None = None


class Band(Strict):
    """A value band: carts with ``min <= value < next band's min``.

    ``holdout`` is the share of this band's carts kept as a control group (no touches, tracked).
    ``allow_incentive`` lifts the first band's rule (it never carries an incentive) for this
    band: a flat baseline (one band, a coupon on every touch) says so explicitly; it changes
    nothing for the other bands, which may always carry one.
    """

    name: str = Field(min_length=1)
    min: Amount
    sequence: list[TouchSpec] = Field(default_factory=list)
    holdout: Share = Decimal("0.05")
    allow_incentive: bool = False

    @field_validator("min")
    @classmethod
    def _non_negative(cls, value: Decimal) -> Decimal:
        if value < 0:
            raise ValueError("band minimum must not be negative")
        return value

    @field_validator("sequence", mode="wrap")
    @classmethod
    def _ordered(cls, value: object, handler: ValidatorFunctionWrapHandler) -> list[TouchSpec]:
        checked: list[TouchSpec] = _checked(value, handler, _sequence_problems)
        return checked


_T = TypeVar("_T")
Found = tuple[tuple[int | str, ...], str]
"""A problem a list-wide check found: where (relative to the list) and what."""


def _checked(
    value: object, handler: ValidatorFunctionWrapHandler, check: Callable[[object], list[Found]]
) -> Any:
    """Validate ``value`` and run the list-wide ``check`` on it even when an item fails.

    Pydantic skips a field's after-validator once an item failed; a user fixing a file wants
    every problem in one pass, so the check reads the raw items leniently and its findings are
    reported beside the items' own errors.
    """
    found = check(value)
    try:
        result = handler(value)
    except ValidationError as exc:
        if not found:
            raise
        carried = [
            InitErrorDetails(
                type=PydanticCustomError(err["type"], err["msg"]),
                loc=err["loc"],
                input=err["input"],
            )
            for err in exc.errors()
        ]
        raise _with_found(exc.title, carried, found, value) from None
    if found:
        raise _with_found("list", [], found, value)
    return result


def _with_found(
    title: str, carried: list[InitErrorDetails], found: list[Found], value: object
) -> ValidationError:
    extra = [
        InitErrorDetails(type=PydanticCustomError("value_error", message), loc=loc, input=value)
        for loc, message in found
    ]
    return ValidationError.from_exception_data(title, [*carried, *extra])


def _raw_field(item: object, key: str) -> object:
    if isinstance(item, BaseModel):
        return getattr(item, key, None)
    return item.get(key) if isinstance(item, Mapping) else None


def _raw_items(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else []


def _lenient(parse: Callable[[object], _T], value: object) -> _T | None:
    try:
        return parse(value)
    except (ValueError, TypeError, ArithmeticError):
        return None


def _sequence_problems(value: object) -> list[Found]:
    latest: timedelta | None = None
    for step, touch in enumerate(_raw_items(value)):
        offset = _lenient(_duration, _raw_field(touch, "offset"))
        if offset is None:
            continue
        if latest is not None and offset < latest:
            return [
                (
                    (step, "offset"),
                    "touches must be in increasing offset order: "
                    f"{format_duration(offset)} comes after {format_duration(latest)}",
                )
            ]
        latest = offset
    return []


def _band_problems(value: object) -> list[Found]:
    if not isinstance(value, list | tuple):
        return []
    if not value:
        return [((), "at least one band is required")]
    found: list[Found] = []
    mins = [_lenient(_amount, _raw_field(band, "min")) for band in value]
    names = [_raw_field(band, "name") for band in value]
    if mins[0] is not None and mins[0] != 0:
        found.append(((), "the first band must start at 0 so every cart has a band"))
    texts = [name for name in names if isinstance(name, str)]
    if len(set(texts)) != len(texts):
        found.append(((), f"band names must be unique: {texts}"))
    known = [(name, low) for name, low in zip(names, mins, strict=True) if low is not None]
    for (prev_name, prev_min), (name, low) in itertools.pairwise(known):
        if low <= prev_min:
            found.append(
                ((), f"band {name!r} starts at {low}, not above {prev_name!r} ({prev_min})")
            )
    low_incentive_allowed = _raw_field(value[0], "allow_incentive") is True
    for step, touch in enumerate(_raw_items(_raw_field(value[0], "sequence"))):
        if _raw_field(touch, "incentive") is not None and not low_incentive_allowed:
            found.append(
                (
                    (),
                    f"the first band ({names[0]!r}) never carries an incentive: "
                    f"remove bands[0].sequence[{step}].incentive (or set "
                    "bands[0].allow_incentive: true for a flat baseline)",
                )
            )
    return found


def _check_zone(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


def _check_region(value: str) -> str:
    if not _REGION.match(value):
        raise ValueError(
            f"region must be a country ('US') or country-subdivision ('US-FL'): {value!r}"
        )
    return value


class Window(Strict):
    """Allowed local send times ``[start, end)`` for a channel; optionally never on Sundays."""

    start: Clock
    end: Clock
    sundays: bool = True

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.start >= self.end:
            raise ValueError(
                f"start {format_clock(self.start)} must be before end {format_clock(self.end)}"
            )
        return self

    def __str__(self) -> str:
        text = f"{format_clock(self.start)}-{format_clock(self.end)}"
        return text if self.sundays else text + " except Sundays"


class RegionRules(Strict):
    """Per-region (``US-FL``) overrides of the send windows; ``null`` lifts a channel's window."""

    windows: dict[Channel, Window | None] = Field(default_factory=dict)


def _default_windows() -> dict[Channel, Window | None]:
    # US TCPA: telephone solicitation only 08:00-21:00 in the recipient's local time.
    return {"sms": Window(start=8 * 60, end=21 * 60)}


def _default_regions() -> dict[str, RegionRules]:
    # Florida's telephone solicitation act: 08:00-20:00 local.
    return {"US-FL": RegionRules(windows={"sms": Window(start=8 * 60, end=20 * 60)})}


class SegmentRule(Strict):
    """How a segment refines its band's sequence.

    ``discount: false`` withholds price incentives (percent/fixed off, free shipping; service
    perks stay); ``max_percent_off`` caps a percentage; ``templates`` swaps template ids;
    ``skip_channels`` drops touches on those channels.
    """

    discount: bool = True
    max_percent_off: Cost | None = None
    templates: dict[str, str] = Field(default_factory=dict)
    skip_channels: list[Channel] = Field(default_factory=list)


class RepeatVipRule(SegmentRule):
    """A repeat, high-value customer: ``orders_count >= min_orders`` or LTV >= the minimum."""

    discount: bool = False
    min_orders: int = Field(default=3, ge=1)
    min_lifetime_value: Cost = Decimal("1000")


class HesitantRule(SegmentRule):
    """Abandoned ``min_abandonments`` carts (this one included) ``within`` without ordering.

    Social proof, not price (seed 003): no price incentive unless the store says otherwise."""

    discount: bool = False
    min_abandonments: int = Field(default=3, ge=1)
    within: Duration = timedelta(days=30)


class PriceSensitiveRule(SegmentRule):
    """A shopper whose own behaviour shows the price holds them back (any signal suffices):

    - orders: at least ``min_discount_orders`` of their orders used a discount code, and at
      least ``min_discount_share`` of all their orders did (``min_discount_orders: 0``
      disables it);
    - shipping: this cart was abandoned after a shipping charge above 0 was shown
      (``shipping_shown``);
    - shrink: this cart's goods value fell at least ``min_shrink_share`` below the highest
      it had (items removed or swapped for cheaper ones; ``null`` disables it).

    They get the band's incentive, capped at ``max_percent_off`` (a modest discount)."""

    max_percent_off: Amount | None = Decimal("12")
    min_discount_orders: int = Field(default=1, ge=0)
    min_discount_share: Share = Decimal("0.5")
    shipping_shown: bool = True
    min_shrink_share: Share | None = Decimal("0.2")

    @field_validator("min_shrink_share")
    @classmethod
    def _some_shrink(cls, value: Decimal | None) -> Decimal | None:
        if value is not None and value <= 0:
            raise ValueError("a shrink share is above 0 (e.g. 0.2), or null to ignore shrinking")
        return value


class ReturningRule(SegmentRule):
    """Has ordered before (``orders_count >= min_orders``): they buy without a discount."""

    discount: bool = False
    min_orders: int = Field(default=1, ge=1)


class Segments(Strict):
    """Segment rules, tried in order: repeat_vip, hesitant, price_sensitive, returning, else
    new."""

    repeat_vip: RepeatVipRule = Field(default_factory=RepeatVipRule)
    hesitant: HesitantRule = Field(default_factory=HesitantRule)
    price_sensitive: PriceSensitiveRule = Field(default_factory=PriceSensitiveRule)
    returning: ReturningRule = Field(default_factory=ReturningRule)
    new: SegmentRule = Field(default_factory=SegmentRule)

    def rule(self, name: str) -> SegmentRule:
        rule: SegmentRule = getattr(self, name)
        return rule


SEGMENTS: tuple[str, ...] = ("repeat_vip", "hesitant", "price_sensitive", "returning", "new")


class Margin(Strict):
    """The margin guard: no incentive may cost more than ``max_discount_share_of_margin``
    of the cart's margin (from line-item costs when every item has one, else
    ``gross_margin`` x the cart value)."""

    gross_margin: Share = Decimal("0.40")
    max_discount_share_of_margin: Share = Decimal("0.5")
    shipping_cost: Cost = Decimal("10")
    service_costs: dict[str, Cost] = Field(default_factory=dict)


class Consent(Strict):
    """``transactional_email`` lets cart reminders go by email without marketing consent;
    ``ads_need_marketing_consent`` keeps shoppers without email consent out of ad audiences."""

    transactional_email: bool = False
    ads_need_marketing_consent: bool = True


def _default_counted() -> list[Channel]:
    return ["email", "sms"]


def _default_gaps() -> dict[Channel, timedelta]:
    # Vendor practice (not law): one email per 16 h and one SMS per 24 h per person.
    return {"email": timedelta(hours=16), "sms": timedelta(hours=24)}


class Caps(Strict):
    """Frequency caps across all carts of one shopper."""

    max_touches: int = Field(default=3, ge=1)
    window: Duration = timedelta(hours=24)
    counted_channels: list[Channel] = Field(default_factory=_default_counted)
    min_gap: dict[Channel, Duration] = Field(default_factory=_default_gaps)
    max_delay: Duration = timedelta(days=3)
    on_new_cart: Literal["keep_higher_value", "newest"] = "keep_higher_value"


class SocialProof(Strict):
    """When a message may say how often a cart's product was ordered (``recovery.social_proof``):
    orders of the store in the last ``window`` (whole days), shown from ``min_orders`` on."""

    window: Duration = timedelta(days=7)
    min_orders: int = Field(default=10, ge=1)

    @field_validator("window")
    @classmethod
    def _whole_days(cls, value: timedelta) -> timedelta:
        if value % timedelta(days=1) or not 1 <= value.days <= MAX_WINDOW_DAYS:
            raise ValueError(f"must be whole days, from 1d to {MAX_WINDOW_DAYS}d")
        return value


class StorePolicy(Strict):
    """The effective policy of one store."""

    currency: Currency = "USD"
    timezone: str = "America/New_York"
    amount_basis: Literal["total", "subtotal"] = "total"
    abandonment_window: Duration = timedelta(hours=1)
    retention: Duration = timedelta(days=30)
    # an order this long after a plan ended is still credited to that recovery
    attribution_window: Duration = timedelta(days=7)
    bands: list[Band]
    fx_rates: dict[Currency, Amount] = Field(default_factory=dict)
    segments: Segments = Field(default_factory=Segments)
    margin: Margin = Field(default_factory=Margin)
    consent: Consent = Field(default_factory=Consent)
    caps: Caps = Field(default_factory=Caps)
    send_windows: dict[Channel, Window | None] = Field(default_factory=_default_windows)
    regions: dict[str, RegionRules] = Field(default_factory=_default_regions)
    region_timezones: dict[str, str] = Field(default_factory=dict)
    ingest: IngestPolicy = IngestPolicy()
    delivery: DeliveryPolicy = DeliveryPolicy()
    social_proof: SocialProof = SocialProof()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return _check_zone(value)

    @field_validator("fx_rates")
    @classmethod
    def _positive_rates(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        for code, rate in value.items():
            if rate <= 0:
                raise ValueError(f"rate for {code} must be positive, not {rate}")
        return value

    @field_validator("regions")
    @classmethod
    def _region_keys(cls, value: dict[str, RegionRules]) -> dict[str, RegionRules]:
        for key in value:
            _check_region(key)
        return value

    @field_validator("region_timezones")
    @classmethod
    def _region_zones(cls, value: dict[str, str]) -> dict[str, str]:
        for key, zone in value.items():
            _check_region(key)
            _check_zone(zone)
        return value

    @field_validator("bands", mode="wrap")
    @classmethod
    def _bands_partition(cls, value: object, handler: ValidatorFunctionWrapHandler) -> list[Band]:
        checked: list[Band] = _checked(value, handler, _band_problems)
        return checked

    @property
    def band_names(self) -> frozenset[str]:
        return frozenset(band.name for band in self.bands)

    def warnings(self) -> list[str]:
        """What is valid but worth a second look (``policy check`` prints it, exit 0)."""
        first = self.bands[0]
        if first.allow_incentive and any(t.incentive for t in first.sequence):
            return [
                f"bands[0] ({first.name!r}) carries an incentive (allow_incentive: true): "
                "every cart of the lowest band may get a discount; fine for a flat baseline"
            ]
        return []

    def band_named(self, name: str) -> Band:
        for band in self.bands:
            if band.name == name:
                return band
        raise KeyError(name)
