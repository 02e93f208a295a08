"""Griffe extension: the reST bits of parmap's docstrings, as Markdown for the docs site.

The docstrings are Google style, plus a few reST constructs that ``help()`` readers and
Sphinx users know (see STYLE.md, section 5). mkdocstrings renders Markdown, so before a
docstring is parsed this extension rewrites:

- ``.. versionadded:: 0.1`` (also ``versionchanged`` and ``deprecated``, with an optional
  text on the same line or indented below) into a line such as "*Added in version 0.1.*";
- ``:func:`name```, ``:class:`~pkg.Name``` and the other Python roles into cross-references
  that autorefs resolves: the name is looked up from the documented object's scope
  (``scoped_crossrefs`` in mkdocs.yml), and ``~`` shows only the last component. Builtins
  and names outside parmap (``:exc:`TimeoutError```, ``:class:`concurrent.futures.Executor```)
  become plain code: the build fetches no other project's inventory.

Double backticks need nothing: Markdown reads them as code too.
"""

from __future__ import annotations

import builtins
import re
from typing import Any

from griffe import Extension

# A Python-domain role such as :func:`parallel_map` or :class:`Title <pkg.Name>`.
_ROLE = re.compile(
    r":(?:py:)?(?:func|meth|class|exc|attr|mod|data|obj|const):`(?P<body>[^`]+)`",
)
_EXPLICIT_TITLE = re.compile(r"^(?P<title>.+?)\s*<(?P<target>[^<>]+)>$")
# A version directive, its argument, and the lines indented below it.
_DIRECTIVE = re.compile(
    r"^(?P<indent>[ \t]*)\.\. (?P<name>versionadded|versionchanged|deprecated)::"
    r"[ \t]*(?P<version>\S+)[ \t]*(?P<text>[^\n]*)\n?"
    r"(?P<more>(?:(?P=indent)[ \t]+\S[^\n]*\n?)*)",
    re.MULTILINE,
)
_LABELS = {
    "versionadded": "Added in version",
    "versionchanged": "Changed in version",
    "deprecated": "Deprecated since version",
}


def _crossref(match: re.Match[str]) -> str:
    body = match["body"].strip()
    explicit = _EXPLICIT_TITLE.match(body)
    if explicit:
        title, target = explicit["title"], explicit["target"]
    else:
        target = body.lstrip("~")
        title = target.rsplit(".", 1)[-1] if body.startswith("~") else target.lstrip(".")
    # Sphinx writes the call parentheses in the text, never in the target.
    target = target.lstrip("~").removesuffix("()")
    # A dotted name that starts with a module (lower case) other than parmap.
    module = target.split(".", 1)[0]
    outside = "." in target and module.islower() and module != "parmap"
    if outside or hasattr(builtins, target):
        return f"`{title}`"
    return f"[`{title}`][{target}]"


def _version_note(match: re.Match[str]) -> str:
    label = _LABELS[match["name"]]
    lines = [match["text"], *match["more"].splitlines()]
    text = " ".join(line.strip() for line in lines if line.strip())
    note = f"*{label} {match['version']}*" + (f": {text}" if text else ".")
    return f"{match['indent']}{note}\n"


def rest_to_markdown(text: str) -> str:
    """Rewrite the version directives and Python roles in *text* as Markdown."""
    return _ROLE.sub(_crossref, _DIRECTIVE.sub(_version_note, text))


class RestBits(Extension):
    """Rewrites each docstring as it is loaded, before the Google-style parser sees it."""

    def on_instance(self, *, obj: Any, **kwargs: Any) -> None:
        """Rewrite the docstring of every object griffe creates."""
        if obj.docstring is not None:
            obj.docstring.value = rest_to_markdown(obj.docstring.value)
