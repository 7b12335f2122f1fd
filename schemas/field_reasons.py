"""A typed read's refusal in the stages' own words: ``field: what is wrong``."""

from __future__ import annotations

import re

import msgspec

_WHERE = re.compile(r"^(.*?)(?: - at `\$\.?(.*)`)?$", re.DOTALL)


def field_reason(error: msgspec.ValidationError) -> str:
    """``"field: what is wrong"`` from msgspec's ``"What is wrong - at `$.field`"``."""
    found = _WHERE.match(str(error))
    what, path = (found.group(1), found.group(2)) if found else (str(error), None)
    what = what.replace("`", "")
    what = what[:1].lower() + what[1:]
    return f"{path or 'event'}: {what}"
