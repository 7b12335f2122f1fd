"""``policy check``'s findings: negative costs, every problem in one pass, typo hints."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from config.policyfile import DEFAULT_POLICY
from recovery.policy import StorePolicy
from recovery.policyset import PolicyError, did_you_mean, locate, parse_policy


def base() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(DEFAULT_POLICY.read_text())
    return data


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(PolicyError) as info:
        parse_policy(data, "p.yaml")
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize(
    ("edit", "path"),
    [
        (lambda d: d["margin"].update(shipping_cost="-10"), "defaults.margin.shipping_cost"),
        (
            lambda d: d["margin"]["service_costs"].update(free_expedited_shipping=-25),
            "defaults.margin.service_costs.free_expedited_shipping",
        ),
        (lambda d: d["delivery"]["costs"].update(sms="-0.0083"), "defaults.delivery.costs.sms"),
        (
            lambda d: d["segments"]["repeat_vip"].update(min_lifetime_value=-1),
            "defaults.segments.repeat_vip.min_lifetime_value",
        ),
        (
            lambda d: d["segments"]["new"].update(max_percent_off="-5"),
            "defaults.segments.new.max_percent_off",
        ),
    ],
)
def test_a_negative_cost_is_refused_at_its_path(edit, path):
    data = base()
    edit(data["defaults"])
    found = problems(data)
    assert any(p.startswith(f"{path}: must not be negative") for p in found), found


def test_zero_costs_are_fine():
    data = base()
    data["defaults"]["margin"].update(shipping_cost=0, service_costs={"concierge": "0"})
    data["defaults"]["delivery"]["costs"] = {"email": 0, "sms": "0.00"}
    policy = parse_policy(data).defaults
    assert policy.margin.shipping_cost == 0 and policy.delivery.costs["sms"] == 0


def test_band_order_is_reported_beside_a_bad_band():
    data = base()
    bands = data["defaults"]["bands"]
    bands[1]["sequence"][1]["incentive"]["value"] = 150  # an item error...
    bands[3]["min"] = 100  # ...used to hide this list-wide one
    found = problems(data)
    assert (
        "defaults.bands[1].sequence[1].incentive.value: percent_off value must be at most 100"
        in found
    ), found
    assert "defaults.bands: band 'vip' starts at 100, not above 'high' (200)" in found, found


def test_first_band_checks_run_when_a_later_band_is_broken():
    data = base()
    bands = data["defaults"]["bands"]
    bands[0]["min"] = 5
    bands[0]["sequence"][0]["incentive"] = {"kind": "free_shipping"}
    bands[2]["holdout"] = "lots"
    found = problems(data)
    assert any(p.startswith("defaults.bands[2].holdout:") for p in found), found
    assert any(p.startswith("defaults.bands:") and "start at 0" in p for p in found), found
    assert any("never carries an incentive" in p for p in found), found


def test_touch_order_is_reported_beside_a_bad_touch():
    data = base()
    sequence = data["defaults"]["bands"][2]["sequence"]
    sequence[0]["channel"] = "fax"
    sequence[1]["offset"] = "30m"  # before touch 0's 1h
    found = problems(data)
    assert any(p.startswith("defaults.bands[2].sequence[0].channel:") for p in found), found
    assert (
        "defaults.bands[2].sequence[1].offset: touches must be in increasing offset order: "
        "30m comes after 1h" in found
    ), found


def test_incentive_problems_name_their_own_key_together():
    data = base()
    data["defaults"]["bands"][3]["sequence"][0]["incentive"] = {
        "kind": "service",
        "validity": "forever",
    }
    found = problems(data)
    prefix = "defaults.bands[3].sequence[0].incentive"
    assert any(p.startswith(f"{prefix}.service: a service incentive names") for p in found)
    assert any(p.startswith(f"{prefix}.validity:") for p in found), found


def test_can_spam_is_reported_beside_another_delivery_problem():
    data = base()
    data["defaults"]["delivery"].update(
        email={"adapter": "brevo"}, max_lateness="whenever", costs={"email": "-1"}
    )
    found = problems(data)
    assert any(p.startswith("defaults.delivery.max_lateness:") for p in found), found
    assert any(p.startswith("defaults.delivery.costs.email: must not be") for p in found)
    assert any(p.startswith("defaults.delivery.sender:") and "CAN-SPAM" in p for p in found)


def test_every_store_is_checked_and_an_inherited_problem_is_said_once():
    data = base()
    data["defaults"]["margin"]["shipping_cost"] = "-1"
    data["stores"] = {
        "a": {"margin": {"gross_margin": "2"}},
        "b": {"caps": {"window": "often"}},
        "c": {"margin": {"shipping_cost": "-2"}},
    }
    found = problems(data)
    assert [p for p in found if "shipping_cost" in p] == [
        "defaults.margin.shipping_cost: must not be negative, not -1",
        "stores.c.margin.shipping_cost: must not be negative, not -2",
    ], found
    assert any(p.startswith("stores.a.margin.gross_margin:") for p in found), found
    assert any(p.startswith("stores.b.caps.window:") for p in found), found


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda d: d["defaults"].update(abandonmnet_window="2h"),
            "defaults.abandonmnet_window: unknown key; did you mean 'abandonment_window'?",
        ),
        (
            lambda d: d["defaults"]["segments"]["hesitant"].update(min_abandonment=2),
            "defaults.segments.hesitant.min_abandonment: unknown key; "
            "did you mean 'min_abandonments'?",
        ),
        (
            lambda d: d["defaults"]["delivery"].update(
                email={"adapter": "smtp", "host": "smtp.test", "prot": 25}
            ),
            "defaults.delivery.email.prot: unknown key; did you mean 'port'?",
        ),
        (
            lambda d: d["defaults"]["bands"][1]["sequence"][0].update(templat="offer"),
            "defaults.bands[1].sequence[0].templat: unknown key; did you mean 'template'?",
        ),
        (
            lambda d: d.update(store={"acme": {}}),
            "store: unknown top-level key; did you mean 'stores'?",
        ),
        (
            lambda d: d["stores"]["acme-eu"].update(timezon="Europe/Paris"),
            "stores.acme-eu.timezon: unknown key; did you mean 'timezone'?",
        ),
    ],
)
def test_an_unknown_key_gets_the_nearest_allowed_one(edit, expected):
    data = base()
    edit(data)
    found = problems(data)
    assert expected in found, found


def test_an_unknown_key_far_from_any_lists_what_is_allowed():
    data = base()
    data["defaults"]["caps"]["zzz"] = 1
    found = problems(data)
    listed = [p for p in found if p.startswith("defaults.caps.zzz: unknown key; known: ")]
    assert listed and "max_touches" in listed[0] and "on_new_cart" in listed[0], found


def test_locate_drops_the_tag_pydantic_adds_and_knows_the_allowed_keys():
    loc, allowed = locate(StorePolicy, ("delivery", "email", "smtp", "hostt"))
    assert loc == ("delivery", "email", "hostt")
    assert allowed is not None and "host" in allowed and "security" in allowed
    loc, allowed = locate(StorePolicy, ("bands", 2, "sequence", 0, "incentive", "valu"))
    assert loc == ("bands", 2, "sequence", 0, "incentive", "valu")
    assert allowed == ["kind", "value", "service", "validity"]
    loc, allowed = locate(StorePolicy, ("regions", "US-FL", "windows", "sms", "start"))
    assert loc == ("regions", "US-FL", "windows", "sms", "start")
    assert allowed is not None and "sundays" in allowed


def test_did_you_mean():
    assert did_you_mean("retension", ["retention", "currency"]) == "; did you mean 'retention'?"
    assert did_you_mean("xyz", ["b", "a"]) == "; known: a, b"
    assert did_you_mean("xyz", []) == ""
