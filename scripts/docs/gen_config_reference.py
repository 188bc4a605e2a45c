"""Writes ``reference/config.md`` from the attrs classes of ``profile_exports.config`` at build time.

Descriptions come from each field's ``metadata["doc"]``; types, defaults, allowed values and ranges
come from the code itself (annotations, defaults, validators, the built-in plugins), so the page
cannot drift from what the configuration accepts. A field without ``metadata["doc"]`` fails the build.
"""

from __future__ import annotations

import ast
import collections.abc
import inspect
import json
import textwrap
import types
import typing
from collections.abc import Iterator, Sequence
from typing import Any

import attrs
import mkdocs_gen_files

from profile_exports import api, config
from profile_exports.plugins import load_components

PAGE = "reference/config.md"

# Where each section is explained in prose (links relative to this page).
GUIDES = {
    "source": "[sources](../sources.md)",
    "destination": "[destinations](../destinations.md) and [folders and names](../output.md#folders-and-names)",
    "identifiers": "[identity fallback](../guides/identity.md)",
    "properties": "[user properties](../output.md#user-properties)",
    "schedule": "[the export center](../export-center.md#schedules)",
    "execution": "[parallel runs](../parallel.md)",
    "transforms": "[transforms](../configuration.md#transforms)",
}

# How each section's keys are passed to export(); the "direct" keys come from profile_exports.api.
DIRECT_KEYWORDS: dict[str, Sequence[str]] = {
    "": api._TOP_KEYS,
    "source": api._SOURCE_KEYS,
    "destination": api._DESTINATION_KEYS,
    "execution": api._EXECUTION_KEYS,
}

SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean", typing.Any: "any value"}


def toml_type(hint: Any) -> str:
    """The annotation as TOML users see it: ``tuple[str, ...]`` is an array of strings."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        return " or ".join(toml_type(arg) for arg in args if arg is not type(None))
    if origin is typing.Literal:
        return "string"
    if origin is tuple:
        return f"array of {toml_type(args[0])}s"
    if origin is collections.abc.Mapping:
        return "table" if args[1] is typing.Any else f"table of {toml_type(args[1])}s"
    return SCALARS[hint]


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, collections.abc.Mapping):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }" if value else "{}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return str(value)


def default_text(field: attrs.Attribute[Any]) -> str:
    if "default" in field.metadata:  # None stands for something computed at run time
        return str(field.metadata["default"])
    default: Any = field.default
    if default is attrs.NOTHING:
        return "required"
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        default = default.factory()
    return "none" if default is None else f"`{toml_value(default)}`"


def validators(field: attrs.Attribute[Any]) -> Iterator[Any]:
    # attrs combines several validators of one field into an and_() validator.
    validator = field.validator
    if validator is not None:
        yield from getattr(validator, "_validators", (validator,))


def choices(field: attrs.Attribute[Any], hint: Any) -> Sequence[str]:
    """From ``metadata["choices"]``, a ``config._validator(field, choices)`` closure, or a Literal."""
    if "choices" in field.metadata:
        return tuple(field.metadata["choices"])
    for validator in validators(field):
        if inspect.isfunction(validator):
            found = inspect.getclosurevars(validator).nonlocals.get("choices")
            if found:
                return tuple(found)
    return typing.get_args(hint) if typing.get_origin(hint) is typing.Literal else ()


def bounds(field: attrs.Attribute[Any]) -> tuple[int, int] | None:
    """The ``low <= value <= high`` a validator method checks, read from its source."""
    for validator in validators(field):
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(validator)))
        except (OSError, TypeError):
            continue
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Compare)
                and [type(op) for op in node.ops] == [ast.LtE, ast.LtE]
                and isinstance(node.left, ast.Constant)
                and isinstance(node.comparators[1], ast.Constant)
            ):
                low, high = node.left.value, node.comparators[1].value
                if isinstance(low, int) and isinstance(high, int):
                    return low, high
    return None


def built_in() -> dict[str, str]:
    """Names the built-in plugins register, for the settings that select a plugin."""
    _, components = load_components(load_entry_points=False)
    compressions = "; ".join(
        f"{name}: " + ", ".join(f"`{c}`" for c in component.obj.compressions)
        for name, component in sorted(components.writers.items())
    )
    return {
        "source.kind": ", ".join(f"`{name}`" for name in sorted(components.sources)),
        "destination.format": ", ".join(f"`{name}`" for name in sorted(components.writers)),
        "destination.compression": compressions,
    }


def rule(section: str, field: attrs.Attribute[Any], hint: Any, plugins: dict[str, str]) -> str:
    if "doc" not in field.metadata:
        raise SystemExit(f"{PAGE}: {section or 'top level'}.{field.name} has no metadata['doc'] in config.py")
    parts = [field.metadata["doc"]]
    allowed = choices(field, hint)
    if allowed:
        parts.append("Allowed: " + ", ".join(f"`{c}`" for c in allowed) + ".")
    limits = bounds(field)
    if limits:
        parts.append(f"Allowed: {limits[0]:,} to {limits[1]:,}.")
    path = f"{section}.{field.name}"
    if path in plugins:
        parts.append(f"Built in: {plugins[path]}.")
    return " ".join(parts)


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table(section: str, klass: type, plugins: dict[str, str]) -> list[str]:
    hints = typing.get_type_hints(klass)
    lines = ["| key | type | default | description and rule |", "|---|---|---|---|"]
    for field in attrs.fields(klass):
        if attrs.has(hints[field.name]):
            continue  # a section of its own
        key = field.metadata.get("key", f"`{field.name}`")
        row = (key, toml_type(hints[field.name]), default_text(field), rule(section, field, hints[field.name], plugins))
        lines.append("| " + " | ".join(cell(c) for c in row) + " |")
    return lines


def keywords(section: str, klass: type) -> str:
    """How the section's keys are given to ``export()``."""
    direct = ", ".join(f"`{f.name}=`" for f in attrs.fields(klass) if f.name in DIRECT_KEYWORDS.get(section, ()))
    if not section:
        return f"In `export()`: {direct}."
    if section == "destination":
        return f"In `export()`: the URL is the `destination` argument; the other keys are keywords: {direct}."
    if section == "source":
        return f"In `export()`: the `data` argument picks the kind (or `source={{...}}`); {direct} directly."
    text = f"In `export()`: `{section}={{...}}`"
    if section == "identifiers":
        text += ", or just the `select` list"
    return text + (f", or {direct} directly." if direct else ".")


def page() -> str:
    plugins = built_in()
    lines = [
        "# Configuration reference (generated)",
        "",
        "Every key of the configuration file, generated from the classes in `profile_exports/config.py`",
        "when this site is built. The [configuration guide](../configuration.md) explains the same keys",
        "with examples. An error names the key's dotted path (`destination.folders`).",
        "",
        "## Top level",
        "",
        keywords("", config.ExportConfig),
        "",
        *table("", config.ExportConfig, plugins),
    ]
    hints = typing.get_type_hints(config.ExportConfig)
    for field in attrs.fields(config.ExportConfig):
        klass = hints[field.name]
        if not attrs.has(klass):
            continue
        summary = (inspect.getdoc(klass) or "").split("\n\n")[0].replace("\n", " ").replace("``", "`")
        see = f" See {GUIDES[field.name]}." if field.name in GUIDES else ""
        lines += ["", f"## `[{field.name}]`", "", f"`{klass.__name__}`: {summary}{see}"]
        lines += ["", keywords(field.name, klass), "", *table(field.name, klass, plugins)]
    return "\n".join(lines) + "\n"


with mkdocs_gen_files.open(PAGE, "w") as out:
    out.write(page())
