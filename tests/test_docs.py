"""The docs cannot drift from the code: every configuration key and hook is documented."""

from __future__ import annotations

from pathlib import Path

import attrs

from profile_exports import config, hookspecs

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_configuration_key_is_in_the_reference() -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    for klass in (
        config.ExportConfig,
        config.SourceConfig,
        config.DestinationConfig,
        config.IdentifierConfig,
        config.PropertiesConfig,
        config.ScheduleConfig,
        config.ExecutionConfig,
        config.TransformsConfig,
    ):
        for field in attrs.fields(klass):
            if field.name == "options":
                continue  # the source kind's own keys
            assert f"`{field.name}`" in text or f"[{field.name}]" in text, f"{klass.__name__}.{field.name}"


def test_every_hook_has_a_section_in_the_plugin_guide() -> None:
    text = (DOCS / "plugins.md").read_text(encoding="utf-8")
    hooks = [name for name in dir(hookspecs) if hasattr(getattr(hookspecs, name), "profile_exports_spec")]
    assert len(hooks) == 8
    for name in hooks:
        assert f"{name}(" in text, name
