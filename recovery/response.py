"""How simulated shoppers answer the touches the core emits (``cartbands simulate``).

A model, not a measurement: every default is documented in ``policies/response.yaml`` with its
source (seed 000's worked example and benchmarks) or marked as an assumption. Pure and
deterministic: each draw is a function of (seed, checkout, what is drawn), through a
``random.Random`` seeded with that text, so the same seed gives the same numbers, and two
policies run on the same traffic meet the same shoppers (a shopper who would answer the first
email of one policy answers the first email of the other: common random numbers, so the
comparison shows the policies' difference rather than the dice's).

The model, per abandoned cart:

- **would have bought anyway** (``baseline``, the holdout's rate): with that probability the
  shopper orders on their own, an exponentially distributed time after abandonment (mean
  ``organic_delay``, at most ``max_organic_delay``), whatever the policy does;
- **each delivered touch** brings the order with probability ``touch[channel]`` x
  ``band_factor[value band]`` x ``segment_factor[segment]`` x the incentive's uplift
  (``1 + uplift_per_percent x percent`` for a percentage, ``uplift_free_shipping``,
  ``uplift_service`` for a service perk, ``uplift_per_fixed`` per unit of a fixed amount
  off), then after an exponential delay (mean ``touch_delay``); the order comes at the
  earliest of the times drawn;
- **a code**: a shopper who orders while holding an unexpired code of this cart's touches
  redeems the one worth most with probability ``redeem``.

The value band is the model's own (``bands``, by cart value), not the policy's, so a flat and
a tiered policy meet the same shoppers.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from recovery.bands import band_index

HOUR = 3600.0


def _probability(value: float) -> float:
    if not 0 <= value <= 1:
        raise ValueError(f"a probability is between 0 and 1, not {value}")
    return value


class ResponseModel(BaseModel):
    """The response model's parameters (see the module docstring and policies/response.yaml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    baseline: float = 0.03
    organic_delay_hours: float = Field(default=30.0, gt=0)
    max_organic_delay_hours: float = Field(default=144.0, gt=0)
    touch: dict[str, float] = Field(
        default_factory=lambda: {"email": 0.015, "sms": 0.04, "ads": 0.01, "human": 0.10}
    )
    bands: dict[str, Decimal] = Field(
        default_factory=lambda: {
            "low": Decimal(0),
            "mid": Decimal(50),
            "high": Decimal(200),
            "vip": Decimal(600),
        }
    )
    band_factor: dict[str, float] = Field(
        default_factory=lambda: {"low": 1.0, "mid": 1.0, "high": 0.9, "vip": 0.8}
    )
    segment_factor: dict[str, float] = Field(
        default_factory=lambda: {
            "new": 1.0,
            "returning": 1.3,
            "repeat_vip": 1.5,
            "price_sensitive": 0.8,
            "hesitant": 0.7,
        }
    )
    uplift_per_percent: float = Field(default=0.04, ge=0)
    uplift_per_fixed: float = Field(default=0.004, ge=0)
    uplift_free_shipping: float = Field(default=0.3, ge=0)
    uplift_service: float = Field(default=0.5, ge=0)
    touch_delay_hours: float = Field(default=3.0, gt=0)
    redeem: float = 0.9

    @field_validator("baseline", "redeem")
    @classmethod
    def _share(cls, value: float) -> float:
        return _probability(value)

    @field_validator("touch")
    @classmethod
    def _touches(cls, value: dict[str, float]) -> dict[str, float]:
        for channel, p in value.items():
            if channel not in ("email", "sms", "ads", "human"):
                raise ValueError(f"unknown channel {channel!r} (email, sms, ads, human)")
            _probability(p)
        return value

    @field_validator("bands")
    @classmethod
    def _ordered(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        mins = list(value.values())
        if not mins or mins[0] != 0 or mins != sorted(set(mins)):
            raise ValueError("bands: increasing minimums, the first at 0")
        return value

    @field_validator("band_factor", "segment_factor")
    @classmethod
    def _factors(cls, value: dict[str, float]) -> dict[str, float]:
        for name, factor in value.items():
            if factor < 0:
                raise ValueError(f"{name}: a factor is not negative, not {factor}")
        return value

    def band_of(self, value: Decimal) -> str:
        """The model's value band of a cart worth ``value``."""
        names = list(self.bands)
        return names[band_index(list(self.bands.values()), value)]

    def uplift(self, incentive: Mapping[str, Any] | None) -> float:
        """The factor an incentive (a touch command's ``incentive``) puts on a touch."""
        if not incentive:
            return 1.0
        kind = incentive.get("kind")
        value = float(incentive.get("value") or 0)
        if kind == "percent_off":
            return 1.0 + self.uplift_per_percent * value
        if kind == "fixed_off":
            return 1.0 + self.uplift_per_fixed * value
        if kind == "free_shipping":
            return 1.0 + self.uplift_free_shipping
        if kind == "service":
            return 1.0 + self.uplift_service
        return 1.0

    def touch_probability(self, touch: Mapping[str, Any], value: Decimal) -> float:
        """The chance that this delivered touch command brings the order."""
        p = self.touch.get(str(touch.get("channel")), 0.0)
        p *= self.band_factor.get(self.band_of(value), 1.0)
        p *= self.segment_factor.get(str(touch.get("segment")), 1.0)
        return min(1.0, p * self.uplift(touch.get("incentive")))


def _rng(seed: int, checkout: str, what: str) -> random.Random:
    # a text seed is hashed with SHA-512 by random.Random: stable across runs and processes
    return random.Random(f"{seed}:{checkout}:{what}")


def _delay(rng: random.Random, mean_hours: float) -> float:
    return -math.log(1.0 - rng.random()) * mean_hours * HOUR


def organic_order(
    model: ResponseModel, seed: int, checkout: str, abandoned_at: float
) -> float | None:
    """When the shopper orders without any touch, or None (they would not)."""
    rng = _rng(seed, checkout, "organic")
    if rng.random() >= model.baseline:
        return None
    delay = min(_delay(rng, model.organic_delay_hours), model.max_organic_delay_hours * HOUR)
    return abandoned_at + delay


def touch_order(
    model: ResponseModel,
    seed: int,
    checkout: str,
    touch: Mapping[str, Any],
    value: Decimal,
    sent_at: float,
) -> float | None:
    """When this delivered touch brings the order, or None. Drawn per (cart, step), so the
    same step of two policies meets the same shopper."""
    rng = _rng(seed, checkout, f"touch:{touch.get('step')}")
    if rng.random() >= model.touch_probability(touch, value):
        return None
    return sent_at + _delay(rng, model.touch_delay_hours)


def redeems(model: ResponseModel, seed: int, checkout: str) -> bool:
    """Does the shopper who orders holding a valid code of ours type it in?"""
    return _rng(seed, checkout, "redeem").random() < model.redeem


def parse_response(data: object) -> ResponseModel:
    """The model from a mapping (a file's ``response:`` section or the whole file)."""
    if isinstance(data, Mapping) and "response" in data:
        data = data["response"]
    return ResponseModel.model_validate(data or {})
