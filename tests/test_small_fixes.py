"""Issue 15, item 7: phones counted over exported rows, the mode a run really had, preview file names,
a closed stdout pipe, and a Parquet source split by rows.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import profile_exports as pe
from profile_exports import cli
from profile_exports.center import ExportCenter
from profile_exports.exporter import Preview
from profile_exports.registry import Registry
from profile_exports.sources.files import ParquetSourceFactory

from .conftest import read_csv
from .test_center import DAY, T0, make_profiles, settings, write_jsonl

ROOT = Path(__file__).resolve().parent.parent


# -- 1. phones not in E.164 are counted over the rows a run writes -----------------------------------


def _local_phones(profiles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every third profile with a phone written without its country code (not E.164)."""
    for i, profile in enumerate(profiles):
        if i % 3 == 0:
            profile["phone"] = f"555-{i:07d}"
    return profiles


@pytest.mark.parametrize("executor", ["serial", "processes"])
def test_an_incremental_run_counts_phones_of_the_rows_it_writes(tmp_path: Path, executor: str) -> None:
    source = tmp_path / "profiles.jsonl"
    profiles = _local_phones(make_profiles(300))
    write_jsonl(source, profiles)
    bad = sum(1 for p in profiles if not p["phone"].startswith("+"))
    assert bad == 100
    partitions = 2 if executor == "processes" else 1
    center = ExportCenter(tmp_path / "home", state=str(tmp_path / "state"))
    config = settings(
        source,
        str(tmp_path / "out"),
        source={"partitions": partitions},
        execution={"executor": executor},
    )
    record = center.create(config, now=T0)

    first = center.run(record.id, now=T0).result
    assert first is not None and first.rows == 300 and first.phones_not_e164 == 100

    # nothing changed: nothing written, so no phone of a written row is wrong
    unchanged = center.run(record.id, now=T0 + DAY).result
    assert unchanged is not None and unchanged.rows == 0 and unchanged.profiles_seen == 300
    assert unchanged.phones_not_e164 == 0
    assert all(p.phones_not_e164 == 0 for p in unchanged.partitions)
    assert "E.164" not in unchanged.summary()

    # four profiles change: two of them have a wrong phone
    for i in (0, 3, 1, 2):
        profiles[i]["properties"]["tier"] = "platinum"
    write_jsonl(source, profiles)
    changed = center.run(record.id, now=T0 + 2 * DAY).result
    assert changed is not None and changed.rows == 4
    assert changed.phones_not_e164 == 2
    assert sum(p.phones_not_e164 for p in changed.partitions) == 2


def test_a_full_run_still_counts_every_written_phone(tmp_path: Path) -> None:
    profiles = _local_phones(make_profiles(30))
    result = pe.export(profiles, tmp_path / "out", identifiers=["Phone"])
    assert result.rows == 30 and result.phones_not_e164 == 10


# -- 2. run 1 of an incremental export is recorded as the full run it is -------------------------------


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    return code, capsys.readouterr().out


def test_the_first_run_of_an_incremental_export_is_recorded_as_full(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "profiles.jsonl"
    write_jsonl(source, make_profiles(50))
    home = tmp_path / "home"
    center = ExportCenter(home)
    record = center.create(settings(source, str(tmp_path / "out")), now=T0)
    first = center.run(record.id, now=T0)
    assert first.record.mode == "full"
    assert "mode: full (manual)" in str(first)
    center.run(record.id, now=T0 + DAY)
    assert [(r.run, r.mode) for r in center.runs(record.id)] == [(1, "full"), (2, "incremental")]
    assert center.get(record.id).mode == "incremental"  # the export's mode stays what was configured

    code, out = _cli(capsys, "exports", "runs", record.id, "--home", str(home), "--json")
    assert code == 0 and [r["mode"] for r in json.loads(out)] == ["full", "incremental"]
    code, out = _cli(capsys, "exports", "runs", record.id, "--home", str(home))
    _header, *rows = out.splitlines()
    assert code == 0 and [row.split()[3] for row in rows] == ["full", "incremental"]
    code, out = _cli(capsys, "exports", "show", record.id, "--home", str(home), "--json")
    assert [r["mode"] for r in json.loads(out)["runs"]] == ["full", "incremental"]
    # and it is what the run's manifest says
    manifests = sorted(
        (json.loads(p.read_text()) for p in (tmp_path / "out").rglob("*-manifest.json")), key=lambda m: m["run"]
    )
    assert [m["mode"] for m in manifests] == ["full", "incremental"]


def test_a_failed_first_run_leaves_the_next_one_full(tmp_path: Path) -> None:
    source = tmp_path / "profiles.jsonl"
    center = ExportCenter(tmp_path / "home")
    write_jsonl(source, make_profiles(20))
    record = center.create(settings(source, str(tmp_path / "out")), now=T0)
    source.write_text("not json\n")
    with pytest.raises(Exception, match="not valid JSON"):
        center.run(record.id, now=T0)
    write_jsonl(source, make_profiles(20))
    center.run(record.id, now=T0 + DAY)
    center.run(record.id, now=T0 + 2 * DAY)
    assert [(r.status, r.mode) for r in center.runs(record.id)] == [
        ("Failed", "full"),
        ("Done", "full"),
        ("Done", "incremental"),
    ]


def test_runs_recorded_by_an_older_version_are_corrected(tmp_path: Path) -> None:
    source = tmp_path / "profiles.jsonl"
    write_jsonl(source, make_profiles(20))
    home = tmp_path / "home"
    center = ExportCenter(home)
    record = center.create(settings(source, str(tmp_path / "out")), now=T0)
    for day in range(3):
        center.run(record.id, now=T0 + day * DAY)
    full = center.create(settings(source, str(tmp_path / "out2"), schedule={"mode": "full"}), now=T0)
    center.run(full.id, now=T0)
    # what an older version wrote: every run of an incremental export "incremental", no schema version
    with sqlite3.connect(home / "registry.sqlite3") as db:
        db.execute("UPDATE runs SET mode = 'incremental' WHERE export_id = ?", (record.id,))
        db.execute("PRAGMA user_version = 0")
    registry = Registry(home)
    assert [r.mode for r in registry.runs(record.id)] == ["full", "incremental", "incremental"]
    assert [r.mode for r in registry.runs(full.id)] == ["full"]


# -- 3. preview: the first file name and the pattern of the others -------------------------------------


def test_preview_shows_the_first_file_and_the_part_pattern(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    users = [{"profile_id": f"p{i}", "identity": f"u{i}", "Name": "Ada"} for i in range(3)]
    now = datetime(2026, 1, 5, tzinfo=UTC)
    shown = pe.preview(
        users, destination=str(tmp_path / "out"), format="csv", export_id="1700000000", account_id="42", now=now
    )
    first = f"42-1700000000-{int(now.timestamp())}-0-00000.csv.gz"
    pattern = f"42-1700000000-{int(now.timestamp())}-0-{{part:05d}}.csv.gz"
    assert shown.file_names == (first,)  # the names a run surely writes: the first one
    assert shown.first_file == first and shown.file_pattern == pattern
    second = first.replace("-00000.", "-00001.")  # a second file is not promised
    assert second not in shown.to_text()
    assert first in shown.to_text() and pattern in shown.to_text()
    html = shown._repr_html_()
    assert first in html and pattern in html and second not in html
    assert shown.file_pattern.format(part=0) == first and shown.file_pattern.format(part=1) == second
    # a Preview built the old way still works
    old = Preview(destination="d", folder="", file_names=("a-00000.csv", "a-00001.csv"), columns=("x",), rows=())
    assert old.first_file == "a-00000.csv" and "a-00000.csv" in old.to_text()

    config = tmp_path / "export.toml"
    config.write_text(
        f'name = "p"\naccount_id = "42"\nexport_id = "1700000000"\n'
        f'[source]\nkind = "jsonl"\npath = "{tmp_path / "u.jsonl"}"\n'
        f'[destination]\nurl = "{tmp_path / "out"}"\nformat = "csv"\n[identifiers]\nselect = ["Identity"]\n'
    )
    write_jsonl(tmp_path / "u.jsonl", users)
    assert cli.main(["preview", str(config), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["file_names"]) == 1 and data["file_names"][0].endswith("-0-00000.csv.gz")
    assert data["file_pattern"].endswith("-0-{part:05d}.csv.gz")
    assert cli.main(["preview", str(config)]) == 0
    text = capsys.readouterr().out
    assert "-0-00000.csv.gz" in text and "-0-{part:05d}.csv.gz" in text and "-0-00001.csv.gz" not in text


# -- 4. a closed stdout pipe ends the command quietly -------------------------------------------------


def _closed_after_first_line(argv: list[str], env: dict[str, str]) -> tuple[str, str, int]:
    child = subprocess.Popen(
        [sys.executable, "-m", "profile_exports", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    assert child.stdout is not None and child.stderr is not None
    first = child.stdout.readline().decode()
    child.stdout.close()  # as `| head -1` does
    err = child.stderr.read().decode()
    child.stderr.close()
    return first, err, child.wait(timeout=120)


def test_a_closed_pipe_ends_the_command_without_a_traceback(tmp_path: Path) -> None:
    home = tmp_path / "home"
    registry = Registry(home)
    for n in range(400):  # far more output than a pipe buffers (64 KiB)
        registry.add(
            export_id=f"export-{n:04d}",
            name=f"daily profiles {n} " + "x" * 600,  # 400 x 600 bytes: the output cannot fit a pipe (64 KiB)
            account_id="100000000",
            sink="file",
            format="csv",
            destination=str(tmp_path / "out" / str(n)),
            frequency="recurring",
            every_hours=24,
            mode="incremental",
            settings={"name": f"daily profiles {n}", "padding": "x" * 200},
            withheld=(),
            now=T0,
        )
    env = {**os.environ, "PROFILE_EXPORTS_HOME": str(home)}
    for argv in (["exports", "list", "--json"], ["exports", "list"]):
        first, err, code = _closed_after_first_line(argv, env)
        assert first.strip() in ("[", "ID  NAME") or first.startswith("ID")
        assert "Traceback" not in err and "BrokenPipeError" not in err, err
        assert code == 1  # the documented recipe's status: the output did not all arrive


# -- 5. a Parquet source split by rows when it has fewer row groups than partitions -----------------------


def _parquet(path: Path, ids: list[str], row_group_size: int | None = None) -> list[str]:
    table = pa.table({"profile_id": pa.array(ids, pa.string()), "Name": [f"Name of {i}" for i in ids]})
    pq.write_table(table, path, row_group_size=row_group_size)
    return ids


def test_a_one_row_group_parquet_file_runs_in_every_partition(tmp_path: Path) -> None:
    ids = _parquet(tmp_path / "in.parquet", [f"__p{i:06d}" for i in range(1001)])
    assert pq.ParquetFile(tmp_path / "in.parquet").num_row_groups == 1
    source = {"kind": "parquet", "path": str(tmp_path / "in.parquet"), "partitions": 2}
    result = pe.export(None, tmp_path / "out", source=source, identifiers=["Identity"], executor="serial")
    by_partition: dict[int, list[str]] = {}
    for f in result.files:
        by_partition.setdefault(f.partition, []).extend(r["clevertapId"] for r in read_csv(f.url)[1])
    assert set(by_partition) == {0, 1}
    assert {int(f.key.split("-")[-2]) for f in result.files} == {0, 1}  # instance ids 0 and 1 in the names
    assert sorted(by_partition[0] + by_partition[1]) == ids  # every profile exactly once
    assert len(by_partition[0]) == 500 and len(by_partition[1]) == 501
    assert [p.rows for p in result.partitions] == [500, 501]


@pytest.mark.parametrize(
    ("files", "count", "row_group_size", "partitions"),
    [(1, 1001, None, 2), (1, 1000, 400, 5), (2, 700, None, 3), (1, 10, None, 16), (1, 0, None, 3)],
    ids=["one-group", "three-groups-five-partitions", "two-files", "more-partitions-than-rows", "empty"],
)
def test_row_ranges_cover_every_row_once_in_batches_of_at_most_batch_size(
    tmp_path: Path, files: int, count: int, row_group_size: int | None, partitions: int
) -> None:
    ids: list[str] = []
    for n in range(files):
        ids += _parquet(tmp_path / f"in-{n}.parquet", [f"{n}-{i:06d}" for i in range(count)], row_group_size)
    source = ParquetSourceFactory()({"path": str(tmp_path / "in-*.parquet"), "partitions": partitions}, batch_size=64)
    read: list[str] = []
    sizes = []
    total = files * count
    for partition in source.partitions():
        mine = list(source.read(partition))
        sizes += [b.num_rows for b in mine]
        read += [value for b in mine for value in b.column("profile_id").to_pylist()]
        share = (partition + 1) * total // partitions - partition * total // partitions
        assert sum(b.num_rows for b in mine) == share  # an even share for each partition
    assert read == ids  # contiguous ranges, in order: every row exactly once
    assert all(0 < size <= 64 for size in sizes)
