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
    out = explain("--store", "S", "--total", "310", "--segment", "new")
    assert "band: high" in out and "segment: new" in out
    assert "incentive: 12% off" in out and "example code" in out
    assert "human" in out and "for the person following up" in out


def test_explain_without_sms_consent_skips_sms():
    out = explain("--store", "S", "--total", "100", "--no-sms-consent")
    assert "skip (no_consent: sms" in out


def test_explain_repeat_vip_withholds_the_discount():
    out = explain("--store", "S", "--total", "100", "--segment", "repeat_vip")
    assert "segment: repeat_vip" in out and "gentle_reminder" in out
    assert "withheld segment: repeat_vip gets no price incentive" in out


def test_explain_hesitant_and_quiet_hours():
    out = explain(
        "--store", "S", "--total", "100", "--segment", "hesitant", "--at", "2026-03-07T01:00:00Z",
        "--phone", "+13055550100", "--country", "US", "--province", "FL",
    )  # fmt: skip
    assert "segment: hesitant" in out and "social_proof" in out
    assert "quiet_hours: sms allowed 08:00-20:00" in out


def test_explain_foreign_currency_is_rejected_or_uses_shop_amount():
    out = explain("--store", "S", "--total", "300", "--currency", "GBP")
    assert "REJECTED: currency" in out
    out = explain("--store", "S", "--total", "300", "--currency", "GBP", "--shop-total", "380")
    assert "shop-currency total 380 USD" in out and "band: high" in out


def test_explain_bad_amount_is_a_clean_error():
    result = CliRunner().invoke(cli, ["policy", "explain", "--store", "S", "--total", "lots"])
    assert result.exit_code != 0 and "decimal" in result.output
