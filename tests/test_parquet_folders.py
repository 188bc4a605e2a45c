"""A folder of Parquet files whose files differ (issue 16, item 9): its schema is the union of the files'.

A column a later file adds is exported (null in the rows of the files without it); a column whose type
changes between files follows the mixed-type rule of docs/output.md (merged type; values turned to
text counted in ``values_as_text``). Every test writes real Parquet files with pyarrow, exports them
and reads the files back with independent readers.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import profile_exports as pe
from profile_exports.errors import DataError
from profile_exports.sources.files import ParquetSourceFactory
from profile_exports.sources.synthetic_data import generate_profiles

from .formats import read_rows

IDENTIFIERS = {"select": ["Identity"], "clevertap_id": True}


def _folder(tmp_path: Path, *tables: pa.Table) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for number, table in enumerate(tables):
        pq.write_table(table, folder / f"part-{number}.parquet")
    return folder


def _export(folder: Path | str, out: Path, fmt: str = "json", **settings: Any) -> pe.ExportResult:
    source = {"kind": "parquet", "path": str(folder), **settings.pop("source", {})}
    return pe.export(None, out, source=source, format=fmt, compression="none", identifiers=IDENTIFIERS, **settings)


def _by_id(result: pe.ExportResult) -> dict[str, dict[str, Any]]:
    return {row["clevertapId"]: row for row in read_rows(result)}


def test_a_column_a_later_file_adds_is_exported(tmp_path: Path) -> None:
    folder = _folder(
        tmp_path,
        pa.table({"profile_id": ["a1", "a2"], "Name": ["Ada", "Al"]}),
        pa.table({"profile_id": ["b1"], "Name": ["Bob"], "Plan": ["pro"]}),
    )
    result = _export(folder, tmp_path / "out")
    assert "Plan" in result.columns
    rows = _by_id(result)
    assert [rows[i]["Plan"] for i in ("a1", "a2", "b1")] == [None, None, "pro"]
    assert [rows[i]["Name"] for i in ("a1", "a2", "b1")] == ["Ada", "Al", "Bob"]
    assert result.values_as_text == {}


def test_a_column_whose_type_changes_between_files_is_text_and_counted(tmp_path: Path) -> None:
    folder = _folder(
        tmp_path,
        pa.table({"profile_id": ["a1", "a2", "a3"], "Age": pa.array([31, 32, None], pa.int64())}),
        pa.table({"profile_id": ["b1"], "Age": ["thirty"]}),
    )
    result = _export(folder, tmp_path / "out")
    rows = _by_id(result)
    assert [rows[i]["Age"] for i in ("a1", "a2", "a3", "b1")] == ["31", "32", None, "thirty"]
    assert result.values_as_text == {"Age": 2}  # the two integers written as text; a null stays null


def test_integers_and_floats_in_different_files_are_floats_and_not_counted(tmp_path: Path) -> None:
    folder = _folder(
        tmp_path,
        pa.table({"profile_id": ["a1"], "Score": pa.array([3], pa.int32())}),
        pa.table({"profile_id": ["b1"], "Score": [2.5]}),
    )
    result = _export(folder, tmp_path / "out")
    rows = _by_id(result)
    assert [rows[i]["Score"] for i in ("a1", "b1")] == [3.0, 2.5]
    assert all(isinstance(rows[i]["Score"], float) for i in ("a1", "b1"))
    assert result.values_as_text == {}


def test_the_source_declares_the_union_of_its_files_schemas(tmp_path: Path) -> None:
    folder = _folder(
        tmp_path,
        pa.table({"profile_id": ["a1"], "Age": pa.array([31], pa.int64())}),
        pa.table({"profile_id": ["b1"], "Plan": ["pro"], "Age": ["thirty"]}),
    )
    source = ParquetSourceFactory()({"path": str(folder)}, batch_size=10)
    schema = source.schema()
    assert schema is not None
    assert [(f.name, f.type) for f in schema] == [
        ("profile_id", pa.string()),
        ("Age", pa.string()),
        ("Plan", pa.string()),
    ]
    # Each file is read with its own types: the exporter turns them to the declared ones, counting.
    assert [b.schema.names for b in source.read(0)] == [["profile_id", "Age"], ["profile_id", "Plan", "Age"]]


def _synthetic_with_a_new_property(count: int) -> tuple[pa.Table, pa.Table]:
    """Canonical profiles (a ``properties`` struct), split in two; the second half has one property more."""
    table = pa.Table.from_batches(list(generate_profiles(count, seed=3, batch_size=count)))
    properties = table.column("properties").combine_chunks()
    wider = pa.StructArray.from_arrays(
        [*properties.flatten(), pa.array([f"new-{i}" for i in range(count)])],
        names=[*properties.type.names, "NewProp"],
        mask=properties.is_null(),
    )
    with_new = table.set_column(table.schema.get_field_index("properties"), "properties", wider)
    half = count // 2
    return table.slice(0, half), with_new.slice(half)


def test_a_property_a_later_file_adds_to_the_properties_struct_is_exported(tmp_path: Path) -> None:
    first, second = _synthetic_with_a_new_property(40)
    folder = _folder(tmp_path, first, second)
    result = _export(folder, tmp_path / "out", fmt="csv")
    assert "NewProp" in result.columns
    rows = _by_id(result)
    ids = first["profile_id"].to_pylist() + second["profile_id"].to_pylist()
    assert len(rows) == 40
    expected = [""] * 20 + [f"new-{i}" for i in range(20, 40)]  # CSV: a missing value is an empty cell
    assert [rows[i]["NewProp"] for i in ids] == expected
    assert [rows[i]["Name"] for i in ids] == [
        (p or {}).get("Name") or "" for p in first["properties"].to_pylist() + second["properties"].to_pylist()
    ]


def test_a_struct_property_whose_keys_differ_between_files_keeps_each_value_s_own_keys(tmp_path: Path) -> None:
    folder = _folder(
        tmp_path,
        pa.table({"profile_id": ["a1"], "address": [{"city": "Oslo"}]}),
        pa.table({"profile_id": ["b1"], "address": [{"city": "Rome", "zip": "00100"}]}),
    )
    rows = _by_id(_export(folder, tmp_path / "out"))
    assert rows["a1"]["address"] == {"city": "Oslo"}  # never {"city": "Oslo", "zip": null}
    assert rows["b1"]["address"] == {"city": "Rome", "zip": "00100"}


def test_differing_files_in_partitions_of_worker_processes_count_the_same(tmp_path: Path) -> None:
    tables = [
        pa.table({"profile_id": [f"{n}-{i}" for i in range(50)], "Age": pa.array(range(50), pa.int64())})
        for n in range(3)
    ]
    tables.append(
        pa.table({"profile_id": [f"3-{i}" for i in range(50)], "Age": ["unknown"] * 50, "Plan": ["pro"] * 50})
    )
    folder = _folder(tmp_path, *tables)
    serial = _export(folder, tmp_path / "serial", source={"partitions": 2}, executor="serial")
    processes = _export(folder, tmp_path / "processes", source={"partitions": 2}, executor="processes", workers=2)
    assert serial.values_as_text == processes.values_as_text == {"Age": 150}
    assert _by_id(serial) == _by_id(processes)
    assert len(_by_id(processes)) == 200


def test_a_folder_on_an_fsspec_filesystem_is_read_the_same(tmp_path: Path) -> None:
    import fsspec

    lake = fsspec.filesystem("memory")
    tables = [
        pa.table({"profile_id": ["a1", "a2"], "Age": pa.array([31, 32], pa.int64())}),
        pa.table({"profile_id": ["b1"], "Age": ["thirty"], "Plan": ["pro"]}),
    ]
    for number, table in enumerate(tables):
        with lake.open(f"/lake-{tmp_path.name}/part-{number}.parquet", "wb") as handle:
            pq.write_table(table, handle)
    try:
        remote = _export(f"memory://lake-{tmp_path.name}", tmp_path / "remote")
    finally:
        lake.rm(f"/lake-{tmp_path.name}", recursive=True)
    local = _export(_folder(tmp_path, *tables), tmp_path / "local")
    assert _by_id(remote) == _by_id(local)
    assert _by_id(remote)["b1"]["Plan"] == "pro"
    assert remote.values_as_text == local.values_as_text == {"Age": 2}


@pytest.mark.parametrize("broken", [b"not parquet at all", b"PAR1" + b"\0" * 64])
@pytest.mark.parametrize("name", ["part-9.parquet", "a-first.parquet"])  # after the good file; the first
def test_a_file_that_is_not_parquet_fails_naming_the_file(tmp_path: Path, broken: bytes, name: str) -> None:
    folder = _folder(tmp_path, pa.table({"profile_id": ["a1"], "Name": ["Ada"]}))
    (folder / name).write_bytes(broken)
    with pytest.raises(DataError, match=rf"{re.escape(name)}.*replace or remove"):
        _export(folder, tmp_path / "out")
    assert not list((tmp_path / "out").rglob("*.json"))
