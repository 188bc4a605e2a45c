"""A Griffe extension for the API reference: the package's Sphinx-style docstrings read well as Markdown.

Griffe's Sphinx parser handles ``:param:`` fields and leaves the rest of the text to Markdown, where
``>>>`` example lines would become nested block quotes and ``:class:`x``` roles would show verbatim.
Each run of example lines (up to a blank line) is fenced as Python instead, and roles become code.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:class|func|meth|attr|mod|data|exc|obj):`~?([^`]+)`")


def as_markdown(text: str) -> str:
    out: list[str] = []
    in_example = False
    for line in _ROLE.sub(r"`\1`", text).splitlines():
        if not in_example and line.lstrip().startswith(">>>"):
            out.append("```pycon")
            in_example = True
        elif in_example and not line.strip():
            out.append("```")
            in_example = False
        out.append(line)
    if in_example:
        out.append("```")
    return "\n".join(out)


class SphinxDocstringsAsMarkdown(griffe.Extension):
    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = as_markdown(obj.docstring.value)
