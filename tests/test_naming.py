"""Folder layouts and file names (DESIGN section 6), with ``FileNamer`` and with real runs."""

from __future__ import annotations

import calendar
import csv
import gzip
import io
import random
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import profile_exports
from profile_exports.config import ExportConfig
from profile_exports.naming import FileNamer

ACCOUNT = "100000000"
EXPORT_ID = "1761651721"
# Half an hour before midnight UTC: 2025-10-04 already in India, still 2025-10-03 in California.
LATE = datetime(2025, 10, 3, 23, 30, tzinfo=UTC)
LATE_TS = str(calendar.timegm((2025, 10, 3, 23, 30, 0)))
# Two hours after midnight UTC: 2025-10-04 in UTC, still 2025-10-03 in California.
EARLY = datetime(2025, 10, 4, 2, 0, tzinfo=UTC)
ALL_VARIABLES = "{{Account-id}}/{{Export-id}}/{{Timestamp}}/{{Instance-id}}/{{Date}}"
DEFAULT_NAME = re.compile(
    r"(?P<account>[^-]+)-(?P<export>\d+)-(?P<ts>\d+)-(?P<instance>\d+)-(?P<part>\d{5})\.(?P<ext>.+)"
)


def _namer(now: datetime = LATE, export_id: str = EXPORT_ID, **destination: Any) -> FileNamer:
    config = ExportConfig.from_mapping(
        {"account_id": ACCOUNT, "destination": {"url": "memory://bucket/prefix", **destination}}
    )
    return FileNamer(config, export_id, now)


def test_timestamp_constant_is_epoch_seconds() -> None:
    assert LATE_TS == "1759534200"
    assert _namer().timestamp == LATE_TS


# -- folder layouts ---------------------------------------------------------------------------------


def test_root_layout_has_no_folder() -> None:
    namer = _namer(folders="root")
    assert namer.folder(0) == ""
    assert namer.key(0, 0, "csv.gz") == namer.file_name(0, 0, "csv.gz")
    assert not namer.key(0, 0, "csv.gz").startswith("/")


def test_default_layout_is_root() -> None:
    assert _namer().folder(0) == ""


def test_data_type_layout_is_profile() -> None:
    namer = _namer(folders="data_type")
    assert namer.folder(0) == "profile"
    assert namer.folder(7) == "profile"
    assert namer.key(0, 0, "csv.gz") == f"profile/{ACCOUNT}-{EXPORT_ID}-{LATE_TS}-0-00000.csv.gz"


def test_export_id_layout_is_the_export_id() -> None:
    namer = _namer(folders="export_id")
    assert namer.folder(0) == EXPORT_ID
    assert namer.folder(5) == EXPORT_ID
    assert _namer(folders="export_id", export_id="42").folder(0) == "42"


@pytest.mark.parametrize(
    ("now", "zone", "date"),
    [
        (LATE, None, "20251003"),
        (LATE, "UTC", "20251003"),
        (LATE, "Asia/Kolkata", "20251004"),
        (LATE, "America/Los_Angeles", "20251003"),
        (EARLY, None, "20251004"),
        (EARLY, "America/Los_Angeles", "20251003"),
        (EARLY, "Asia/Tokyo", "20251004"),
        # an aware `now` in another zone is still dated in UTC unless a zone is configured
        (datetime(2025, 10, 4, 1, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))), None, "20251003"),
        (datetime(2025, 10, 3, 20, 0, tzinfo=timezone(timedelta(hours=-5))), None, "20251004"),
    ],
)
def test_run_date_layout_is_the_run_date(now: datetime, zone: str | None, date: str) -> None:
    destination: dict[str, Any] = {"folders": "run_date"}
    if zone is not None:
        destination["timezone"] = zone
    namer = _namer(now, **destination)
    assert namer.folder(0) == date
    assert namer.date == date
    # the time zone changes only the date, never the epoch timestamp
    assert namer.timestamp == str(calendar.timegm(now.astimezone(UTC).timetuple()))


def test_the_zone_moves_the_date_across_midnight() -> None:
    in_utc = _namer(LATE, folders="run_date").folder(0)
    in_india = _namer(LATE, folders="run_date", timezone="Asia/Kolkata").folder(0)
    assert (in_utc, in_india) == ("20251003", "20251004")


def test_custom_layout_with_all_five_variables() -> None:
    namer = _namer(folders="custom", folder_template=ALL_VARIABLES)
    assert namer.folder(0) == f"{ACCOUNT}/{EXPORT_ID}/{LATE_TS}/0/20251003"
    assert namer.folder(23) == f"{ACCOUNT}/{EXPORT_ID}/{LATE_TS}/23/20251003"
    assert namer.key(3, 1, "json.gz") == (
        f"{ACCOUNT}/{EXPORT_ID}/{LATE_TS}/3/20251003/{ACCOUNT}-{EXPORT_ID}-{LATE_TS}-3-00001.json.gz"
    )


def test_custom_layout_uses_the_configured_zone_for_the_date() -> None:
    namer = _namer(folders="custom", folder_template="d-{{date}}/x_{{INSTANCE-ID}}", timezone="Asia/Kolkata")
    assert namer.folder(2) == "d-20251004/x_2"


def test_reference_example_folder() -> None:
    # "{{date}}/run-{{export-id}}" -> "20251003/run-1761650178"
    namer = _namer(
        datetime(2025, 10, 3, 9, 0, tzinfo=UTC),
        "1761650178",
        folders="custom",
        folder_template="{{date}}/run-{{export-id}}",
    )
    assert namer.folder(0) == "20251003/run-1761650178"


# -- file names -------------------------------------------------------------------------------------


def test_default_file_name() -> None:
    namer = _namer()
    assert namer.file_name(0, 0, "csv.gz") == f"{ACCOUNT}-{EXPORT_ID}-{LATE_TS}-0-00000.csv.gz"
    assert namer.file_name(17, 42, "parquet") == f"{ACCOUNT}-{EXPORT_ID}-{LATE_TS}-17-00042.parquet"
    match = DEFAULT_NAME.fullmatch(namer.file_name(5, 123, "json.gz"))
    assert match is not None
    assert match.groupdict() == {
        "account": ACCOUNT,
        "export": EXPORT_ID,
        "ts": LATE_TS,
        "instance": "5",
        "part": "00123",
        "ext": "json.gz",
    }


def test_custom_file_name_gets_timestamp_instance_and_part_appended() -> None:
    namer = _namer(file_name="profiles-{{Date}}")
    assert namer.file_name(0, 0, "csv.gz") == f"profiles-20251003-{LATE_TS}-0-00000.csv.gz"
    assert namer.file_name(4, 2, "xml.gz") == f"profiles-20251003-{LATE_TS}-4-00002.xml.gz"


def test_custom_file_name_with_a_typed_extension_is_not_doubled() -> None:
    namer = _namer(file_name="profiles-{{date}}-{{export-id}}.csv.gz")
    name = namer.file_name(0, 0, "csv.gz")
    assert name == f"profiles-20251003-{EXPORT_ID}-{LATE_TS}-0-00000.csv.gz"
    assert name.count(".csv") == 1
    assert name.count(".gz") == 1


def test_custom_file_name_with_all_variables_and_a_custom_folder() -> None:
    namer = _namer(
        folders="custom",
        folder_template="exports/{{Date}}",
        file_name="{{Account-id}}_{{Export-id}}_{{Timestamp}}_{{Instance-id}}_{{Date}}",
        timezone="Asia/Kolkata",
    )
    assert namer.key(9, 3, "csv.gz") == (
        f"exports/20251004/{ACCOUNT}_{EXPORT_ID}_{LATE_TS}_9_20251004-{LATE_TS}-9-00003.csv.gz"
    )


def test_part_numbers_sort_in_order() -> None:
    namer = _namer(folders="run_date")
    keys = [namer.key(0, part, "csv.gz") for part in range(0, 1200, 7)]
    assert sorted(keys) == keys
    assert len(set(keys)) == len(keys)
    custom = _namer(file_name="p-{{Date}}.csv.gz")
    names = [custom.file_name(0, part, "csv.gz") for part in (0, 1, 2, 9, 10, 11, 99, 100, 999, 1000, 9999, 10000)]
    assert sorted(names) == names


def test_the_same_run_gives_the_same_keys() -> None:
    for destination in (
        {},
        {"folders": "run_date", "timezone": "Asia/Kolkata"},
        {"folders": "custom", "folder_template": ALL_VARIABLES, "file_name": "p-{{Date}}.csv.gz"},
    ):
        first = [_namer(**destination).key(i, p, "csv.gz") for i in range(3) for p in range(3)]
        again = [_namer(**destination).key(i, p, "csv.gz") for i in range(3) for p in range(3)]
        assert first == again
        assert len(set(first)) == len(first)


def test_different_runs_give_different_keys() -> None:
    for destination in ({}, {"file_name": "profiles-{{Date}}-{{Export-id}}"}):
        earlier = _namer(LATE, **destination).key(0, 0, "csv.gz")
        later = _namer(LATE + timedelta(hours=1), **destination).key(0, 0, "csv.gz")
        assert earlier != later


# -- real runs --------------------------------------------------------------------------------------


def _records(count: int = 30, *, noisy: bool = False) -> list[dict[str, Any]]:
    rng = random.Random(7)
    return [
        {
            "profile_id": f"p{i:04d}",
            "identity": f"user_{i:04d}",
            "Name": f"Name {i}",
            **({"Notes": rng.randbytes(120).hex()} if noisy else {}),
        }
        for i in range(count)
    ]


def _all_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _files(root: Path) -> list[str]:
    """Data files: everything but run manifests."""
    return [f for f in _all_files(root) if not f.endswith("-manifest.json")]


def _rows(path: Path) -> list[dict[str, str]]:
    text = gzip.decompress(path.read_bytes()).decode("utf-8")
    return list(csv.DictReader(io.StringIO(text, newline="")))


def _export(root: Path, records: list[dict[str, Any]], now: datetime = LATE, **settings: Any) -> Any:
    return profile_exports.export(
        records,
        str(root),
        format="csv",
        account_id=ACCOUNT,
        export_id=EXPORT_ID,
        now=now,
        **settings,
    )


@pytest.mark.parametrize(
    ("settings", "folder"),
    [
        ({"folders": "root"}, ""),
        ({"folders": "data_type"}, "profile/"),
        ({"folders": "run_date"}, "20251003/"),
        ({"folders": "run_date", "timezone": "Asia/Kolkata"}, "20251004/"),
        ({"folders": "export_id"}, f"{EXPORT_ID}/"),
        ({"folders": "custom", "folder_template": ALL_VARIABLES}, f"{ACCOUNT}/{EXPORT_ID}/{LATE_TS}/0/20251003/"),
    ],
)
def test_a_run_writes_where_the_layout_says(tmp_path: Path, settings: dict[str, Any], folder: str) -> None:
    records = _records()
    result = _export(tmp_path, records, **settings)
    expected = f"{folder}{ACCOUNT}-{EXPORT_ID}-{LATE_TS}-0-00000.csv.gz"
    # The manifest sits in _manifests/ at the root for every layout: a data folder holds data files only.
    manifest = f"_manifests/{ACCOUNT}-{EXPORT_ID}-{LATE_TS}-manifest.json"
    assert _all_files(tmp_path) == sorted([expected, manifest])
    data_folder = tmp_path / folder
    assert sorted(p.name for p in data_folder.iterdir() if p.is_file()) == [Path(expected).name]
    assert result.manifest is not None and result.manifest.key == manifest
    assert [f.key for f in result.files] == [expected]
    assert Path(result.files[0].url).resolve() == (tmp_path / expected).resolve()
    assert [row["identity"] for row in _rows(tmp_path / expected)] == [r["identity"] for r in records]


def test_a_run_with_a_custom_folder_and_file_name(tmp_path: Path) -> None:
    result = _export(
        tmp_path,
        _records(),
        folders="custom",
        folder_template="{{Account-id}}/{{date}}/run-{{EXPORT-ID}}/i{{Instance-id}}/t{{Timestamp}}",
        file_name="profiles-{{date}}-{{export-id}}.csv.gz",
        timezone="Asia/Kolkata",
    )
    expected = (
        f"{ACCOUNT}/20251004/run-{EXPORT_ID}/i0/t{LATE_TS}/profiles-20251004-{EXPORT_ID}-{LATE_TS}-0-00000.csv.gz"
    )
    assert _files(tmp_path) == [expected]
    assert [f.key for f in result.files] == [expected]
    assert len(_rows(tmp_path / expected)) == 30


def test_rotated_files_sort_in_part_order_and_retries_rewrite_the_same_keys(tmp_path: Path) -> None:
    records = _records(400, noisy=True)
    settings = {"folders": "run_date", "max_file_mb": 0.004}
    first = _export(tmp_path, records, **settings)
    keys = [f.key for f in first.files]
    assert len(keys) >= 3, "the size cap should rotate files"
    assert keys == [f"20251003/{ACCOUNT}-{EXPORT_ID}-{LATE_TS}-0-{part:05d}.csv.gz" for part in range(len(keys))]
    assert _files(tmp_path) == sorted(keys) == keys
    # reading the files in key order gives the profiles in their original order
    rows = [row for key in sorted(keys) for row in _rows(tmp_path / key)]
    assert [row["identity"] for row in rows] == [r["identity"] for r in records]

    again = _export(tmp_path, records, **settings)
    assert [f.key for f in again.files] == keys
    assert _files(tmp_path) == keys  # rewritten in place, nothing added
    rows = [row for key in keys for row in _rows(tmp_path / key)]
    assert len(rows) == len(records)


def test_a_later_run_adds_new_keys(tmp_path: Path) -> None:
    first = _export(tmp_path, _records(), folders="export_id")
    second = _export(tmp_path, _records(), now=LATE + timedelta(days=1), folders="export_id")
    assert {f.key for f in first.files}.isdisjoint(f.key for f in second.files)
    later_ts = str(int(LATE_TS) + 86_400)
    assert _files(tmp_path) == [
        f"{EXPORT_ID}/{ACCOUNT}-{EXPORT_ID}-{LATE_TS}-0-00000.csv.gz",
        f"{EXPORT_ID}/{ACCOUNT}-{EXPORT_ID}-{later_ts}-0-00000.csv.gz",
    ]
