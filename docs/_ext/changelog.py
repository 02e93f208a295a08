"""mkdocs hook: the Changelog page is CHANGELOG.md from the root of the repository.

CHANGELOG.md stays the one source. ``docs/changelog.md`` holds only the line
``--8<-- "CHANGELOG.md"``, which this hook replaces with the file's text before the
page is rendered. The changelog links to pages as ``docs/pitfalls.md`` (right when
read at the root of the repository); on the site the page sits in ``docs/`` itself, so
those links lose their ``docs/`` prefix. Any other broken link still fails
``mkdocs build --strict``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

_PAGE = "changelog.md"
_INCLUDE = re.compile(r'^--8<-- "CHANGELOG\.md"[ \t]*$', re.MULTILINE)
# An inline link "](docs/..." or a reference definition "[x]: docs/...".
_DOCS_LINK = re.compile(r"(\]\(|^\[[^\]]+\]:[ \t]*)docs/", re.MULTILINE)


def on_page_markdown(markdown: str, *, page: Any, config: Any, files: Any) -> str:
    """Put CHANGELOG.md, with its links to docs/ pages made relative, into its page."""
    if page.file.src_uri != _PAGE:
        return markdown
    changelog = Path(config.config_file_path).parent / "CHANGELOG.md"
    text = _DOCS_LINK.sub(r"\1", changelog.read_text(encoding="utf-8"))
    markdown, count = _INCLUDE.subn(lambda _match: text, markdown)
    if count != 1:
        msg = f'{_PAGE} must contain the line --8<-- "CHANGELOG.md" exactly once (found {count})'
        raise ValueError(msg)
    return markdown
