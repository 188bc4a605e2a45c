"""One test per hook, named test_hook_<hook>, each running the example of the hook's page in
docs/hooks/ as an installed plugin: the documented examples cannot rot."""

from __future__ import annotations

import gzip
import hashlib
import re
import types
from pathlib import Path
from typing import Any

import pytest

import profile_exports as pe
from profile_exports.testing import check_sink, check_writer

DOCS = Path(__file__).resolve().parent.parent / "docs" / "hooks"

pytestmark = pytest.mark.filterwarnings("error::profile_exports.plugins.PluginWarning")


def page_plugin(hook: str) -> types.ModuleType:
    """The first ```python block of docs/hooks/<hook>.md, run as a plugin module."""
    text = (DOCS / f"{hook}.md").read_text(encoding="utf-8")
    match = re.search(r"```python\n(.*?)```", text, re.S)
    assert match, f"docs/hooks/{hook}.md has no python example"
    module = types.ModuleType(f"docs_hooks_{hook}")
    exec(compile(match.group(1), f"docs/hooks/{hook}.md", "exec"), module.__dict__)
    return module


USERS = [
    {"profile_id": "__g1", "identity": "u1", "email": "ada@example.com", "Name": "Ada\tLovelace"},
    {"profile_id": "__g2", "email": "bob@example.com", "Name": "Bob"},
]


_UNESCAPE = {"\\\\": "\\", "\\t": "\t", "\\n": "\n", "\\r": "\r"}


def read_tsv(path: Path) -> list[dict[str, Any]]:
    """An independent reader of the example's TSV: split on tabs and line breaks, then unescape."""
    data = path.read_bytes()
    lines = (gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data).decode().split("\n")

    def fields(line: str) -> list[str]:
        return [re.sub(r"\\[\\tnr]", lambda m: _UNESCAPE[m.group(0)], f) for f in line.split("\t")]

    header = fields(lines[0])
    return [dict(zip(header, fields(line), strict=True)) for line in lines[1:] if line]


def test_hook_register_writers(register_plugin: Any, tmp_path: Path) -> None:
    register_plugin(page_plugin("register_writers"))
    result = pe.export(USERS, tmp_path / "out", format="tsv", identifiers=["Identity", "Email"], progress=False)
    assert result.files[0].key.endswith(".tsv.gz")
    rows = read_tsv(Path(result.files[0].url))
    assert [(r["identity"], r["Name"]) for r in rows] == [("u1", "Ada\tLovelace"), ("bob@example.com", "Bob")]
    check_writer(None, "tsv", read_tsv, tmp_path / "conformance")


def test_hook_register_sinks(register_plugin: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULT_ROOT", str(tmp_path / "vault"))
    register_plugin(page_plugin("register_sinks"))
    result = pe.export(USERS, "vault://exports/daily", format="json", progress=False)
    root = tmp_path / "vault" / "exports" / "daily"
    landed = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert landed == sorted([result.files[0].key, result.manifest.key if result.manifest else ""])
    check_sink(None, "vault://conformance")


def test_hook_register_sources(register_plugin: Any, tmp_path: Path) -> None:
    register_plugin(page_plugin("register_sources"))
    result = pe.export(
        None, tmp_path, source={"kind": "countdown", "count": 7}, format="json", executor="serial", progress=False
    )
    assert [p.instance_id for p in result.partitions] == [0, 1]
    rows = [row for f in result.files for row in _json_rows(Path(f.url))]
    assert sorted(r["identity"] for r in rows) == sorted(f"api-user-{i}" for i in range(7))
    with pytest.raises(pe.ConfigError, match=r"source\.cout"):
        pe.export(None, tmp_path / "typo", source={"kind": "countdown", "cout": 7}, progress=False)


def _json_rows(path: Path) -> list[dict[str, Any]]:
    import json

    return [json.loads(line) for line in gzip.decompress(path.read_bytes()).decode().split("\n") if line]


def test_hook_register_transforms(register_plugin: Any, tmp_path: Path) -> None:
    register_plugin(page_plugin("register_transforms"))
    result = pe.export(
        USERS,
        tmp_path,
        format="json",
        properties={"user": ["Email", "Name"]},
        transforms={"apply": {"email_domain": ["Email"]}, "options": {"email_domain": {"keep": "domain"}}},
        progress=False,
    )
    rows = _json_rows(Path(result.files[0].url))
    assert [r["Email"] for r in rows] == ["*@example.com", "*@example.com"]


def test_hook_export_started(register_plugin: Any, tmp_path: Path) -> None:
    plugin = page_plugin("export_started")
    register_plugin(plugin)
    pe.export(USERS, tmp_path / "a", progress=False)
    pe.export(USERS, tmp_path / "a", progress=False)
    pe.export(USERS, tmp_path / "b", progress=False)
    assert dict(plugin.runs_by_destination) == {str(tmp_path / "a"): 2, str(tmp_path / "b"): 1}


def test_hook_file_committed(register_plugin: Any, tmp_path: Path) -> None:
    plugin = page_plugin("file_committed")
    register_plugin(plugin)
    tokens = [hashlib.sha256(b"%d" % i).hexdigest() for i in range(3000)]  # incompressible: several files
    many = [{"profile_id": f"__g{i}", "identity": f"u{i}", "Token": token} for i, token in enumerate(tokens)]
    result = pe.export(
        many, tmp_path, format="csv", properties={"user": ["Token"]}, max_file_mb=0.05, export_id="77", progress=False
    )
    assert len(result.files) > 1
    assert plugin.committed == [("77", f.key, f.rows, f.sha256) for f in result.files]


def test_hook_export_finished(register_plugin: Any, tmp_path: Path) -> None:
    plugin = page_plugin("export_finished")
    register_plugin(plugin)
    pe.export(USERS, tmp_path, name="daily", progress=False)
    assert plugin.announcements == ["daily: 2 profiles in 1 file(s)"]


def test_hook_export_failed(register_plugin: Any, tmp_path: Path) -> None:
    plugin = page_plugin("export_failed")
    finished = page_plugin("export_finished")
    register_plugin(plugin)
    register_plugin(finished)
    with pytest.raises(pe.DataError):
        bad = [{"profile_id": "__g1", "identity": "u1"}, {"identity": "no id"}]
        pe.export(bad, tmp_path, export_id="9", progress=False)
    assert len(plugin.alerts) == 1
    export_id, kind, message = plugin.alerts[0]
    assert (export_id, kind) == ("9", "DataError") and "profile_id" in message
    assert finished.announcements == []
