"""Every template a policy names exists for its channel, where the sender will look."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from config.policyfile import DEFAULT_POLICY, PolicyError, check_policy
from config.templatecheck import available, template_problems
from senders.templates import TemplateSource


def base() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(DEFAULT_POLICY.read_text())
    return data


def found(data: dict[str, Any]) -> list[str]:
    return [str(p) for p in template_problems(data)]


def test_the_shipped_policy_names_only_existing_templates():
    assert found(base()) == []
    assert check_policy().stores["acme-eu"].currency == "EUR"


def test_a_missing_template_is_named_at_its_path_with_the_nearest():
    data = base()
    data["defaults"]["bands"][3]["sequence"][4]["template"] = "last_cal"
    assert found(data) == [
        "defaults.bands[3].sequence[4].template: no email template 'last_cal' "
        "(looked in the shipped templates); did you mean 'last_call'?"
    ]


def test_a_template_of_another_channel_does_not_count():
    data = base()
    data["defaults"]["bands"][1]["sequence"][1]["template"] = "offer"  # email has it, sms not
    problems = found(data)
    assert problems[0].startswith(
        "defaults.bands[1].sequence[1].template: no sms template 'offer'"
    ), problems
    assert "did you mean 'offer_sms'?" in problems[0]
    # the returning segment swaps offer for last_call, an email-only template too
    assert len(problems) == 2, problems
    assert problems[1].startswith(
        "defaults.segments.returning.templates.offer: used for bands[1].sequence[1]: no sms "
        "template 'last_call' (looked in the shipped templates)"
    ), problems


def test_a_touch_without_a_template_uses_reminder_and_the_segments_swaps_of_it():
    data = base()
    data["defaults"]["bands"][3]["sequence"][2] = {"offset": "24h", "channel": "sms"}
    assert found(data) == []  # sms/reminder, sms/gentle_reminder, sms/social_proof are shipped
    data["defaults"]["bands"][3]["sequence"][1] = {"offset": "2h", "channel": "human"}
    assert [p.split(": used for ")[0] for p in found(data)] == [
        "defaults.segments.repeat_vip.templates.reminder",
        "defaults.segments.hesitant.templates.reminder",
    ]  # human/reminder is shipped, human/gentle_reminder and human/social_proof are not


def test_ads_touches_name_no_file():
    data = base()
    data["defaults"]["bands"][2]["sequence"][1]["template"] = "anything_at_all"
    assert found(data) == []


def test_a_segment_swap_to_a_missing_template_names_the_mapping_and_the_touch():
    data = base()
    data["defaults"]["segments"]["hesitant"]["templates"]["reminder"] = "social_prof"
    problems = found(data)
    # every band's first touch is an email reminder: one problem, the first touch named
    assert problems == [
        "defaults.segments.hesitant.templates.reminder: used for bands[0].sequence[0]: "
        "no email template 'social_prof' (looked in the shipped templates); "
        "did you mean 'social_proof'?"
    ], problems


def test_a_segment_that_skips_a_channel_needs_no_template_there():
    data = base()
    rule = data["defaults"]["segments"]["repeat_vip"]
    rule["templates"]["reminder_sms"] = "no_such_sms"
    assert any("repeat_vip.templates.reminder_sms" in p for p in found(data))
    rule["skip_channels"] = ["sms"]
    assert found(data) == []


def test_a_segment_rule_that_does_not_validate_is_left_to_the_model(tmp_path: Path):
    data = base()
    data["defaults"]["segments"]["hesitant"]["within"] = "soon"  # the model's problem
    data["defaults"]["segments"]["hesitant"]["templates"]["offer"] = "gone"
    assert found(data) == []  # the rule does not validate: its templates are not guessed
    with pytest.raises(PolicyError) as info:
        check_policy(_write(data, tmp_path))
    assert any(p.path == "defaults.segments.hesitant.within" for p in info.value.problems)


def test_a_store_templates_dir_provides_templates_and_overrides_file_by_file(tmp_path: Path):
    own = tmp_path / "acme-templates"
    (own / "sms").mkdir(parents=True)
    (own / "sms" / "winback.txt").write_text("Come back, $first_name: $recovery_url\n")
    data = base()
    data["stores"] = {
        "acme": {
            "delivery": {"templates_dir": str(own)},
            "bands": [
                {
                    "name": "all",
                    "min": 0,
                    "sequence": [
                        {"offset": "1h", "channel": "sms", "template": "winback"},
                        {"offset": "2h", "channel": "email", "template": "reminder"},
                    ],
                }
            ],
        }
    }
    assert found(data) == []
    data["stores"]["other"] = {"bands": data["stores"]["acme"]["bands"]}
    assert found(data) == [
        "stores.other.bands[0].sequence[0].template: no sms template 'winback' "
        "(looked in the shipped templates); known: gentle_reminder, gentle_reminder_sms, "
        "offer_sms, reminder, reminder_sms, social_proof"
    ]


def test_an_email_template_lacking_a_part_is_named(tmp_path: Path):
    own = tmp_path / "t"
    (own / "email").mkdir(parents=True)
    (own / "email" / "winback.subject.txt").write_text("Back?\n")
    (own / "email" / "winback.txt").write_text("$recovery_url\n")
    data = base()
    data["defaults"]["delivery"]["templates_dir"] = str(own)
    data["defaults"]["bands"][0]["sequence"][0]["template"] = "winback"
    assert found(data) == [
        f"defaults.bands[0].sequence[0].template: email template 'winback' lacks "
        f"email/winback.html (looked in {own}, the shipped templates)"
    ]
    assert "winback" not in available(TemplateSource(own), "email")
    (own / "email" / "winback.html").write_text("<p>$recovery_url</p>\n")
    assert found(data) == []
    assert "winback" in available(TemplateSource(own), "email")


def test_a_templates_dir_that_is_not_there_is_reported(tmp_path: Path):
    data = base()
    data["stores"]["acme-eu"]["delivery"] = {"templates_dir": str(tmp_path / "absent")}
    problems = found(data)
    assert problems == [
        f"stores.acme-eu.delivery.templates_dir: no directory '{tmp_path / 'absent'}' "
        "(a relative path is taken from where the sender runs); only the shipped templates "
        "would be used"
    ]


def test_a_template_name_is_never_a_path(tmp_path: Path):
    data = base()
    data["defaults"]["bands"][0]["sequence"][0]["template"] = "../email/reminder"
    problems = found(data)
    assert len(problems) == 1 and "no email template '../email/reminder'" in problems[0]


def test_the_template_problems_come_with_the_model_problems(tmp_path: Path):
    data = base()
    data["defaults"]["retension"] = "30d"
    data["defaults"]["bands"][0]["sequence"][0]["template"] = "remindr"
    with pytest.raises(PolicyError) as info:
        check_policy(_write(data, tmp_path))
    paths = [p.path for p in info.value.problems]
    assert paths == ["defaults.retension", "defaults.bands[0].sequence[0].template"]


def _write(data: dict[str, Any], directory: Path) -> Path:
    path = directory / "policy.yaml"
    path.write_text(yaml.safe_dump(data))
    return path
