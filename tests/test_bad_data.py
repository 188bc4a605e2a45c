"""Bad data: each kind has one documented outcome (docs/guarantees.md), the same in every format, and
a run that stops on bad data leaves no file and no manifest behind."""

from __future__ import annotations

import gzip
import json
import math
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import profile_exports as pe
from profile_exports.errors import DataError
from profile_exports.manifest import read_manifests

from .formats import read_rows, unnest

FORMATS = ["csv", "json", "xml", "parquet"]


def rows_of(result: pe.ExportResult) -> list[dict[str, Any]]:
    rows = read_rows(result)
    return [unnest(r) for r in rows] if result.format == "parquet" else rows


def files_in(out: str) -> list[Path]:
    return [p for p in Path(out).rglob("*") if p.is_file()] if Path(out).exists() else []


@pytest.mark.parametrize("fmt", FORMATS)
def test_records_without_an_id_fail_the_run_or_are_skipped_and_counted(out: str, fmt: str) -> None:
    records = [{"properties": {"a": 1}}, {"profile_id": "", "properties": {"a": 2}}, {"profile_id": None}]
    records += [{"profile_id": "ok"}]
    with pytest.raises(DataError, match=r"record 0 has no 'profile_id'.*bad_records = \"skip\""):
        pe.export(records, out, format=fmt)
    assert not files_in(out)
    result = pe.export(records, out, format=fmt, bad_records="skip")
    assert result.rows == 1 and result.rejected_count == 3
    assert [r.record for r in result.rejected] == [0, 1, 2]
    assert [r["clevertapId"] for r in rows_of(result)] == ["ok"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_profile_id_repeated_in_a_run_is_exported_once_per_record(out: str, fmt: str) -> None:
    # The source is the truth: the export does not choose between two records of one profile.
    records = [{"profile_id": "p1", "properties": {"v": "first"}}, {"profile_id": "p1", "properties": {"v": "second"}}]
    result = pe.export(records, out, format=fmt)
    assert [(r["clevertapId"], r["v"]) for r in rows_of(result)] == [("p1", "first"), ("p1", "second")]


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": [1, 2, {"k": "v"}]}
    for level in range(depth):
        value = {f"level{level}": value}
    return value


@pytest.mark.parametrize("fmt", FORMATS)
def test_deeply_nested_values_are_exported_whole(out: str, fmt: str) -> None:
    deep = _nested(60)
    result = pe.export([{"profile_id": "p1", "properties": {"deep": deep}}], out, format=fmt)
    (row,) = rows_of(result)
    value = row["deep"]
    if isinstance(value, str):  # CSV and XML hold nested values as compact JSON text
        value = json.loads(value)
    assert value == deep


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_ten_megabyte_value_round_trips(out: str, fmt: str) -> None:
    big = "0123456789abcdef" * 655_360  # 10 MiB
    records = [{"profile_id": "p1", "properties": {"big": big, "n": 1}}, {"profile_id": "p2"}]
    result = pe.export(records, out, format=fmt)
    rows = rows_of(result)
    assert rows[0]["big"] == big and len(rows) == 2


def test_bytes_are_text_when_they_are_utf8_and_bad_records_when_not(out: str) -> None:
    records = [
        {"profile_id": "p1", "properties": {"b": "café".encode()}},
        {"profile_id": "p2", "properties": {"b": b"\xff\xfe-not-utf8"}},
        {"profile_id": "p3", "properties": {"b": None}},
    ]
    with pytest.raises(DataError, match=r"record 1 field 'properties\.b' holds bytes that are not UTF-8 text"):
        pe.export(records, out, format="csv")
    assert not files_in(out)
    for fmt in FORMATS:
        result = pe.export(records, f"{out}/{fmt}", format=fmt, bad_records="skip")
        assert [r.record for r in result.rejected] == [1]
        assert [(r["clevertapId"], r["b"] or None) for r in rows_of(result)] == [("p1", "café"), ("p3", None)]


@pytest.mark.parametrize("fmt", FORMATS)
def test_nan_and_infinity_are_kept_and_spelt_out_in_text(out: str, fmt: str) -> None:
    record = {"profile_id": "p1", "properties": {"nan": math.nan, "inf": math.inf, "ninf": -math.inf, "x": 1.5}}
    (row,) = rows_of(pe.export([record], out, format=fmt))
    if fmt == "parquet":
        assert math.isnan(row["nan"]) and row["inf"] == math.inf and row["ninf"] == -math.inf
    elif fmt == "json":  # JSON has no such numbers: null, counted (tests/test_values_meaning.py)
        assert (row["nan"], row["inf"], row["ninf"]) == (None, None, None)
    elif fmt == "csv":  # bare words engines read as floats (docs/loading.md)
        assert (row["nan"], row["inf"], row["ninf"]) == ("NaN", "inf", "-inf")
    else:  # XML spells them out
        assert (row["nan"], row["inf"], row["ninf"]) == ("NaN", "Infinity", "-Infinity")
    assert row["x"] in (1.5, "1.5")


NAMES = [" leading space", "trailing space ", "tab\there", "slash/name", "back\\slash", "nul\x00byte", "dot.name"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_property_names_with_whitespace_tabs_slashes_and_nul_keep_their_exact_names(out: str, fmt: str) -> None:
    properties = {name: i for i, name in enumerate(NAMES)}
    result = pe.export([{"profile_id": "p1", "properties": properties}], out, format=fmt)
    assert [c for c in result.columns if c in properties] == NAMES
    (row,) = rows_of(result)
    # XML 1.0 cannot hold a NUL character at all: it is written as "-" there (docs/output.md)
    key = {name: name.replace("\x00", "-") if fmt == "xml" else name for name in NAMES}
    value = {name: i if fmt in ("json", "parquet") else str(i) for name, i in properties.items()}
    assert {name: row[key[name]] for name in NAMES} == value


@pytest.mark.parametrize("fmt", FORMATS)
def test_mixed_types_in_one_property_are_all_kept_as_text_and_counted(out: str, fmt: str) -> None:
    records = [{"profile_id": f"p{i}", "properties": {"v": v}} for i, v in enumerate([1, "two", 3.5, True, None])]
    result = pe.export(records, out, format=fmt)
    assert result.values_as_text == {"v": 3}
    values = [r["v"] for r in rows_of(result)]
    assert values[:4] == ["1", "two", "3.5", "true"] and values[4] in (None, "")


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_run_that_meets_bad_data_midway_writes_no_manifest_and_no_partial_file(tmp_path: Path, fmt: str) -> None:
    # A Parquet input declares its schema, so records are checked as they stream: the bad one comes
    # after several files were committed.
    source = tmp_path / "in.parquet"
    good = 70_000 if fmt == "parquet" else 3000  # Parquet buffers a row group (65,536 rows) before writing
    notes = [os.urandom(50).hex().encode() for _ in range(good)] + [b"\xff-not-utf8"]  # incompressible
    table = pa.table({"profile_id": [f"p{i}" for i in range(good + 1)], "note": pa.array(notes, pa.binary())})
    pq.write_table(table, source, row_group_size=500)
    out = str(tmp_path / "out")
    with pytest.raises(DataError, match=rf"record {good} field 'properties\.note' holds bytes that are not UTF-8"):
        pe.export(str(source), out, format=fmt, batch_size=500, max_file_mb=0.05, executor="serial")
    written = files_in(out)
    assert written, "files were committed before the bad record"
    assert not read_manifests(out)  # no manifest: the run does not pass for a complete one
    for path in written:  # and every file at a final name is whole
        data = path.read_bytes()
        if fmt == "parquet":
            assert pq.read_table(path).num_rows > 0
        else:
            assert gzip.decompress(data)
