"""``cartbands policy explain`` prints the plan with its reasons."""

from __future__ import annotations

from click.testing import CliRunner

from cartbands.cli import cli

AT = "2026-03-07T15:00:00Z"  # the day before the US spring-forward change


def explain(*args: str) -> str:
    result = CliRunner().invoke(cli, ["policy", "explain", "--at", AT, *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_explain_high_band_new_shopper():
    out = explain("--total", "310", "--segment", "new")
    assert "band: high" in out and "segment: new" in out
    assert "incentive: 12% off" in out and "example code" in out
    assert "human" in out and "for the person following up" in out


def test_explain_without_sms_consent_skips_sms():
    out = explain("--total", "100", "--no-sms-consent")
    assert "-> skip at Sun 2026-03-08 11:00 EDT (no_consent: sms" in out


def test_explain_repeat_vip_withholds_the_discount():
    out = explain("--total", "100", "--segment", "repeat_vip")
    assert "segment: repeat_vip" in out and "gentle_reminder" in out
    assert "withheld segment: repeat_vip gets no price incentive" in out


def test_explain_hesitant_and_quiet_hours():
    out = explain(
        "--total", "100", "--segment", "hesitant", "--at", "2026-03-07T01:00:00Z",
        "--phone", "+13055550100", "--country", "US", "--province", "FL",
    )  # fmt: skip
    assert "segment: hesitant" in out and "social_proof" in out
    assert "quiet_hours: sms allowed 08:00-20:00" in out


def test_explain_foreign_currency_is_rejected_or_uses_shop_amount():
    out = explain("--total", "300", "--currency", "GBP")
    assert "REJECTED: currency" in out
    out = explain("--total", "300", "--currency", "GBP", "--shop-total", "380")
    assert "shop-currency total 380 USD" in out and "band: high" in out


def test_explain_bad_amount_is_a_clean_error():
    result = CliRunner().invoke(cli, ["policy", "explain", "--total", "lots"])
    assert result.exit_code != 0 and "decimal" in result.output


def test_explain_prints_every_reason_of_the_plan():
    out = explain("--total", "310", "--segment", "new")
    lines = out.splitlines()
    for key in ("value: total 310 USD", "band: high", "segment: new", "holdout: "):
        assert any(line.strip().startswith(key) for line in lines), key
    for step, channel in enumerate(["email", "ads", "sms", "email", "human"], start=1):
        assert f"  {step}. {channel}" in out
        assert f"why: step {step}: {channel}" in out
    decisions = [line for line in lines if line.strip().startswith("-> ")]
    assert len(decisions) >= 5 and all("(" in line for line in decisions)
    assert "expires" in out and "valid 2d" in out


def test_explain_total_before_shipping_and_line_item_margin():
    out = explain("--total", "205", "--shipping", "10")
    assert "total before shipping 195 USD (205 - shipping 10)" in out and "band: mid" in out
    out = explain("--total", "310", "--cost", "290")
    assert "withheld margin: 12% off costs 37.20" in out and "line-item costs 20" in out


def test_explain_shows_a_deferral_and_when_it_goes():
    # 310 at 01:00 UTC = 21:00 New York: the 24 h SMS would land in quiet hours
    out = explain("--total", "310", "--at", "2026-06-11T01:00:00Z")
    assert "-> defer until" in out and "quiet_hours: sms allowed 08:00-21:00" in out
    assert "-> send at Fri 2026-06-12 08:00 EDT (send: sms (sms consent), 08:00-21:00" in out


def test_explain_has_help():
    result = CliRunner().invoke(cli, ["policy", "explain", "--help"])
    assert result.exit_code == 0 and "--segment" in result.output and "--total" in result.output
