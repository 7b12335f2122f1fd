"""Message templates: files under ``senders/templates`` that a store's own directory overrides.

Layout: ``<channel>/<template>.<part>`` where part is ``subject.txt``, ``txt`` or ``html``
(email), ``txt`` (sms), ``subject.txt`` and ``txt`` (human); ``social_proof.txt`` and
``social_proof_sms.txt`` at the top (the social proof sentence, see :mod:`senders.compose`).
Templates use ``$name`` placeholders (:class:`string.Template`): no code runs in a template,
and an unknown placeholder is an error rather than a silent blank. Files are read once per
process (cached): restart the senders after changing a store's templates.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Mapping
from pathlib import Path
from string import Template

from senders.outcomes import PermanentError

PACKAGE_TEMPLATES = Path(__file__).resolve().parent / "templates"


class TemplateSource:
    """Finds template files: the store's directory first, then the shipped ones."""

    def __init__(self, override: str | Path | None = None) -> None:
        self.dirs: tuple[Path, ...] = (
            (Path(override), PACKAGE_TEMPLATES) if override else (PACKAGE_TEMPLATES,)
        )

    def text(self, relative: str) -> str:
        for base in self.dirs:
            found = _read(base / relative)
            if found is not None:
                return found
        raise PermanentError(
            f"no template {relative!r} (looked in {', '.join(map(str, self.dirs))})"
        )

    def has(self, relative: str) -> bool:
        return any(_read(base / relative) is not None for base in self.dirs)


@functools.lru_cache(maxsize=512)
def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def render_text(source: str, values: Mapping[str, str], name: str = "template") -> str:
    """Substitute ``$name`` placeholders; unknown ones raise :class:`PermanentError`."""
    try:
        return Template(source).substitute(values)
    except KeyError as exc:
        raise PermanentError(f"{name}: unknown placeholder ${exc.args[0]}") from None
    except ValueError as exc:
        raise PermanentError(f"{name}: {exc}") from None


def render_html(
    source: str, values: Mapping[str, str], markup: Mapping[str, str], name: str = "template"
) -> str:
    """Like :func:`render_text` with every value HTML-escaped, except ready-made ``markup``."""
    escaped = {key: html.escape(value, quote=True) for key, value in values.items()}
    escaped.update(markup)
    return render_text(source, escaped, name)
