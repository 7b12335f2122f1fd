"""``policy check`` asks for exactly the template files the sender's compose reads."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from config.templatecheck import PARTS
from recovery.delivery_policy import SenderIdentity
from schemas.records import TouchCommand
from senders.compose import compose
from senders.messages import AudienceChange
from senders.outcomes import PermanentError
from senders.templates import TemplateSource

IDENTITY = SenderIdentity(
    postal_address="1 Main Street, Springfield, IL 62701, USA",
    unsubscribe_url="https://acme.test/unsubscribe",
)
NAME = "zz_parts_probe"  # in no shipped directory, so only the files written here count


def _write(base: Path, channel: str, parts: tuple[str, ...]) -> TemplateSource:
    folder = base / channel
    folder.mkdir(parents=True)
    for part in parts:
        (folder / f"{NAME}.{part}").write_text("Hello $first_name: $recovery_url\n")
    return TemplateSource(base)


@pytest.mark.parametrize("channel", sorted(PARTS))
def test_the_listed_parts_are_enough_to_compose(
    channel: str, tmp_path: Path, make_touch: Callable[..., TouchCommand]
):
    source = _write(tmp_path, channel, PARTS[channel])
    touch = make_touch(channel=channel, template=NAME)
    assert compose(touch, channel, IDENTITY, source)


@pytest.mark.parametrize(
    ("channel", "left_out"),
    [(channel, part) for channel, parts in sorted(PARTS.items()) for part in parts],
)
def test_every_listed_part_is_needed(
    channel: str, left_out: str, tmp_path: Path, make_touch: Callable[..., TouchCommand]
):
    source = _write(tmp_path, channel, tuple(p for p in PARTS[channel] if p != left_out))
    touch = make_touch(channel=channel, template=NAME)
    with pytest.raises(PermanentError, match=f"{NAME}.{left_out}"):
        compose(touch, channel, IDENTITY, source)


def test_ads_touches_compose_without_a_template_file(make_touch: Callable[..., TouchCommand]):
    touch = make_touch(channel="ads", template=NAME)
    assert "ads" not in PARTS
    change = compose(touch, "ads", IDENTITY, TemplateSource())
    assert isinstance(change, AudienceChange) and change.action == "add"
