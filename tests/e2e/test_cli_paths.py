"""The seeds' paths as a user sees them: ``cartbands policy explain`` on the shipped policy.

Seed 000's $310 cart and seed 003's four segment paths, each asserted step by step (time,
channel, template, incentive) from the command's output.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

AT = "2026-06-10T15:00:00Z"  # Wednesday 11:00 in New York: every touch inside its window
STEP = re.compile(r"^  (\d)\. (\w+)\s+(\w+)\s+due (.+)$")


def explain(*args: str) -> str:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cartbands",
            "policy",
            "explain",
            "--at",
            AT,
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


def steps(out: str) -> list[dict[str, str]]:
    """Each touch of the output: step, channel, template, due, incentive and decision."""
    found: list[dict[str, str]] = []
    for line in out.splitlines():
        match = STEP.match(line)
        if match:
            _step, channel, template, due = match.groups()
            found.append({"channel": channel, "template": template, "due": due.strip()})
        elif found and line.strip().startswith("incentive withheld: "):
            found[-1]["withheld"] = line.strip()
        elif found and line.strip().startswith("incentive "):
            found[-1]["incentive"] = line.strip()
        elif found and line.strip().startswith("-> "):
            found[-1]["decision"] = line.strip()
    return found


def test_the_310_cart_follows_seed_000():
    out = explain("--total", "310")
    assert "band: high (310 USD >= 200)" in out and "segment: new" in out
    path = steps(out)
    assert [(s["channel"], s["template"], s["due"]) for s in path] == [
        ("email", "reminder", "Wed 2026-06-10 12:00 EDT"),  # 1 h
        ("ads", "retarget", "Wed 2026-06-10 12:00 EDT"),  # the audience from the first hour
        ("sms", "reminder_sms", "Thu 2026-06-11 11:00 EDT"),  # 24 h
        ("email", "offer", "Fri 2026-06-12 11:00 EDT"),  # 48 h: the code
        ("human", "merchandising_review", "Fri 2026-06-12 11:00 EDT"),  # 48 h: a person
    ]
    assert all(s["decision"].startswith("-> send at " + s["due"]) for s in path)
    offers = [s for s in path if "incentive" in s]
    assert [s["template"] for s in offers] == ["offer"]
    assert offers[0]["incentive"] == "incentive percent_off 12 (cost 37.20, valid 2d)"
    assert "example code" in offers[0]["decision"]
    assert "expires Sun 2026-06-14 11:00 EDT" in offers[0]["decision"]  # time-boxed
    assert out.count("example code") == 1
    assert "for the person following up: high cart 310 USD" in out


@pytest.mark.parametrize(
    ("args", "segment_line", "templates"),
    [
        (
            ["--orders", "3"],
            "segment: repeat_vip (3 orders >= 3)",
            ["gentle_reminder", "retarget", "reminder_sms", "gentle_reminder"],
        ),
        (
            ["--abandonments", "2"],
            "segment: hesitant (3 abandoned carts without an order in the last 30d >= 3)",
            ["social_proof", "retarget", "social_proof", "social_proof"],
        ),
        (
            ["--orders", "1"],
            "segment: returning (1 orders)",
            ["reminder", "retarget", "reminder_sms", "last_call"],
        ),
    ],
)
def test_seed_003_segments_without_a_discount(args, segment_line, templates):
    out = explain("--total", "310", *args)
    assert segment_line in out
    path = steps(out)
    assert [s["template"] for s in path] == [*templates, "merchandising_review"]
    assert not any("incentive" in s for s in path) and "example code" not in out
    segment = segment_line.split()[1]
    assert [s.get("withheld") for s in path if "withheld" in s] == [
        f"incentive withheld: segment: {segment} gets no price incentive (12% off)"
    ]


@pytest.mark.parametrize(
    ("args", "signal"),
    [
        (["--shipping", "12"], "abandoned after a shipping charge of 12 USD was shown"),
        (["--peak-total", "420"], "the cart shrank from 420 to 310, at least 0.2 below its peak"),
        (["--orders", "2", "--discount-orders", "1"], "1 of 2 past orders used a discount code"),
    ],
)
def test_seed_003_a_price_sensitive_shopper_gets_the_modest_code(args, signal):
    out = explain("--total", "310", *args)
    assert f"segment: price_sensitive ({signal})" in out
    path = steps(out)
    assert [s["template"] for s in path] == [
        "reminder", "retarget", "reminder_sms", "offer", "merchandising_review",
    ]  # fmt: skip
    [offer] = [s for s in path if "incentive" in s]
    assert offer["incentive"].startswith("incentive percent_off 12 ")
    assert offer["due"] == "Fri 2026-06-12 11:00 EDT"


def test_mid_cart_two_touches_and_the_10_percent_on_touch_two():
    path = steps(explain("--total", "120", "--shipping", "6.95"))
    assert [(s["channel"], s["template"]) for s in path] == [
        ("email", "reminder"),
        ("sms", "offer_sms"),
    ]
    assert path[1]["incentive"].startswith("incentive percent_off 10 ")
    assert path[1]["due"] == "Thu 2026-06-11 11:00 EDT"


def test_low_cart_one_email_no_incentive():
    out = explain("--total", "42", "--shipping", "5")
    path = steps(out)
    assert [(s["channel"], s["template"]) for s in path] == [("email", "reminder")]
    assert "incentive" not in path[0] and "example code" not in out


def test_the_history_options_and_segment_are_exclusive():
    result = subprocess.run(
        [sys.executable, "-m", "cartbands", "policy", "explain",
         "--total", "310", "--segment", "new", "--orders", "2"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode != 0 and "either --segment or the shopper's history" in result.stderr


def test_more_coded_orders_than_orders_is_refused():
    result = subprocess.run(
        [sys.executable, "-m", "cartbands", "policy", "explain",
         "--total", "310", "--orders", "1", "--discount-orders", "2"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode != 0 and "--discount-orders cannot exceed --orders" in result.stderr


@pytest.mark.parametrize("args", [[], ["--shipping", "12"], ["--orders", "1"]])
def test_vip_cart_gets_service_not_price(args):
    out = explain("--total", "912", *args)
    path = steps(out)
    assert [(s["channel"], s["template"]) for s in path] == [
        ("email", "concierge"), ("human", "human_concierge"), ("sms", "reminder_sms"),
        ("ads", "retarget"), ("email", "last_call"),
    ]  # fmt: skip
    assert [s.get("incentive", "").split(" (")[0] for s in path if "incentive" in s] == [
        "incentive free_expedited_shipping"
    ]
    # the service is honoured with a free-shipping code (the one code); no price off
    assert out.count("example code") == 1 and "percent_off" not in out and "% off" not in out
