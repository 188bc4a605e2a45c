"""The docs cannot drift from the code: every configuration key and hook is documented."""

from __future__ import annotations

import ast
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


def _hook_names() -> list[str]:
    return sorted(name for name in dir(hookspecs) if hasattr(getattr(hookspecs, name), "profile_exports_spec"))


def _test_function_names() -> set[str]:
    tests = Path(__file__).resolve().parent
    names: set[str] = set()
    for path in tests.glob("test_*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names |= {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    return names


def test_every_hook_has_its_own_page_and_a_test_named_after_it() -> None:
    """As datasette does: a hook without a documented section or without a test fails the suite."""
    tested = _test_function_names()
    for name in _hook_names():
        page = DOCS / "hooks" / f"{name}.md"
        assert page.exists(), f"docs/hooks/{name}.md is missing"
        text = page.read_text(encoding="utf-8")
        assert text.startswith(f"# {name}\n"), f"docs/hooks/{name}.md must start with '# {name}'"
        assert "```python" in text, f"docs/hooks/{name}.md has no example"
        assert f"test_hook_{name}" in tested, f"no test named test_hook_{name}"
        assert f"test_hook_{name}" in text, f"docs/hooks/{name}.md does not name its test"
    pages = {p.stem for p in (DOCS / "hooks").glob("*.md")} - {"testing"}
    assert pages == set(_hook_names()), f"pages for hooks that do not exist: {sorted(pages - set(_hook_names()))}"
