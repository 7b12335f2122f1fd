from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from config.policyfile import DEFAULT_POLICY, PolicyError, load_policy
from recovery.policy import SEGMENTS
from recovery.policyset import parse_policy


def base() -> dict:
    return yaml.safe_load(DEFAULT_POLICY.read_text())


def problems(data: dict) -> list[str]:
    with pytest.raises(PolicyError) as info:
        parse_policy(data, "p.yaml")
    return [str(p) for p in info.value.problems]


def test_shipped_policy_is_valid():
    policies = load_policy()
    assert [b.name for b in policies.defaults.bands] == ["low", "mid", "high", "vip"]
    assert policies.for_store("acme-eu").currency == "EUR"
    assert policies.for_store("unknown-store") is policies.defaults


def test_store_override_error_names_store_path():
    data = base()
    data["stores"] = {
        "acme": {
            "bands": [
                {"name": "a", "min": 0},
                {"name": "b", "min": 10},
                {"name": "c", "min": "ten"},
            ]
        }
    }
    found = problems(data)
    assert any(p.startswith("stores.acme.bands[2].min:") for p in found), found


def test_defaults_error_names_defaults_path():
    data = base()
    data["defaults"]["bands"][1]["sequence"][1]["channel"] = "fax"
    found = problems(data)
    assert any(p.startswith("defaults.bands[1].sequence[1].channel:") for p in found), found


def test_bad_duration_and_unknown_key():
    data = base()
    data["defaults"]["abandonment_window"] = "soon"
    data["defaults"]["colour"] = "blue"
    found = problems(data)
    assert any(p.startswith("defaults.abandonment_window:") and "duration" in p for p in found)
    assert any(p.startswith("defaults.colour:") for p in found)


def test_bands_must_increase_and_start_at_zero():
    data = base()
    data["defaults"]["bands"][0]["min"] = 5
    assert any("start at 0" in p for p in problems(data))
    data = base()
    data["defaults"]["bands"][2]["min"] = 40
    assert any(p.startswith("defaults.bands:") and "high" in p for p in problems(data))


def test_percent_needs_a_value():
    data = base()
    data["defaults"]["bands"][1]["sequence"][1]["incentive"] = {"kind": "percent_off"}
    assert any(
        p.startswith("defaults.bands[1].sequence[1].incentive.value:") and "positive" in p
        for p in problems(data)
    )


def test_yaml_syntax_error_has_line(tmp_path: Path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("defaults:\n  bands: [\n")
    with pytest.raises(PolicyError) as info:
        load_policy(broken)
    assert str(broken) in str(info.value)
    assert "line" in str(info.value.problems[0])


def test_missing_file(tmp_path: Path):
    with pytest.raises(PolicyError) as info:
        load_policy(tmp_path / "nope.yaml")
    assert "cannot read" in str(info.value)


def test_shipped_policy_has_the_core_sections():
    p = load_policy().defaults
    assert p.margin.max_discount_share_of_margin == Decimal("0.5")
    assert p.segments.repeat_vip.discount is False and p.segments.new.discount is True
    assert str(p.send_windows["sms"]) == "08:00-21:00"
    assert str(p.regions["US-FL"].windows["sms"]) == "08:00-20:00"
    assert p.caps.min_gap["email"] == timedelta(hours=16)
    assert p.caps.min_gap["sms"] == timedelta(hours=24)
    assert all(b.holdout == Decimal("0.05") for b in p.bands)


def test_fast_policy_is_the_default_scaled_to_seconds():
    fast = load_policy(Path(__file__).parent.parent / "data" / "fast_policy.yaml").defaults
    default = load_policy().defaults
    assert [b.name for b in fast.bands] == [b.name for b in default.bands]
    assert [b.min for b in fast.bands] == [b.min for b in default.bands]
    for f, d in zip(fast.bands, default.bands, strict=True):
        assert [(t.channel, t.template, t.incentive) for t in f.sequence] == [
            (t.channel, t.template, t.incentive) for t in d.sequence
        ]
        assert all(t.offset <= timedelta(seconds=10) for t in f.sequence)
    assert fast.margin == default.margin
    scaled = {"hesitant": {"within"}}  # a duration: scaled like the offsets
    for name in SEGMENTS:
        skip = scaled.get(name, set())
        assert fast.segments.rule(name).model_dump(exclude=skip) == default.segments.rule(
            name
        ).model_dump(exclude=skip), name


@pytest.mark.parametrize(
    ("edit", "path", "words"),
    [
        (lambda d: d["margin"].update(gross_margin="1.5"), "defaults.margin.gross_margin", "share"),
        (
            lambda d: d["send_windows"].update(sms={"start": "21:00", "end": "08:00"}),
            "defaults.send_windows.sms",
            "before end",
        ),
        (
            lambda d: d["send_windows"].update(sms={"start": "8am", "end": "21:00"}),
            "defaults.send_windows.sms.start",
            "time of day",
        ),
        (lambda d: d["regions"].update({"Florida": {}}), "defaults.regions", "region"),
        (lambda d: d.update(fx_rates={"EUR": "-1"}), "defaults.fx_rates", "positive"),
        (lambda d: d.update(fx_rates={"euro": "1.1"}), "defaults.fx_rates.euro", "ISO-4217"),
        (lambda d: d["caps"].update(max_touches=0), "defaults.caps.max_touches", "greater"),
        (lambda d: d["caps"].update(min_gap={"fax": "1h"}), "defaults.caps.min_gap.fax", ""),
        (
            lambda d: d["segments"]["hesitant"].update(within="soon"),
            "defaults.segments.hesitant.within",
            "duration",
        ),
        (lambda d: d["segments"].update(lurker={}), "defaults.segments.lurker", ""),
        (
            lambda d: d["region_timezones"].update({"US-IN": "Mars/Olympus"}),
            "defaults.region_timezones",
            "unknown time zone",
        ),
        (lambda d: d["bands"][2].update(holdout="0.5x"), "defaults.bands[2].holdout", ""),
        (
            lambda d: d["bands"][0]["sequence"][0].update(
                incentive={"kind": "percent_off", "value": 5}
            ),
            "defaults.bands",
            "never carries an incentive",
        ),
    ],
)
def test_core_sections_errors_are_path_precise(edit, path, words):
    data = base()
    edit(data["defaults"])
    found = problems(data)
    assert any(p.startswith(path + ":") and words in p for p in found), found


def test_store_override_of_a_core_section_names_the_store():
    data = base()
    data["stores"] = {"acme": {"caps": {"window": "often"}}}
    assert any(p.startswith("stores.acme.caps.window:") for p in problems(data))
