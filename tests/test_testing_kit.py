"""profile_exports.testing: the plugin-author kit holds the built-ins to its rules, catches plugins
that break them, and registers a plugin for exactly one test."""

from __future__ import annotations

import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import profile_exports as pe
from profile_exports import cli
from profile_exports.errors import ConfigError
from profile_exports.hookspecs import hookimpl
from profile_exports.plugins import load_components
from profile_exports.sinks.fsspec_sink import FsspecSinkFactory
from profile_exports.testing import check_sink, check_writer, plugin_registered
from profile_exports.writers.csv import CsvWriter

from .formats import READERS


@pytest.mark.parametrize("fmt", ["csv", "json", "xml", "parquet"])
def test_every_builtin_writer_passes_the_writer_conformance_suite(fmt: str, tmp_path: Path) -> None:
    check_writer(None, fmt, READERS[fmt], tmp_path)


def test_builtin_sinks_pass_the_sink_conformance_suite(tmp_path: Path) -> None:
    check_sink(None, str(tmp_path / "local"))
    check_sink(None, "memory://conformance")


# -- broken plugins are caught -------------------------------------------------------------------


class _LossyEncoderWriter(CsvWriter):
    """A CSV writer that loses the last row of every batch it is given."""

    name = "lossy"

    def open(self, **kwargs: Any) -> Any:
        inner = super().open(**kwargs)

        class Lossy:
            def write(self, batch: pa.RecordBatch) -> None:
                inner.write(batch.slice(0, max(0, batch.num_rows - 1)))

            def close(self) -> Any:
                return inner.close()

            def abort(self) -> None:
                inner.abort()

        return Lossy()


class _CapIgnoringWriter(CsvWriter):
    name = "uncapped"

    def open(self, **kwargs: Any) -> Any:
        return super().open(**{**kwargs, "max_file_bytes": 10**9})


def _writer_plugin(writer: Any) -> Any:
    @hookimpl
    def register_writers(register: Any) -> None:
        register(writer)

    return types.SimpleNamespace(register_writers=register_writers)


@pytest.mark.parametrize(
    ("writer", "broken_rule"),
    [(_LossyEncoderWriter(), "profiles exported"), (_CapIgnoringWriter(), "more than one file")],
)
def test_the_writer_suite_fails_a_writer_that_breaks_a_rule(writer: Any, broken_rule: str, tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match=broken_rule):
        check_writer(_writer_plugin(writer), writer.name, READERS["csv"], tmp_path)


class _EagerSinkFactory(FsspecSinkFactory):
    """Writes straight to the final key: a reader can see a file before it is whole."""

    name = "eager"
    protocols = ("eager",)

    def __call__(self, url: str, options: Mapping[str, Any], *, max_retries: int = 5) -> Any:
        sink = super().__call__(url.replace("eager://", "memory://", 1), options, max_retries=max_retries)
        real_open = sink.open

        def open_visible(key: str, **kwargs: Any) -> Any:
            file = real_open(key, **kwargs)
            real_write = file.write

            def write(data: Any) -> None:
                real_write(data)
                sink.fs.pipe(sink.path_of(key), b"partial")  # visible mid-write

            file.write = write
            return file

        sink.open = open_visible
        return sink


def test_the_sink_suite_fails_a_sink_that_shows_files_before_commit() -> None:
    @hookimpl
    def register_sinks(register: Any) -> None:
        register(_EagerSinkFactory())

    with pytest.raises(AssertionError, match="visible before commit"):
        check_sink(types.SimpleNamespace(register_sinks=register_sinks), "eager://bucket")


# -- registering a plugin for one test -----------------------------------------------------------


class _Renamed(CsvWriter):
    name = "csv-for-one-test"


def _formats() -> set[str]:
    return set(load_components()[1].writers)


def test_a_registered_plugin_is_found_everywhere_until_the_block_ends(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plugin = _writer_plugin(_Renamed())
    assert "csv-for-one-test" not in _formats()
    with plugin_registered(plugin, name="one-test-plugin") as name:
        assert name == "one-test-plugin"
        # no plugins= argument: found as installed entry-point plugins are
        result = pe.export([{"profile_id": "p1", "Name": "Ada"}], tmp_path, format="csv-for-one-test", progress=False)
        assert result.files[0].key.endswith(".csv.gz")
        assert cli.main(["plugins"]) == 0
        assert "one-test-plugin" in capsys.readouterr().out
    assert "csv-for-one-test" not in _formats()
    with pytest.raises(ConfigError, match="csv-for-one-test"):
        pe.export([{"profile_id": "p1"}], tmp_path / "after", format="csv-for-one-test", progress=False)


def test_a_registered_plugin_is_removed_even_when_the_test_fails() -> None:
    with pytest.raises(RuntimeError), plugin_registered(_writer_plugin(_Renamed())):
        assert "csv-for-one-test" in _formats()
        raise RuntimeError("the test failed")
    assert "csv-for-one-test" not in _formats()


def test_the_fixture_registers_for_this_test_only(register_plugin: Any, tmp_path: Path) -> None:
    register_plugin(_writer_plugin(_Renamed()))
    assert "csv-for-one-test" in _formats()
