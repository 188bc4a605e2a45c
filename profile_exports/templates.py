"""Folder and file-name templates: checked once at configuration time, rendered per file.

Templates allow ``a-z A-Z 0-9 / - _`` and the five variables, written ``{{Name}}`` in any case.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import attrs

from .errors import ConfigError

VARIABLES = ("Account-id", "Export-id", "Timestamp", "Instance-id", "Date")
_CANONICAL = {v.lower(): v for v in VARIABLES}
_VARIABLE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_ALLOWED = re.compile(r"[A-Za-z0-9/_-]")
MAX_TEMPLATE_LENGTH = 512
# Once its variables are filled in, a template must still make names every store takes: a folder or
# file name (a segment between '/') of at most 255 bytes on local disks, and keys of at most 1024
# bytes on S3. File names get up to ~55 more characters (timestamp, instance, part, extension).
MAX_RENDERED_SEGMENT = 200
MAX_RENDERED_LENGTH = 512
VARIABLE_WIDTH = {"Account-id": 64, "Export-id": 20, "Timestamp": 20, "Instance-id": 10, "Date": 8}


@attrs.frozen
class Template:
    """A parsed template: literal text and variable names, in order."""

    text: str
    parts: tuple[tuple[bool, str], ...]  # (is_variable, literal text or canonical variable name)

    @property
    def variables(self) -> frozenset[str]:
        return frozenset(value for is_var, value in self.parts if is_var)

    def render(self, values: Mapping[str, str]) -> str:
        return "".join(values[value] if is_var else value for is_var, value in self.parts)


def parse_template(text: str, field: str, *, allow_slash: bool = True) -> Template:
    """Parse and check a template; errors name the field, the character and its position."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(field, 'must be a non-empty template, e.g. "{{Date}}/run-{{Export-id}}"')
    if len(text) > MAX_TEMPLATE_LENGTH:
        raise ConfigError(field, f"is {len(text)} characters long; keep it under {MAX_TEMPLATE_LENGTH}")
    parts: list[tuple[bool, str]] = []
    position = 0
    for match in _VARIABLE.finditer(text):
        _check_literal(text, position, match.start(), field, allow_slash)
        if match.start() > position:
            parts.append((False, text[position : match.start()]))
        name = _CANONICAL.get(match.group(1).lower())
        if name is None:
            raise ConfigError(
                field,
                f"unknown variable {match.group(0)!r} at position {match.start() + 1}; "
                f"use one of {', '.join('{{' + v + '}}' for v in VARIABLES)}",
            )
        parts.append((True, name))
        position = match.end()
    _check_literal(text, position, len(text), field, allow_slash)
    if position < len(text):
        parts.append((False, text[position:]))
    if text.startswith("/") or text.endswith("/") or "//" in text:
        raise ConfigError(field, "must not start or end with '/' nor contain '//' (empty folder names)")
    _check_rendered_length(parts, field)
    return Template(text, tuple(parts))


def _check_rendered_length(parts: list[tuple[bool, str]], field: str) -> None:
    """The longest the template can render: each name between '/' and the whole."""
    segments = [0]
    for is_variable, value in parts:
        if is_variable:
            segments[-1] += VARIABLE_WIDTH[value]
            continue
        pieces = value.split("/")
        segments[-1] += len(pieces[0])
        segments += [len(piece) for piece in pieces[1:]]
    longest = max(segments)
    if longest > MAX_RENDERED_SEGMENT:
        raise ConfigError(
            field,
            f"can make a folder or file name {longest} characters long once its variables are filled in; "
            f"keep each name between '/' under {MAX_RENDERED_SEGMENT} (disks refuse names over 255 bytes)",
        )
    total = sum(segments) + len(segments) - 1
    if total > MAX_RENDERED_LENGTH:
        raise ConfigError(
            field,
            f"can render to {total} characters once its variables are filled in; keep it under "
            f"{MAX_RENDERED_LENGTH} (object stores cap keys at 1024 bytes)",
        )


def _check_literal(text: str, start: int, end: int, field: str, allow_slash: bool) -> None:
    for i in range(start, end):
        ch = text[i]
        if not _ALLOWED.fullmatch(ch) or (ch == "/" and not allow_slash):
            hint = (
                "'{{' and '}}' must enclose a variable"
                if ch in "{}"
                else ("only letters a-z A-Z, digits 0-9, '/', '-' and '_' are allowed besides variables")
            )
            raise ConfigError(field, f"character {ch!r} at position {i + 1} is not allowed; {hint}")
