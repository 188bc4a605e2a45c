"""Plugins: built-ins through the hooks, third-party distributions through entry points."""

from __future__ import annotations

import json
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import profile_exports as pe
from profile_exports import cli
from profile_exports.plugins import BUILTIN_PLUGINS, PluginWarning, load_components

from .conftest import read_csv

PLUGIN_SOURCE = '''
"""A tab-separated-values writer, shipped as a third-party distribution."""
from profile_exports import hookimpl
from profile_exports.textfile import TextWriter
from profile_exports.values import text_column

seen = []


class TsvEncoder:
    def __init__(self, layout):
        self.names = layout.names

    def header(self):
        return ("\\t".join(self.names) + "\\n").encode()

    def encode(self, batch):
        columns = [text_column(c).to_pylist() for c in batch.columns]
        return b"".join(
            ("\\t".join("" if v is None else v for v in row) + "\\n").encode() for row in zip(*columns)
        )

    def footer(self):
        return b""


class TsvWriter(TextWriter):
    name = "tsv"
    content_type = "text/tab-separated-values"
    suffix = "tsv"

    def encoder(self, layout, options):
        return TsvEncoder(layout)


@hookimpl
def register_writers(register):
    register(TsvWriter())


@hookimpl
def file_committed(run, file):
    seen.append((run.export_id, file.key, file.rows))
'''


def install_distribution(site: Path, dist: str, module: str, source: str, entry_point: str) -> None:
    """A real installed distribution (dist-info with METADATA and entry_points.txt) on ``site``."""
    (site / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[profile_exports]\n{entry_point}\n", encoding="utf-8")
    (info / "RECORD").write_text("", encoding="utf-8")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on sys.path for test distributions; their modules are forgotten afterwards."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    before = set(sys.modules)
    yield folder
    for name in set(sys.modules) - before:
        if getattr(sys.modules[name], "__file__", "") and str(folder) in (sys.modules[name].__file__ or ""):
            del sys.modules[name]


def test_builtins_register_through_the_same_hooks() -> None:
    _pm, components = load_components(load_entry_points=False)
    assert {c.plugin for c in components.all()} <= set(BUILTIN_PLUGINS)
    assert {"csv", "json"} <= set(components.writers)
    assert {"records", "arrow", "jsonl", "parquet", "sql", "synthetic"} <= set(components.sources)
    assert components.sinks["*"].name == "fsspec"
    assert all(c.distribution is None for c in components.all())


def test_each_exporter_has_its_own_plugin_manager(tmp_path: Path) -> None:
    config = pe.ExportConfig.from_mapping({"destination": {"url": str(tmp_path)}})
    a, b = pe.Exporter(config), pe.Exporter(config)
    assert a.plugin_manager is not b.plugin_manager


def test_third_party_writer_from_an_entry_point_exports(site: Path, tmp_path: Path) -> None:
    module = f"tsv_plugin_{uuid.uuid4().hex[:8]}"
    install_distribution(site, "profile-exports-tsv", module, PLUGIN_SOURCE, f"tsv = {module}")
    result = pe.export(
        [{"profile_id": "p1", "Name": "Ada\u00e9"}, {"profile_id": "p2"}],
        str(tmp_path / "o"),
        format="tsv",
        compression="none",
    )
    (f,) = result.files
    assert f.url.endswith(".tsv")
    lines = Path(f.url).read_text(encoding="utf-8").splitlines()
    assert lines == ["identity\tclevertapId\tdevice\tName", '\tp1\t{"token":null}\tAda\u00e9', '\tp2\t{"token":null}\t']
    # its lifecycle hook ran too
    assert sys.modules[module].seen == [(result.export_id, f.key, 2)]


def test_plugins_command_lists_components_and_their_origin(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    module = f"tsv_plugin_{uuid.uuid4().hex[:8]}"
    install_distribution(site, "profile-exports-tsv", module, PLUGIN_SOURCE, f"tsv = {module}")
    assert cli.main(["plugins", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["components"]
    by_name = {(c["kind"], c["name"]): c for c in listed}
    assert by_name[("writer", "tsv")]["origin"] == "profile-exports-tsv 0.1"
    assert by_name[("writer", "tsv")]["plugin"] == "tsv"
    assert by_name[("writer", "csv")]["origin"] == "built-in"
    assert by_name[("sink", "fsspec")]["protocols"] == ["*"]
    assert cli.main(["plugins"]) == 0
    assert "profile-exports-tsv 0.1" in capsys.readouterr().out


def test_a_broken_plugin_is_skipped_with_a_warning_naming_it(site: Path, tmp_path: Path) -> None:
    module = f"broken_{uuid.uuid4().hex[:8]}"
    install_distribution(
        site, "profile-exports-broken", module, "raise ImportError('needs libfoo')\n", f"broken = {module}"
    )
    with pytest.warns(PluginWarning, match=r"plugin 'broken' \(profile-exports-broken 0.1.*needs libfoo"):
        result = pe.export([{"profile_id": "p1"}], str(tmp_path / "o"), format="csv")
    assert read_csv(result.files[0].url)[1][0]["clevertapId"] == "p1"
    config = pe.ExportConfig.from_mapping({"destination": {"url": str(tmp_path)}})
    with pytest.raises(pe.PluginError, match="broken"):
        pe.Exporter(config, strict_plugins=True)


def test_a_plugin_failing_in_its_registration_hook_is_skipped(site: Path, tmp_path: Path) -> None:
    module = f"failing_{uuid.uuid4().hex[:8]}"
    source = "from profile_exports import hookimpl\n@hookimpl\ndef register_writers(register):\n    1 / 0\n"
    install_distribution(site, "profile-exports-failing", module, source, f"failing = {module}")
    with pytest.warns(PluginWarning, match="failing.*register_writers.*ZeroDivisionError"):
        pe.export([{"profile_id": "p1"}], str(tmp_path / "o"), format="csv")


def test_a_misspelt_hook_is_caught(site: Path, tmp_path: Path) -> None:
    module = f"typo_{uuid.uuid4().hex[:8]}"
    source = "from profile_exports import hookimpl\n@hookimpl\ndef register_writer(register):\n    pass\n"
    install_distribution(site, "profile-exports-typo", module, source, f"typo = {module}")
    with pytest.warns(PluginWarning, match="typo.*register_writer"):
        load_components()


def test_plugins_passed_in_code_override_builtins(tmp_path: Path) -> None:
    class Shouty:
        @pe.hookimpl
        def register_writers(self, register):
            from profile_exports.writers.csv import CsvWriter

            class Upper(CsvWriter):
                suffix = "CSV"

            register(Upper())

    result = pe.export([{"profile_id": "p1"}], str(tmp_path), format="csv", plugins=[Shouty()])
    assert result.files[0].url.endswith(".CSV.gz")


def test_unknown_format_suggests_the_closest(tmp_path: Path) -> None:
    with pytest.raises(pe.ConfigError, match="did you mean 'csv'") as info:
        pe.export([], str(tmp_path), format="cvs")
    assert info.value.field == "destination.format"
