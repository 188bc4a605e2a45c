"""End-to-end exports to local files, read back with the stdlib csv, json and gzip modules."""

from __future__ import annotations

import gzip
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pyarrow as pa
import pytest

import profile_exports as pe
from profile_exports.layout import DuplicateColumnWarning
from profile_exports.manifest import read_manifests

from .conftest import read_csv, read_jsonl, read_result

NOW = datetime(2025, 10, 3, 12, 0, tzinfo=UTC)

PROFILES = [
    # identity present: it wins
    {
        "profile_id": "p1",
        "identity": "user_1",
        "email": "one@example.com",
        "phone": "+15550000001",
        "properties": {"crm_id": "CRM-1", "Name": "Ada"},
    },
    # no identity: email is next
    {"profile_id": "p2", "email": "two@example.com", "phone": "+15550000002", "properties": {"crm_id": "CRM-2"}},
    # only a phone
    {"profile_id": "p3", "phone": "+15550000003"},
    # only the custom identifier, a property
    {"profile_id": "p4", "properties": {"crm_id": "CRM-4"}},
    # nothing at all
    {"profile_id": "p5"},
    # an empty identity counts as missing
    {"profile_id": "p6", "identity": "", "email": "six@example.com"},
    # several identity values
    {
        "profile_id": "p7",
        "identity": ["user_7a", "user_7b"],
        "email": "seven@example.com",
        "profile_ids": ["p7", "old7"],
    },
]
SELECT = ["Identity", "Email", "Phone", "crm_id"]


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_fallback_picks_first_available_identifier_in_priority_order(out: str, fmt: str) -> None:
    result = pe.export(PROFILES, out, format=fmt, identifiers={"select": SELECT}, now=NOW)
    rows = read_result(result)
    expected = ["user_1", "two@example.com", "+15550000003", "CRM-4", None, "six@example.com", "user_7a"]
    got = [r["identity"] for r in rows]
    if fmt == "csv":
        expected = [e or "" for e in expected]
    assert got == expected
    assert [r["clevertapId"] for r in rows] == [p["profile_id"] for p in PROFILES]


def test_fallback_follows_the_configured_order_not_a_fixed_one(out: str) -> None:
    result = pe.export(PROFILES, out, format="json", identifiers={"select": ["crm_id", "Phone", "Email"]}, now=NOW)
    assert [r["identity"] for r in read_result(result)] == [
        "CRM-1",
        "CRM-2",
        "+15550000003",
        "CRM-4",
        None,
        "six@example.com",
        "seven@example.com",
    ]


def test_all_values_mode_lists_every_identifier_in_priority_order(out: str) -> None:
    result = pe.export(
        PROFILES,
        out,
        format="json",
        now=NOW,
        identifiers={"select": SELECT, "values": "all", "all_identities": True, "clevertap_ids": True},
    )
    rows = read_result(result)
    assert [r["identity"] for r in rows] == [
        ["user_1", "one@example.com", "+15550000001", "CRM-1"],
        ["two@example.com", "+15550000002", "CRM-2"],
        ["+15550000003"],
        ["CRM-4"],
        None,
        ["six@example.com"],
        ["user_7a", "user_7b", "seven@example.com"],
    ]
    # all_identities: the account identities (Identity, Email, Phone) whatever is selected
    assert rows[0]["all_identities"] == ["user_1", "one@example.com", "+15550000001"]
    assert rows[3]["all_identities"] is None
    assert rows[6]["all_identities"] == ["user_7a", "user_7b", "seven@example.com"]
    # clevertapIds: the history when given, else the profile's own id
    assert rows[6]["clevertapIds"] == ["p7", "old7"]
    assert rows[0]["clevertapIds"] == ["p1"]
    assert list(rows[0])[:4] == ["identity", "all_identities", "clevertapId", "clevertapIds"]


def test_all_values_in_csv_are_json_lists(out: str) -> None:
    result = pe.export(PROFILES[:2], out, format="csv", identifiers={"select": ["Email", "Phone"], "values": "all"})
    _header, rows = read_csv(result.files[0].url)
    assert rows[0]["identity"] == '["one@example.com","+15550000001"]'


def test_column_order_is_identifiers_device_comm_prefs_then_properties(out: str) -> None:
    data = [
        {
            "profile_id": "p1",
            "identity": "u1",
            "device": {"token": "tok-1", "platform": "ios"},
            "comm_prefs": {"MSG-email": True, "MSG-push": False, "MSG-sms": None},
            "subscription_groups": {"newsletter": "Subscribed", "offers": "Unsubscribed"},
            "properties": {"Zeta": 1, "Name": "Ada"},
        }
    ]
    result = pe.export(
        data,
        out,
        format="json",
        now=NOW,
        identifiers={"select": ["Identity"], "clevertap_ids": True},
        properties={
            "device": ["token", "platform"],
            "comm_prefs": ["subscriptionGroups", "MSG-push", "MSG-email", "MSG-whatsapp"],
        },
    )
    (row,) = read_result(result)
    assert list(row) == [
        "identity",
        "clevertapId",
        "clevertapIds",
        "device",
        "subscriptionGroups",
        "MSG-push",
        "MSG-email",
        "MSG-whatsapp",
        "Zeta",
        "Name",
    ]
    assert row["device"] == {"token": "tok-1", "platform": "ios"}
    assert row["subscriptionGroups"] == {"newsletter": "Subscribed", "offers": "Unsubscribed"}
    assert row["MSG-push"] is False and row["MSG-email"] is True and row["MSG-whatsapp"] is None


def test_renamed_and_reordered_properties(out: str) -> None:
    data = [
        {
            "profile_id": "p1",
            "email": "a@example.com",
            "phone": "+15550000001",
            "properties": {"Name": "Ada", "Gender": "F", "Age": 36},
        }
    ]
    result = pe.export(
        data,
        out,
        format="csv",
        now=NOW,
        properties={
            "user": ["Name", "Gender", "Phone", "Age"],
            "rename": {"Phone": "Phone Number", "Age": "Years"},
            "order": ["Years", "Phone"],
        },
    )
    header, rows = read_csv(result.files[0].url)
    assert header[-4:] == ["Years", "Phone Number", "Name", "Gender"]
    assert rows[0]["Phone Number"] == "+15550000001"
    assert rows[0]["Years"] == "36"


def test_a_property_missing_from_every_profile_still_has_its_column(out: str) -> None:
    data = [{"profile_id": "p1", "Name": "Ada"}, {"profile_id": "p2"}]
    for fmt in ("csv", "json"):
        result = pe.export(data, f"{out}/{fmt}", format=fmt, properties={"user": ["Name", "Ghost"]})
        rows = read_result(result)
        assert all("Ghost" in r for r in rows)
        assert [r["Ghost"] for r in rows] == (["", ""] if fmt == "csv" else [None, None])
        assert rows[1]["Name"] in ("", None)


def test_a_device_without_token_leaves_the_token_blank(out: str) -> None:
    result = pe.export([{"profile_id": "p1"}], out, format="json")
    (row,) = read_result(result)
    assert row["device"] == {"token": None}


def test_duplicate_output_names_keep_the_later_property_with_a_warning(out: str) -> None:
    data = [{"profile_id": "p1", "properties": {"first": "A", "second": "B"}}]
    with pytest.warns(DuplicateColumnWarning, match="only the later one"):
        result = pe.export(data, out, format="json", properties={"rename": {"first": "X", "second": "X"}})
    (row,) = read_result(result)
    assert row["X"] == "B"
    assert list(row).count("X") == 1


def test_system_properties_selects_the_system_set_present_in_the_data(out: str) -> None:
    data = [
        {
            "profile_id": "p1",
            "email": "a@example.com",
            "properties": {"Name": "Ada", "Favourite Game": "Chess", "Age": 3},
        }
    ]
    result = pe.export(data, out, format="json", properties={"user": "system"})
    (row,) = read_result(result)
    assert [k for k in row if k not in ("identity", "clevertapId", "device")] == ["Name", "Email", "Age"]


UNICODE_VALUES = ["Zoë 👩🏽‍💻", "漢字 テスト", 'comma, "quote" and\nnewline', "émoji 🎉🎉", "", "tab\there", "Ω≈ç√"]


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_utf8_and_emoji_round_trip(out: str, fmt: str) -> None:
    data = [{"profile_id": f"p{i}", "identity": f"ü{i}", "Note": v} for i, v in enumerate(UNICODE_VALUES)]
    result = pe.export(data, out, format=fmt, properties={"user": ["Note"]})
    rows = read_result(result)
    assert [r["Note"] for r in rows] == UNICODE_VALUES
    assert [r["identity"] for r in rows] == [f"ü{i}" for i in range(len(UNICODE_VALUES))]


def test_csv_keeps_null_and_empty_string_apart(out: str) -> None:
    data = [{"profile_id": "p1", "Note": ""}, {"profile_id": "p2", "Note": None}]
    result = pe.export(data, out, format="csv", compression="none", properties={"user": ["Note"]})
    text = Path(result.files[0].url).read_text(encoding="utf-8")
    assert text.splitlines()[1].endswith(',""')
    assert text.splitlines()[2].endswith(",")


def test_gzip_is_the_default_and_standard(out: str) -> None:
    result = pe.export([{"profile_id": "p1", "Name": "Ada"}], out, format="json")
    f = result.files[0]
    assert f.url.endswith(".json.gz")
    assert gzip.decompress(Path(f.url).read_bytes()).startswith(b'{"identity"')
    plain = pe.export([{"profile_id": "p1", "Name": "Ada"}], out + "-plain", format="json", compression="none")
    assert plain.files[0].url.endswith(".json") and Path(plain.files[0].url).read_bytes().startswith(b"{")


def test_mixed_types_are_kept_as_text_and_counted(out: str) -> None:
    data = [{"profile_id": "p1", "age": 31}, {"profile_id": "p2", "age": "31"}, {"profile_id": "p3", "age": 30.5}]
    result = pe.export(data, out, format="json")
    assert [r["age"] for r in read_result(result)] == ["31", "31", "30.5"]
    assert result.values_as_text == {"age": 2}


def test_types_merge_across_batches_without_losing_values(out: str) -> None:
    data = [{"profile_id": f"p{i}", "score": i if i < 3 else f"s{i}"} for i in range(6)]
    result = pe.export(data, out, format="json", batch_size=3)
    assert [r["score"] for r in read_result(result)] == ["0", "1", "2", "s3", "s4", "s5"]
    assert result.values_as_text == {"score": 3}


# -- rotation -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "compression"), [("csv", "gzip"), ("json", "gzip"), ("csv", "none")])
def test_rotation_keeps_every_file_but_the_last_within_the_cap(out: str, fmt: str, compression: str) -> None:
    cap_mb = 0.05
    result = pe.export(
        None,
        out,
        source={"kind": "synthetic", "count": 3000, "seed": 3},
        format=fmt,
        compression=compression,
        max_file_mb=cap_mb,
        now=NOW,
    )
    cap = int(cap_mb * 1_000_000)
    assert len(result.files) >= 4
    sizes = [os.path.getsize(f.url) for f in result.files]
    assert sizes == [f.bytes for f in result.files]
    assert all(size <= cap for size in sizes[:-1])
    assert sum(sizes[:-1]) / len(sizes[:-1]) > cap * 0.8  # files are filled, not cut early
    rows = read_result(result)
    assert len(rows) == 3000 == result.rows == sum(f.rows for f in result.files)
    assert [r["clevertapId"] for r in rows] == [
        r["clevertapId"]
        for r in read_result(
            pe.export(None, out + "-one", source={"kind": "synthetic", "count": 3000, "seed": 3}, format=fmt, now=NOW)
        )
    ]
    if fmt == "csv":  # every file is complete on its own: a header, whole rows
        for f in result.files:
            header, _ = read_csv(f.url)
            assert header == list(result.columns)
    names = [Path(f.url).name for f in result.files]
    assert names == sorted(names)
    assert [f.part for f in result.files] == list(range(len(result.files)))


def test_a_row_bigger_than_the_cap_gets_a_file_of_its_own(out: str) -> None:
    data = [
        {"profile_id": "p1", "blob": "x"},
        {"profile_id": "p2", "blob": "y" * 30_000},
        {"profile_id": "p3", "blob": "z"},
    ]
    result = pe.export(data, out, format="json", compression="none", max_file_mb=0.01)
    assert [f.rows for f in result.files] == [1, 1, 1]
    assert [r["blob"][:1] for r in read_result(result)] == ["x", "y", "z"]


def test_an_export_with_no_rows_writes_one_file_with_the_header(out: str) -> None:
    result = pe.export([], out, format="csv", properties={"user": ["Name"]})
    assert result.rows == 0
    header, rows = read_csv(result.files[0].url)
    assert header == ["identity", "clevertapId", "device", "Name"] and rows == []


# -- sources --------------------------------------------------------------------------------------

FLAT = {
    "user_id": ["u1", "u2", "u3"],
    "email_address": ["a@example.com", None, "c@example.com"],
    "Name": ["Ada", "Bob", "Cy"],
    "Age": [36, None, 41],
}


def _flat_rows(result: pe.ExportResult) -> list[tuple[str, str, str, int]]:
    return [(r["clevertapId"], r["identity"], r["Name"], r["Age"]) for r in read_result(result)]


EXPECTED_FLAT = [("u1", "a@example.com", "Ada", 36), ("u2", None, "Bob", None), ("u3", "c@example.com", "Cy", 41)]
MAPPING = {"profile_id": "user_id", "email": "email_address"}


def test_arrow_table_with_mapping_exports_unmapped_columns_as_properties(out: str) -> None:
    result = pe.export(pa.table(FLAT), out, format="json", mapping=MAPPING, identifiers=["Email"])
    assert _flat_rows(result) == EXPECTED_FLAT
    assert result.columns[-3:] == ("Email", "Name", "Age")


def test_one_shot_record_batch_reader_is_read_once(out: str) -> None:
    table = pa.table(FLAT)
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=1))
    result = pe.export(reader, out, format="json", mapping=MAPPING, identifiers=["Email"])
    assert _flat_rows(result) == EXPECTED_FLAT


def test_pandas_and_polars_frames(out: str) -> None:
    pandas = pytest.importorskip("pandas")
    polars = pytest.importorskip("polars")
    for name, frame in (("pandas", pandas.DataFrame(FLAT)), ("polars", polars.DataFrame(FLAT))):
        result = pe.export(frame, f"{out}/{name}", format="json", mapping=MAPPING, identifiers=["Email"])
        rows = _flat_rows(result)
        assert [r[:3] for r in rows] == [e[:3] for e in EXPECTED_FLAT]
        assert [None if r[3] is None or r[3] != r[3] else int(r[3]) for r in rows] == [36, None, 41]


def test_generator_of_dicts_is_spooled_and_read_once(out: str) -> None:
    calls = []

    def records():
        calls.append(1)
        for i in range(250):
            yield {"profile_id": f"p{i}", "n": i, **({"late": "yes"} if i == 249 else {})}

    result = pe.export(records(), out, format="csv", batch_size=100)
    rows = read_result(result)
    assert len(calls) == 1
    assert [r["n"] for r in rows] == [str(i) for i in range(250)]
    assert rows[-1]["late"] == "yes" and rows[0]["late"] == ""  # a property first seen at the end has its column


def test_jsonl_and_parquet_files(tmp_path: Path, out: str) -> None:
    import json

    import pyarrow.parquet as pq

    jsonl = tmp_path / "users.jsonl.gz"
    with gzip.open(jsonl, "wt", encoding="utf-8") as handle:
        for row in pa.table(FLAT).to_pylist():
            handle.write(json.dumps(row) + "\n\n")
    pq.write_table(pa.table(FLAT), tmp_path / "users.parquet")
    for path in (jsonl, tmp_path / "users.parquet"):
        result = pe.export(str(path), f"{out}/{path.suffix}", format="json", mapping=MAPPING, identifiers=["Email"])
        assert _flat_rows(result) == EXPECTED_FLAT


def test_sql_source_end_to_end(tmp_path: Path, out: str) -> None:
    import sqlite3

    db = tmp_path / "crm.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table users (user_id text, email_address text, Name text, Age integer)")
        conn.executemany("insert into users values (?, ?, ?, ?)", list(zip(*FLAT.values(), strict=True)))
    result = pe.export(
        None,
        out,
        format="json",
        source={"kind": "sql", "url": f"sqlite:///{db}", "table": "users"},
        mapping=MAPPING,
        identifiers=["Email"],
    )
    assert _flat_rows(result) == EXPECTED_FLAT


# -- bad records ----------------------------------------------------------------------------------

BAD = [
    {"profile_id": "p0"},
    {"Name": "no id"},
    {"profile_id": "p2", "device": "not a mapping"},
    {"profile_id": ""},
    {"profile_id": "p4"},
]


def test_a_bad_record_fails_the_run_naming_the_record_and_writes_nothing(out: str) -> None:
    with pytest.raises(pe.DataError, match=r"record 1 has no 'profile_id'") as info:
        pe.export(BAD, out, format="csv")
    assert "bad_records" in str(info.value)
    assert not list(Path(out).rglob("*.csv.gz"))


def test_bad_records_can_be_skipped_counted_and_reported(out: str) -> None:
    result = pe.export(BAD, out, format="json", bad_records="skip")
    assert [r["clevertapId"] for r in read_result(result)] == ["p0", "p4"]
    assert result.rejected_count == 3
    assert [(r.record, r.reason.split(" ")[0]) for r in result.rejected] == [(1, "has"), (2, "field"), (3, "field")]
    assert "device" in result.rejected[1].reason


def test_arrow_rows_without_id_are_named_by_record_number(out: str) -> None:
    table = pa.table({"profile_id": ["a", None, "c"], "x": [1, 2, 3]})
    with pytest.raises(pe.DataError, match="record 1 has no profile_id"):
        pe.export(table, out, format="csv")
    result = pe.export(table, out, format="csv", bad_records="skip")
    assert result.rows == 2 and result.rejected[0].record == 1


# -- atomicity, destinations, preview ----------------------------------------------------------------


def test_a_run_that_fails_midway_leaves_no_partial_file(out: str) -> None:
    def records():
        for i in range(5000):
            yield {"profile_id": f"p{i}", "blob": "x" * 200}
        raise RuntimeError("source died")

    table = pa.table({"profile_id": [f"p{i}" for i in range(5000)]})
    with pytest.raises(RuntimeError, match="source died"):
        pe.export(records(), out, format="csv")
    assert not [p for p in Path(out).rglob("*") if p.is_file()]

    class Boom(Exception):
        pass

    def batches():
        yield from table.to_batches(max_chunksize=1000)
        raise Boom

    reader = pa.RecordBatchReader.from_batches(table.schema, batches())
    with pytest.raises(Boom):
        pe.export(reader, out, format="json", compression="none", max_file_mb=0.02)
    files = [p for p in Path(out).rglob("*") if p.is_file()]
    # the files committed before the failure are whole; nothing else is left behind
    assert files and all(not p.name.startswith(".") for p in files)
    for path in files:
        assert path.read_bytes().endswith(b"\n")
        read_jsonl(path)


def test_memory_destination(out: str) -> None:
    import fsspec

    result = pe.export(
        [{"profile_id": "p1", "Name": "Ada"}],
        "memory://bucket/exports",
        format="json",
        folders="data_type",
        export_id="42",
        now=NOW,
    )
    (f,) = result.files
    assert f.url.startswith("memory://bucket/exports/profile/0-42-")
    fs = fsspec.filesystem("memory")
    assert fs.cat_file(f.url).startswith(b"\x1f\x8b")
    assert [p for p in fs.find("/bucket/exports") if ".partial" in p or "probe" in p] == []


def test_preview_resolves_names_and_rows_without_writing(tmp_path: Path) -> None:
    config = pe.ExportConfig.from_mapping(
        {
            "account_id": "100000000",
            "export_id": "1761651721",
            "source": {"kind": "synthetic", "count": 50},
            "destination": {
                "url": str(tmp_path / "dest"),
                "folders": "custom",
                "folder_template": "{{date}}/run-{{export-id}}",
                "format": "csv",
            },
        }
    )
    shown = pe.preview(config, rows=3, now=NOW)
    assert shown.folder == "20251003/run-1761651721"
    assert shown.file_names[0] == "100000000-1761651721-1759492800-0-00000.csv.gz"
    assert len(shown.rows) == 3 and list(shown.rows[0]) == list(shown.columns)
    assert shown.columns[:3] == ("identity", "clevertapId", "device")
    assert not (tmp_path / "dest").exists()
    assert "20251003/run-1761651721" in shown.to_text()


def test_result_describes_files_and_partitions(out: str) -> None:
    result = pe.export(None, out, source={"kind": "synthetic", "count": 100, "partitions": 2}, format="csv")
    assert result.rows == 100 and [p.rows for p in result.partitions] == [50, 50]
    assert [f.partition for f in result.files] == [0, 1]
    assert all(len(f.sha256) == 64 for f in result.files)
    assert result.bytes == sum(os.path.getsize(f.url) for f in result.files)
    with pytest.raises(AttributeError):
        result.rows = 3  # type: ignore[misc]


def test_flat_table_identity_email_and_phone_columns_feed_the_identifiers(out: str) -> None:
    table = pa.table(
        {
            "profile_id": ["p1", "p2", "p3"],
            "Identity": ["u1", None, None],
            "Email": [None, "b@example.com", None],
            "Phone": [None, None, "+15550000003"],
        }
    )
    result = pe.export(
        table, out, format="json", identifiers={"select": ["Identity", "Email", "Phone"], "all_identities": True}
    )
    rows = read_result(result)
    assert [r["identity"] for r in rows] == ["u1", "b@example.com", "+15550000003"]
    assert [r["all_identities"] for r in rows] == [["u1"], ["b@example.com"], ["+15550000003"]]
    assert [r["Email"] for r in rows] == [None, "b@example.com", None]
    assert "Identity" not in rows[0]


def test_a_parquet_source_reads_only_the_columns_the_export_uses(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from profile_exports.exporter import Exporter
    from profile_exports.sources.synthetic_data import generate_profiles

    path = tmp_path / "canonical.parquet"
    pq.write_table(pa.Table.from_batches(list(generate_profiles(300, seed=2, batch_size=100))), path)
    lean = pe.ExportConfig.from_mapping(
        {"source": {"kind": "parquet", "path": str(path)}, "destination": {"url": str(tmp_path / "a")}}
    )
    assert {"profile_ids", "subscription_groups", "updated_at"}.isdisjoint(Exporter(lean)._open_source().schema().names)
    full = attrs.evolve(
        lean,
        identifiers=attrs.evolve(lean.identifiers, clevertap_ids=True),
        properties=attrs.evolve(lean.properties, comm_prefs=("MSG-push", "subscriptionGroups")),
    )
    assert {"profile_ids", "subscription_groups"} <= set(Exporter(full)._open_source().schema().names)
    rows = read_result(Exporter(full).run())
    table = pq.read_table(path)
    assert [json.loads(r["clevertapIds"]) for r in rows] == [
        ids or [pid] for ids, pid in zip(table["profile_ids"].to_pylist(), table["profile_id"].to_pylist(), strict=True)
    ]
    assert any(r["subscriptionGroups"] not in ("", "{}") for r in rows)
    lean_rows = read_result(Exporter(lean).run())
    assert [r["clevertapId"] for r in lean_rows] == [r["clevertapId"] for r in rows]


def test_runs_started_in_the_same_second_never_share_names(tmp_path: Path) -> None:
    # Names hold the run's start in whole seconds: five quick exports to one folder (a notebook
    # loop) would overwrite each other's files and manifests without a free second each.
    out = tmp_path / "same-folder"
    results = [pe.export([{"profile_id": f"p{i}", "Name": f"n{i}"}], out, format="json") for i in range(5)]
    keys = [f.key for r in results for f in r.committed]
    assert len(set(keys)) == len(keys) == 10
    assert [m.rows for m in read_manifests(str(out))] == [1] * 5
    for i, result in enumerate(results):
        assert read_jsonl(result.files[0].url)[0]["Name"] == f"n{i}"  # nothing was replaced
        assert result.export_id == result.files[0].key.split("-")[1]  # a defaulted export id follows the start


def test_export_failed_hears_of_a_destination_that_cannot_even_be_opened(tmp_path: Path) -> None:
    failures: list[tuple[str, str]] = []

    class Recorder:
        @pe.hookimpl
        def export_failed(self, run: Any, error: BaseException) -> None:
            failures.append((run.destination, type(error).__name__))

    os.environ.pop("PE_TEST_UNSET_VARIABLE", None)
    with pytest.raises(pe.ConfigError, match="PE_TEST_UNSET_VARIABLE"):
        pe.export(
            [{"profile_id": "p1"}],
            tmp_path / "out",
            storage_options={"auto_mkdir": "${PE_TEST_UNSET_VARIABLE}"},
            plugins=[Recorder()],
        )
    assert failures == [(str(tmp_path / "out"), "ConfigError")]
