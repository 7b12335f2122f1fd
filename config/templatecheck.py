"""Every template a policy names exists, with every part its channel's message needs.

A sequence names a template per touch; a segment's ``templates`` mapping swaps it for another.
The sender looks each one up in the store's ``delivery.templates_dir`` first, then in the
shipped ``senders/templates`` (:class:`senders.templates.TemplateSource`), and dead-letters a
touch whose file is missing: ``policy check`` finds that before a shopper is missed.

The check reads the parsed file leniently, so it runs beside the model's validation and a file
with both a typo and a missing template reports both in one pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from recovery.policy import CHANNELS, SegmentRule, Segments, TouchSpec
from recovery.policyset import Problem, deep_merge, did_you_mean
from senders.templates import PACKAGE_TEMPLATES, TemplateSource

# The files senders.compose reads per channel; ads touches carry no message (the audience
# adapter adds or removes the shopper), so their template names no file.
PARTS: Mapping[str, tuple[str, ...]] = {
    "email": ("subject.txt", "txt", "html"),
    "sms": ("txt",),
    "human": ("subject.txt", "txt"),
}

_Key = tuple[str, str]  # (path inside the scope, message): one problem of one scope


def template_problems(data: object) -> list[Problem]:
    """The template problems of a parsed policy file, defaults first, then each store.

    A store's problem that the defaults already have (same place, same message) is not repeated.
    """
    if not isinstance(data, Mapping) or not isinstance(data.get("defaults"), Mapping):
        return []
    defaults = data["defaults"]
    inherited = _scope_problems(defaults)
    problems = [Problem(_join("defaults", path), message) for path, message in inherited]
    stores = data.get("stores")
    if isinstance(stores, Mapping):
        for name, override in stores.items():
            if not isinstance(override, Mapping):
                continue
            own = _scope_problems(deep_merge(defaults, override))
            problems += [
                Problem(_join(f"stores.{name}", path), message)
                for path, message in own
                if (path, message) not in inherited
            ]
    return problems


def _join(prefix: str, path: str) -> str:
    return f"{prefix}.{path}" if path else prefix


def _scope_problems(policy: Mapping[str, object]) -> list[_Key]:
    found: list[_Key] = []
    delivery = policy.get("delivery")
    override = delivery.get("templates_dir") if isinstance(delivery, Mapping) else None
    if isinstance(override, str) and not Path(override).is_dir():
        found.append(
            (
                "delivery.templates_dir",
                f"no directory {override!r} (a relative path is taken from where the sender "
                "runs); only the shipped templates would be used",
            )
        )
    source = TemplateSource(override if isinstance(override, str) else None)
    touches = list(_touches(policy.get("bands")))
    for path, channel, template in touches:
        missing = _missing(source, channel, template)
        if missing:
            found.append((f"{path}.template", missing))
    for segment, rule in _segment_rules(policy.get("segments")):
        reported: set[tuple[str, str]] = set()
        for path, channel, template in touches:
            swapped = rule.templates.get(template)
            if swapped is None or channel in rule.skip_channels:
                continue
            if (template, channel) in reported:
                continue
            missing = _missing(source, channel, swapped)
            if missing:
                reported.add((template, channel))
                found.append(
                    (f"segments.{segment}.templates.{template}", f"used for {path}: {missing}")
                )
    return found


def _touches(bands: object) -> list[tuple[str, str, str]]:
    """``(path, channel, template)`` of every touch whose channel and template can be read."""
    default = TouchSpec.model_fields["template"].default
    found = []
    for index, band in enumerate(bands if isinstance(bands, list) else []):
        sequence = band.get("sequence") if isinstance(band, Mapping) else None
        for step, touch in enumerate(sequence if isinstance(sequence, list) else []):
            if not isinstance(touch, Mapping):
                continue
            channel, template = touch.get("channel"), touch.get("template", default)
            if channel in CHANNELS and isinstance(template, str):
                found.append((f"bands[{index}].sequence[{step}]", str(channel), template))
    return found


def _segment_rules(segments: object) -> list[tuple[str, SegmentRule]]:
    """Each segment's rule as the model reads it (its default ``templates`` included); a rule
    that does not validate is skipped, its problem being the model's to report."""
    raw = segments if isinstance(segments, Mapping) else {}
    rules = []
    for name, info in Segments.model_fields.items():
        model = info.annotation
        if not (isinstance(model, type) and issubclass(model, SegmentRule)):
            continue
        given = raw.get(name)
        try:
            rule = (
                model.model_validate(given)
                if given is not None
                else info.get_default(call_default_factory=True)
            )
        except ValidationError:
            continue
        if isinstance(rule, SegmentRule):
            rules.append((name, rule))
    return rules


def _missing(source: TemplateSource, channel: str, template: str) -> str | None:
    """What is wrong with ``template`` on ``channel``, or None when every part is there."""
    parts = PARTS.get(channel)
    if parts is None:
        return None
    absent = [
        f"{channel}/{template}.{part}"
        for part in parts
        if not _has(source, channel, template, part)
    ]
    if not absent:
        return None
    where = ", ".join(_name(base) for base in source.dirs)
    if len(absent) < len(parts):
        return f"{channel} template {template!r} lacks {', '.join(absent)} (looked in {where})"
    hint = did_you_mean(template, available(source, channel))
    return f"no {channel} template {template!r} (looked in {where}){hint}"


def _has(source: TemplateSource, channel: str, template: str, part: str) -> bool:
    if not template or "/" in template or "\\" in template or template.startswith("."):
        return False  # a name, never a path out of the channel's directory
    # a plain look at the disk: TemplateSource caches what it read, misses included
    return any((base / channel / f"{template}.{part}").is_file() for base in source.dirs)


def available(source: TemplateSource, channel: str) -> list[str]:
    """The templates of ``channel`` that have every part, across the source's directories."""
    parts = PARTS.get(channel, ())
    names: set[str] = set()
    for base in source.dirs:
        folder = base / channel
        if folder.is_dir():
            names.update(p.name.split(".", 1)[0] for p in folder.iterdir() if p.is_file())
    return sorted(n for n in names if all(_has(source, channel, n, part) for part in parts))


def _name(base: Path) -> str:
    return "the shipped templates" if base == PACKAGE_TEMPLATES else str(base)
