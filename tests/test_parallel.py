"""Partitions in parallel worker processes: the same rows as one process, one manifest for all files.

Real worker processes (a fork server), real files read back with the stdlib csv reader.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import profile_exports as pe
from profile_exports.center import ExportCenter
from profile_exports.errors import ConfigError, DataError
from profile_exports.hookspecs import hookimpl
from profile_exports.sources.synthetic_data import generate_profiles

from .conftest import read_csv
from .test_center import (
    DAY,
    T0,
    Local,
    change_one_percent,
    make_profiles,
    manifests,
    rows_by_id,
    run_rows,
    settings,
    write_jsonl,
)

IDENTIFIERS = {"select": ["Identity", "Email", "Phone"]}


def synthetic_table(count: int) -> pa.Table:
    return pa.Table.from_batches(list(generate_profiles(count, seed=4, batch_size=1000)))


def exported_rows(result: Any) -> list[tuple[tuple[str, str], ...]]:
    """Every row of a run, as sorted (column, value) pairs, in no particular order."""
    rows = [tuple(sorted(row.items())) for f in result.files for row in read_csv(f.url)[1]]
    return sorted(rows)


def manifest_of(result: Any) -> dict[str, Any]:
    return json.loads(Path(result.manifest.url).read_text())


@pytest.mark.parametrize("files", [1, 3], ids=["row-groups", "files"])
def test_partitions_in_processes_write_the_same_rows_as_one_process(tmp_path: Path, files: int) -> None:
    table = synthetic_table(3000)
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(files):  # one file of 8 row groups, or 3 files
        part = table.slice(i * len(table) // files, len(table) // files)
        pq.write_table(part, folder / f"part-{i}.parquet", row_group_size=400)
    source = {"kind": "parquet", "path": str(folder / "*.parquet")}

    single = pe.export(None, tmp_path / "one", source=source, identifiers=IDENTIFIERS, executor="serial")
    parallel = pe.export(
        None, tmp_path / "many", source={**source, "partitions": 3}, identifiers=IDENTIFIERS, executor="processes"
    )

    assert [p.instance_id for p in parallel.partitions] == [0, 1, 2]
    workers = {p.worker for p in parallel.partitions}
    assert None not in workers and f"{socket.gethostname()}:{os.getpid()}" not in workers  # other processes
    assert [p.worker for p in single.partitions] == [None]
    assert all(p.rows > 0 for p in parallel.partitions)
    assert parallel.rows == single.rows == 3000
    assert exported_rows(parallel) == exported_rows(single)
    # every file of every partition, and nothing else, is in the run's one manifest
    listed = {f["key"] for f in manifest_of(parallel)["files"]}
    assert listed == {f.key for f in parallel.files}
    on_disk = {p.relative_to(tmp_path / "many").as_posix() for p in (tmp_path / "many").rglob("*.csv.gz")}
    assert listed == on_disk
    assert {f.partition for f in parallel.files} == {0, 1, 2}
    assert {int(key.split("-")[-2]) for key in listed} == {0, 1, 2}  # instance id in every name


def test_hash_split_keeps_each_profile_in_one_partition(tmp_path: Path) -> None:
    profiles = make_profiles(1500)
    path = tmp_path / "profiles.jsonl"
    write_jsonl(path, profiles)
    source = {"kind": "jsonl", "path": str(path), "partitions": 2, "split": "hash"}
    result = pe.export(None, tmp_path / "out", source=source, identifiers=IDENTIFIERS, executor="processes")
    by_partition: dict[int, set[str]] = {}
    for f in result.files:
        by_partition.setdefault(f.partition, set()).update(r["clevertapId"] for r in read_csv(f.url)[1])
    assert set(by_partition) == {0, 1}
    assert not by_partition[0] & by_partition[1]
    assert by_partition[0] | by_partition[1] == {p["profile_id"] for p in profiles}
    assert 500 < len(by_partition[0]) < 1000  # a hash, not one partition taking everything


def test_incremental_runs_over_partitions_in_processes(tmp_path: Path) -> None:
    source = tmp_path / "profiles.jsonl"
    profiles = make_profiles(2000)
    write_jsonl(source, profiles)
    center = ExportCenter(tmp_path / "home", state=str(tmp_path / "state"))
    config = settings(source, str(tmp_path / "out"), execution={"executor": "processes"})
    config["source"] = {"kind": "jsonl", "path": str(source), "partitions": 2, "split": "hash"}
    record = center.create(config, now=T0)
    dest = Local(tmp_path / "out")

    (first,) = center.run_due(now=T0)
    assert first.record.rows == 2000
    assert {p.instance_id for p in first.result.partitions} == {0, 1}
    state = sorted(p.relative_to(tmp_path / "state").as_posix() for p in (tmp_path / "state").rglob("*.parquet"))
    assert state == [f"{record.id}/run-000001/instance={i}/fingerprints.parquet" for i in (0, 1)]

    profiles2, changed = change_one_percent(profiles)
    write_jsonl(source, profiles2)
    (second,) = center.run_due(now=T0 + DAY)
    m2 = manifests(dest)[-1]
    assert m2.mode == "incremental" and m2.profiles_seen == 2020
    assert set(rows_by_id(run_rows(dest, m2, tmp_path))) == changed
    assert second.record.rows == 40


def test_a_failing_partition_fails_the_run_with_its_error(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", make_profiles(100))
    (folder / "b.jsonl").write_text('{"profile_id": "ok"}\n{not json\n')
    source = {"kind": "jsonl", "path": str(folder / "*.jsonl"), "partitions": 2}
    with pytest.raises(DataError, match=r"b\.jsonl: line 2 is not valid JSON"):
        pe.export(None, tmp_path / "out", source=source, executor="processes")
    assert not list((tmp_path / "out").rglob("*-manifest.json"))  # not a complete run


class _Collect:
    def __init__(self) -> None:
        self.keys: list[str] = []

    @hookimpl
    def file_committed(self, run: Any, file: Any) -> None:
        self.keys.append(file.key)


def test_hooks_hear_of_every_file_and_memory_destinations_stay_in_process(tmp_path: Path) -> None:
    table = synthetic_table(900)
    pq.write_table(table, tmp_path / "in.parquet", row_group_size=100)
    source = {"kind": "parquet", "path": str(tmp_path / "in.parquet"), "partitions": 3}
    collect = _Collect()
    result = pe.export(None, tmp_path / "out", source=source, plugins=[collect])  # auto: processes
    assert len(result.partitions) == 3 and sorted(collect.keys) == sorted(f.key for f in result.files)

    with pytest.raises(ConfigError, match="memory://"):
        pe.export(None, "memory://parallel", source=source, executor="processes")
    assert pe.export(None, "memory://parallel-auto", source=source).rows == 900  # auto: in this process


def test_workers_see_the_environment_of_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pq.write_table(synthetic_table(600), tmp_path / "in.parquet", row_group_size=100)
    source = {"kind": "parquet", "path": str(tmp_path / "in.parquet"), "partitions": 2}
    pe.export(None, tmp_path / "warm", source=source, executor="processes")  # the fork server is up now
    monkeypatch.setenv("PE_PARALLEL_INPUT", str(tmp_path / "in.parquet"))  # set after it started
    result = pe.export(None, tmp_path / "out", source={**source, "path": "${PE_PARALLEL_INPUT}"}, executor="processes")
    assert result.rows == 600 and all(p.worker for p in result.partitions)
