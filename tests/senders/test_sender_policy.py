"""The delivery part of the policy: validation, shipped templates, the CLI's start checks."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from config.policyfile import DEFAULT_POLICY, load_policy
from recovery.policyset import PolicyError, parse_policy
from senders.templates import TemplateSource

PARTS = {"email": ("subject.txt", "txt", "html"), "sms": ("txt",), "human": ("subject.txt", "txt")}


def policy_with(delivery: dict, store: dict | None = None) -> dict:
    data = yaml.safe_load(DEFAULT_POLICY.read_text())
    data["defaults"]["delivery"] = delivery
    if store is not None:
        data["stores"] = {"acme": {"delivery": store}}
    return data


def test_defaults_are_outbox_with_six_hours():
    delivery = load_policy(None).defaults.delivery
    assert {delivery.adapter_for(c).adapter for c in ("email", "sms", "ads", "human")} == {"outbox"}
    assert delivery.max_lateness == timedelta(hours=6)


def test_store_override_and_errors_name_the_path():
    ok = parse_policy(
        policy_with(
            {"rate_limits": {"twilio": {"rate": 1, "burst": 5}}},
            store={"sms": {"adapter": "twilio", "messaging_service_sid": "MG1"},
                   "retry": {"max_attempts": 3}},
        )
    )  # fmt: skip
    acme = ok.for_store("acme").delivery
    assert acme.sms.adapter == "twilio" and acme.retry.max_attempts == 3
    assert acme.rate_limits["twilio"].burst == 5  # merged from the defaults
    with pytest.raises(PolicyError) as bad:
        parse_policy(policy_with({}, store={"email": {"adapter": "smtp", "host": "mx"}}))
    assert "stores.acme.delivery" in str(bad.value) and "postal_address" in str(bad.value)
    with pytest.raises(PolicyError, match=r"delivery\.sms"):
        parse_policy(policy_with({"sms": {"adapter": "gorgias", "domain": "x"}}))
    with pytest.raises(PolicyError, match="not an environment variable name"):
        parse_policy(policy_with({"email": {"adapter": "brevo", "api_key_env": "xkeysib-1 2"}}))
    with pytest.raises(PolicyError, match="exactly one of from_number"):
        parse_policy(policy_with({"sms": {"adapter": "twilio"}}))


def test_every_shipped_template_of_the_default_policy_exists():
    policy = load_policy(None).defaults
    source = TemplateSource()
    names: set[tuple[str, str]] = set()
    swaps = [policy.segments.rule(s).templates for s in ("repeat_vip", "hesitant", "returning")]
    for band in policy.bands:
        for touch in band.sequence:
            names.add((touch.channel, touch.template))
            names.update(
                (touch.channel, swap.get(touch.template, touch.template)) for swap in swaps
            )
    missing = [
        f"{channel}/{name}.{part}"
        for channel, name in sorted(names)
        if channel != "ads"
        for part in PARTS[channel]
        if not source.has(f"{channel}/{name}.{part}")
    ]
    assert not missing


def test_sender_refuses_to_start_without_credentials(tmp_path: Path):
    policy = tmp_path / "p.yaml"
    policy.write_text(yaml.safe_dump(policy_with({"ads": {"adapter": "meta_audience",
                                                           "audience_id": "1"}})))  # fmt: skip
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "cartbands", "sender", "--channel", "ads", "--policy", str(policy),
         "--broker", "kafka://127.0.0.1:9"],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "defaults.delivery.ads (meta_audience)" in result.stderr
    assert "META_ACCESS_TOKEN is not set" in result.stderr
    assert "Traceback" not in result.stderr


async def test_rate_limits_of_the_policy_pace_each_provider_account(tmp_path: Path):
    """``rate_limits`` (keyed by adapter) become one token bucket per provider account: stores
    whose adapter settings are equal share it; the outbox is not limited."""
    from senders.registry import Routes

    twilio = {"adapter": "twilio", "from_number": "+15005550006"}
    data = policy_with({"sms": twilio, "rate_limits": {"twilio": {"rate": 20, "burst": 2}}})
    other_number = {**twilio, "from_number": "+15005550007"}
    data["stores"] = {
        "acme": {"delivery": {"retry": {"max_attempts": 2}}},
        "globex": {"delivery": {"sms": other_number}},
    }
    env = {"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t"}
    routes = Routes(parse_policy(data), ("sms", "email"), tmp_path, env)
    try:
        shared = routes.route("acme", "sms").limiter
        assert shared is not None and shared is routes.route("unlisted", "sms").limiter
        assert routes.route("globex", "sms").limiter is not shared, "another sender number"
        assert routes.route("acme", "email").limiter is None  # the outbox
        waits = [await shared.acquire() for _ in range(3)]
        assert waits[:2] == [0.0, 0.0], "the burst goes at once"
        assert waits[2] > 0.0, "then 20 per second: the third waits for its token"
    finally:
        await routes.close()
