"""Writes ``reference/api.md``: one mkdocstrings block per name of ``profile_exports.__all__``, grouped by module.

Following ``__all__`` means a name added to (or removed from) the public API shows up on (or leaves)
the page without anyone editing it. A few objects outside ``__all__`` that the API returns or raises
are added by name.
"""

from __future__ import annotations

import mkdocs_gen_files

import profile_exports

PAGE = "reference/api.md"

# Section titles, in page order, by the module that defines a name; an unknown module gets its own section.
SECTIONS = {
    "profile_exports.api": "Functions",
    "profile_exports.config": "Configuration",
    "profile_exports.exporter": "Running an export",
    "profile_exports.center": "The export center",
    "profile_exports.results": "Results",
    "profile_exports.manifest": "Run manifests",
    "profile_exports.errors": "Errors",
}
# Rendered with the other plugin interfaces; one object documented twice would get two anchors.
ELSEWHERE = {"hookimpl": "plugin-interfaces.md#profile_exports.hookspecs.hookimpl"}
# Not in __all__ but returned by or raised from the public API, or named in the guides.
EXTRA = {
    "profile_exports.center": [
        "profile_exports.center.RunOutcome",
        "profile_exports.registry.ExportRecord",
        "profile_exports.registry.RunRecord",
    ],
    "profile_exports.results": ["profile_exports.results.RejectedRecord", "profile_exports.results.RunInfo"],
    "profile_exports.manifest": ["profile_exports.manifest.read_manifests", "profile_exports.manifest.Manifest"],
    "profile_exports.errors": [
        "profile_exports.errors.MissingExtraError",
        "profile_exports.errors.ExportAborted",
        "profile_exports.errors.ExportStopped",
        "profile_exports.registry.ExportBusy",
        "profile_exports.registry.ExportNotFound",
        "profile_exports.registry.ExportNotRunnable",
        "profile_exports.registry.RegistryLocked",
    ],
}
# Fields of the configuration classes are attrs.field(...) calls that read badly as signatures; the
# generated configuration reference documents them. Elsewhere undocumented members still show.
TERSE = {"profile_exports.config"}


def page() -> str:
    groups: dict[str, list[str]] = {module: [] for module in SECTIONS}
    for name in profile_exports.__all__:
        if name in ELSEWHERE:
            continue
        module = getattr(getattr(profile_exports, name), "__module__", "profile_exports")
        groups.setdefault(module, []).append(f"profile_exports.{name}")
    lines = [
        "# Python API (generated)",
        "",
        "Everything `profile_exports` exports (`profile_exports.__all__`), and the objects it returns or",
        "raises, from the docstrings. Plugin authors: see the [plugin interfaces](plugin-interfaces.md).",
    ]
    for name, target in ELSEWHERE.items():
        lines += ["", f"`profile_exports.{name}` is documented with the [plugin interfaces]({target})."]
    for module, names in groups.items():
        names += EXTRA.get(module, [])
        if not names:
            continue
        lines += ["", f"## {SECTIONS.get(module, module)}"]
        if module in TERSE:
            lines += ["", "Every field, with its type, default and rule: [configuration keys](config.md)."]
        for path in names:
            lines += ["", f"::: {path}"]
            if module not in TERSE:
                lines += ["    options:", "      show_if_no_docstring: true"]
    return "\n".join(lines) + "\n"


with mkdocs_gen_files.open(PAGE, "w") as out:
    out.write(page())
