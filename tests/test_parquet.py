"""Parquet exports through the real API, read back with pyarrow.parquet."""

from __future__ import annotations

import functools
import gzip
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import profile_exports as pe
import profile_exports.writers.parquet as parquet_writer
from profile_exports.layout import GROUP_ORDER, OutputColumn, OutputLayout
from profile_exports.plugins import load_components
from profile_exports.results import CommittedFile

NOW = datetime(2025, 10, 3, 12, 0, tzinfo=UTC)


@functools.cache
def _plugins() -> tuple[Any, ...]:
    """The Parquet writer module, unless it is registered already (as a built-in)."""
    _, components = load_components()
    return () if "parquet" in components.writers else (parquet_writer,)


def export(data: Any, out: str | Path, **settings: Any) -> pe.ExportResult:
    settings.setdefault("format", "parquet")
    return pe.export(data, str(out), plugins=_plugins(), now=NOW, progress=False, **settings)


def synthetic(count: int, **settings: Any) -> dict[str, Any]:
    return {"source": {"kind": "synthetic", "count": count, "seed": 5}, **settings}


def read_rows(result: pe.ExportResult) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for f in result.files:
        rows += pq.read_table(f.url).to_pylist()
    return rows


def read_json(result: pe.ExportResult) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for f in result.files:
        data = Path(f.url).read_bytes()
        text = (gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data).decode("utf-8")
        rows += [json.loads(line) for line in text.split("\n") if line]
    return rows


def plain(value: Any) -> Any:
    """A value read from Parquet with maps (lists of key/value pairs) as dicts."""
    if isinstance(value, list):
        if value and all(isinstance(v, tuple) and len(v) == 2 for v in value):
            return {k: plain(v) for k, v in value}
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def from_json(value: Any, type_: pa.DataType) -> Any:
    """A JSON value as the Python value of its Parquet column type (timestamps are ISO text in JSON)."""
    if value is None:
        return None
    if pa.types.is_timestamp(type_):
        return datetime.fromisoformat(value)
    if pa.types.is_list(type_):
        return [from_json(v, type_.value_type) for v in value]
    if pa.types.is_map(type_):
        return {k: from_json(v, type_.item_type) for k, v in value.items()}
    if pa.types.is_struct(type_):
        return {f.name: from_json(value.get(f.name), f.type) for f in type_}
    return value


def unnest(row: dict[str, Any]) -> dict[str, Any]:
    """A nested-layout row as the flat row it groups."""
    flat: dict[str, Any] = {}
    for group in GROUP_ORDER:
        if group not in row:
            continue
        if group in ("identity", "device"):
            flat[group] = row[group]
        else:
            flat.update(row[group])
    return flat


def column_values(path: str, group: str, name: str) -> list[Any]:
    """Values of output column ``name``: top-level in flat files, a struct field in nested ones."""
    table = pq.read_table(path)
    if name in table.column_names:
        return table.column(name).to_pylist()
    return [None if g is None else g[name] for g in table.column(group).to_pylist()]


# -- nested layout ---------------------------------------------------------------------------------

RECORDS: list[dict[str, Any]] = [
    {
        "profile_id": "__g1",
        "profile_ids": ["__g1", "old-1"],
        "identity": "user_1",
        "email": "ada@example.com",
        "phone": "+15550000001",
        "device": {"token": "tok-1", "platform": "ios"},
        "comm_prefs": {"MSG-push": True, "MSG-email": False},
        "subscription_groups": {"newsletter": "Subscribed", "offers": "Unsubscribed"},
        "properties": {
            "Name": "Ada",
            "Age": 36,
            "score": 1.5,
            "premium": True,
            "joined": datetime(2020, 5, 17, 8, 30, tzinfo=UTC),
            "tags": ["a", "b"],
            "prefs": {"theme": "dark", "size": 3},
        },
    },
    # no identity: the email is next in the fallback order
    {
        "profile_id": "__g2",
        "email": "bob@example.com",
        "device": {"token": None},
        "comm_prefs": {"MSG-push": False},
        "properties": {"Name": "Bob", "Age": None, "score": 2.0, "premium": False, "tags": []},
    },
    # nothing but the id
    {"profile_id": "__g3"},
]
SETTINGS: dict[str, Any] = {
    "identifiers": {"select": ["Identity", "Email", "Phone"], "all_identities": True, "clevertap_ids": True},
    "properties": {
        "device": ["token", "platform"],
        "comm_prefs": ["MSG-push", "MSG-email", "subscriptionGroups"],
        "user": ["Name", "Age", "score", "premium", "joined", "tags", "prefs", "Ghost"],
        "rename": {"Age": "Years", "score": "Score"},
        "order": ["Years", "Score"],
    },
}
NO_PROPS = dict.fromkeys(["Years", "Score", "Name", "premium", "joined", "tags", "prefs", "Ghost"])


def test_nested_layout_groups_columns_like_the_reference_with_real_types(out: str) -> None:
    result = export(RECORDS, out, **SETTINGS)
    (f,) = result.files
    schema = pq.read_schema(f.url)
    assert schema.names == ["identity", "profileIdentities", "device", "commPrefs", "profileProps"]
    assert schema.field("identity").type == pa.string()

    ids = schema.field("profileIdentities").type
    assert [x.name for x in ids] == ["all_identities", "clevertapId", "clevertapIds"]
    assert ids.field("all_identities").type.value_type == pa.string()
    assert ids.field("clevertapId").type == pa.string()

    device = schema.field("device").type
    assert [(x.name, x.type) for x in device] == [("token", pa.string()), ("platform", pa.string())]

    prefs = schema.field("commPrefs").type
    assert [x.name for x in prefs] == ["MSG-push", "MSG-email", "subscriptionGroups"]
    assert prefs.field("MSG-push").type == pa.bool_()
    groups = prefs.field("subscriptionGroups").type
    assert pa.types.is_map(groups) and groups.key_type == pa.string() and groups.item_type == pa.string()

    props = schema.field("profileProps").type
    # renamed, reordered: "order" first, the rest in the selection's order; Ghost is in no profile
    assert [x.name for x in props] == ["Years", "Score", "Name", "premium", "joined", "tags", "prefs", "Ghost"]
    assert props.field("Years").type == pa.int64()
    assert props.field("Score").type == pa.float64()
    assert props.field("premium").type == pa.bool_()
    assert props.field("joined").type == pa.timestamp("us", tz="UTC")
    assert pa.types.is_list(props.field("tags").type) and props.field("tags").type.value_type == pa.string()
    assert props.field("prefs").type == pa.struct([("theme", pa.string()), ("size", pa.int64())])
    assert props.field("Ghost").type == pa.string()

    assert [plain(r) for r in read_rows(result)] == [
        {
            "identity": "user_1",
            "profileIdentities": {
                "all_identities": ["user_1", "ada@example.com", "+15550000001"],
                "clevertapId": "__g1",
                "clevertapIds": ["__g1", "old-1"],
            },
            "device": {"token": "tok-1", "platform": "ios"},
            "commPrefs": {
                "MSG-push": True,
                "MSG-email": False,
                "subscriptionGroups": {"newsletter": "Subscribed", "offers": "Unsubscribed"},
            },
            "profileProps": {
                "Years": 36,
                "Score": 1.5,
                "Name": "Ada",
                "premium": True,
                "joined": datetime(2020, 5, 17, 8, 30, tzinfo=UTC),
                "tags": ["a", "b"],
                "prefs": {"theme": "dark", "size": 3},
                "Ghost": None,
            },
        },
        {
            "identity": "bob@example.com",
            "profileIdentities": {
                "all_identities": ["bob@example.com"],
                "clevertapId": "__g2",
                "clevertapIds": ["__g2"],
            },
            "device": {"token": None, "platform": None},
            "commPrefs": {"MSG-push": False, "MSG-email": None, "subscriptionGroups": None},
            "profileProps": {**NO_PROPS, "Score": 2.0, "Name": "Bob", "premium": False, "tags": []},
        },
        {
            "identity": None,
            "profileIdentities": {"all_identities": None, "clevertapId": "__g3", "clevertapIds": ["__g3"]},
            "device": {"token": None, "platform": None},
            "commPrefs": {"MSG-push": None, "MSG-email": None, "subscriptionGroups": None},
            "profileProps": NO_PROPS,
        },
    ]


def test_all_identifier_values_make_identity_a_list(out: str) -> None:
    result = export(RECORDS, out, identifiers={"select": ["Identity", "Email"], "values": "all"})
    schema = pq.read_schema(result.files[0].url)
    assert pa.types.is_list(schema.field("identity").type)
    assert [r["identity"] for r in read_rows(result)] == [["user_1", "ada@example.com"], ["bob@example.com"], None]


def test_groups_without_columns_are_left_out(out: str) -> None:
    result = export(
        RECORDS,
        out,
        identifiers={"select": ["Identity"], "clevertap_id": False},
        properties={"device": [], "user": ["Name"]},
    )
    schema = pq.read_schema(result.files[0].url)
    assert schema.names == ["identity", "profileProps"]
    assert result.columns == ("identity", "Name")
    assert read_rows(result)[0] == {"identity": "user_1", "profileProps": {"Name": "Ada"}}


def test_values_parquet_cannot_type_are_kept_apart_from_missing_ones(out: str) -> None:
    data = [
        {"profile_id": "p1", "properties": {"n": None, "empty": [], "obj": {}, "deep": {"x": None}}},
        {"profile_id": "p2"},
    ]
    result = export(data, out, parquet_layout="flat", properties={"user": ["n", "empty", "obj", "deep"]})
    schema = pq.read_schema(result.files[0].url)
    assert schema.field("n").type == pa.string()  # nothing but nulls: a string column of nulls
    assert schema.field("empty").type.value_type == pa.string()
    assert schema.field("obj").type == pa.map_(pa.string(), pa.string())  # {} in every profile: an empty map
    assert schema.field("deep").type == pa.struct([("x", pa.string())])
    rows = pq.read_table(result.files[0].url).to_pylist(maps_as_pydicts="strict")
    assert [(r["n"], r["empty"], r["obj"], r["deep"]) for r in rows] == [
        (None, [], {}, {"x": None}),
        (None, None, None, None),
    ]


# -- flat layout -----------------------------------------------------------------------------------


def test_flat_layout_has_the_csv_and_json_columns_and_the_json_values(out: str) -> None:
    flat = export(RECORDS, f"{out}/parquet", parquet_layout="flat", **SETTINGS)
    json_result = export(RECORDS, f"{out}/json", format="json", **SETTINGS)
    csv_result = export(RECORDS, f"{out}/csv", format="csv", **SETTINGS)
    schema = pq.read_schema(flat.files[0].url)
    assert tuple(schema.names) == flat.columns == json_result.columns == csv_result.columns
    assert schema.field("Years").type == pa.int64() and schema.field("joined").type == pa.timestamp("us", tz="UTC")
    expected = [{k: from_json(v, schema.field(k).type) for k, v in row.items()} for row in read_json(json_result)]
    assert [list(r) for r in read_json(json_result)] == [schema.names] * len(RECORDS)
    assert [plain(r) for r in read_rows(flat)] == expected


def test_flat_and_nested_layouts_agree_with_json_on_synthetic_profiles(out: str) -> None:
    settings = synthetic(3000, identifiers={"select": ["Identity", "Email"], "clevertap_ids": True})
    flat = export(None, f"{out}/flat", parquet_layout="flat", **settings)
    nested = export(None, f"{out}/nested", **settings)
    json_rows = read_json(export(None, f"{out}/json", format="json", **settings))
    schema = pq.read_schema(flat.files[0].url)
    expected = [{k: from_json(v, schema.field(k).type) for k, v in row.items()} for row in json_rows]
    flat_rows = [plain(r) for r in read_rows(flat)]
    assert flat_rows == expected
    assert [unnest(plain(r)) for r in read_rows(nested)] == flat_rows


# -- codecs ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("compression", "codec", "extension"),
    [
        (None, "ZSTD", ".parquet"),  # the default: compressed inside, still .parquet
        ("none", "UNCOMPRESSED", ".parquet"),
        ("snappy", "SNAPPY", ".parquet"),
        ("zstd", "ZSTD", ".parquet"),
        ("gzip", "GZIP", ".parquet.gz"),
    ],
)
def test_codecs_are_in_the_column_chunks_and_only_gzip_changes_the_extension(
    out: str, compression: str | None, codec: str, extension: str
) -> None:
    settings = synthetic(500) | ({"compression": compression} if compression else {})
    result = export(None, out, **settings)
    (f,) = result.files
    assert f.url.endswith(extension) and not f.url.endswith(".gz.parquet")
    data = Path(f.url).read_bytes()
    assert data[:4] == data[-4:] == b"PAR1"  # a Parquet file, even named .parquet.gz: not a gzip stream
    metadata = pq.ParquetFile(f.url).metadata
    groups = [metadata.row_group(g) for g in range(metadata.num_row_groups)]
    chunks = [group.column(c) for group in groups for c in range(metadata.num_columns)]
    assert chunks and {c.compression for c in chunks} == {codec}
    assert pq.read_table(f.url).num_rows == 500


def test_the_writer_describes_its_files() -> None:
    writer = parquet_writer.ParquetWriter()
    assert writer.name == "parquet"
    assert writer.compressions == ("zstd", "none", "snappy", "gzip")  # the first is the default
    assert writer.content_type == "application/vnd.apache.parquet"
    assert [writer.extension(c) for c in writer.compressions] == ["parquet", "parquet", "parquet", "parquet.gz"]
    assert [writer.content_encoding(c) for c in writer.compressions] == [None] * 4


# -- rotation and row groups ------------------------------------------------------------------------


@pytest.mark.parametrize(("layout", "compression"), [("nested", "none"), ("flat", "zstd"), ("nested", "gzip")])
def test_rotation_keeps_every_file_but_the_last_within_the_cap(out: str, layout: str, compression: str) -> None:
    cap_mb = 0.3
    settings = synthetic(20_000, parquet_layout=layout, compression=compression)
    result = export(None, f"{out}/rotated", max_file_mb=cap_mb, **settings)
    cap = int(cap_mb * 1_000_000)
    sizes = [os.path.getsize(f.url) for f in result.files]
    assert len(sizes) >= 3
    assert sizes == [f.bytes for f in result.files]
    assert all(size <= cap for size in sizes[:-1]), sizes
    assert sum(sizes[:-1]) / len(sizes[:-1]) > cap * 0.9  # files are filled, not cut early
    assert [f.part for f in result.files] == list(range(len(result.files)))
    counts = []
    for f in result.files:  # each file complete and readable on its own
        table = pq.read_table(f.url)
        assert table.num_rows == f.rows
        counts.append(table.num_rows)
    assert sum(counts) == 20_000 == result.rows
    ids = [i for f in result.files for i in column_values(f.url, "profileIdentities", "clevertapId")]
    single = export(None, f"{out}/single", **settings)
    assert len(single.files) == 1
    assert ids == column_values(single.files[0].url, "profileIdentities", "clevertapId")


def test_row_groups_are_bounded_for_readers(out: str) -> None:
    result = export(None, out, **synthetic(140_000))
    (f,) = result.files
    metadata = pq.ParquetFile(f.url).metadata
    sizes = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    assert sum(sizes) == 140_000
    assert len(sizes) >= 3 and max(sizes) <= 65_536
    assert max(sizes) == 65_536  # not needlessly small either


def test_a_row_bigger_than_the_cap_gets_a_file_of_its_own(out: str) -> None:
    data = [
        {"profile_id": "p1", "blob": "x"},
        {"profile_id": "p2", "blob": "y" * 300_000},
        {"profile_id": "p3", "blob": "z"},
    ]
    cap = 20_000
    # Uncompressed: zstd would fit 300,000 "y" in a few bytes.
    result = export(data, out, max_file_mb=cap / 1_000_000, parquet_layout="flat", compression="none")
    assert [f.rows for f in result.files] == [1, 1, 1]
    assert result.files[1].bytes > cap >= max(result.files[0].bytes, result.files[2].bytes)
    assert [r["blob"][:1] for r in read_rows(result)] == ["x", "y", "z"]


@pytest.mark.parametrize("layout", ["nested", "flat"])
def test_an_export_with_no_rows_writes_one_file_with_the_schema(out: str, layout: str) -> None:
    result = export([], out, parquet_layout=layout, properties={"user": ["Name"]})
    assert result.rows == 0
    (f,) = result.files
    table = pq.read_table(f.url)
    assert table.num_rows == 0 and f.rows == 0
    if layout == "flat":
        assert table.column_names == list(result.columns) == ["identity", "clevertapId", "device", "Name"]
    else:
        assert table.column_names == ["identity", "profileIdentities", "device", "profileProps"]


def test_a_run_that_fails_midway_leaves_only_whole_files(out: str) -> None:
    class Boom(Exception):
        pass

    table = pa.table({"profile_id": [f"p{i:06d}" for i in range(100_000)], "n": list(range(100_000))})

    def batches():
        yield from table.to_batches(max_chunksize=10_000)
        raise Boom

    reader = pa.RecordBatchReader.from_batches(table.schema, batches())
    with pytest.raises(Boom):
        export(reader, out, max_file_mb=0.1, compression="none")
    files = sorted(p for p in Path(out).rglob("*") if p.is_file())
    assert files, "files finished before the failure stay"
    assert all(not p.name.startswith(".") and p.name.endswith(".parquet") for p in files)
    rows = 0
    for path in files:
        rows += pq.read_table(path).num_rows
    assert 0 < rows < 100_000


# -- the batch writer on its own -----------------------------------------------------------------------


class MemoryFile:
    def __init__(self, files: dict[str, bytes], key: str) -> None:
        self.key = key
        self._files = files
        self._data = bytearray()
        self.aborted = False

    def write(self, data: bytes | memoryview) -> None:
        assert not self.aborted, "written after abort"
        self._data += data

    @property
    def bytes_written(self) -> int:
        return len(self._data)

    def commit(self) -> CommittedFile:
        self._files[self.key] = bytes(self._data)
        return CommittedFile(key=self.key, url=f"memory://{self.key}", bytes=len(self._data), sha256="")

    def abort(self) -> None:
        self.aborted = True


LAYOUT = OutputLayout(
    (
        OutputColumn("identity", "identity", "", pa.string()),
        OutputColumn("clevertapId", "profileIdentities", "", pa.string()),
        OutputColumn("n", "profileProps", "properties.n", pa.int64()),
        OutputColumn("note", "profileProps", "properties.note", pa.string()),
    )
)


def batch_of(start: int, count: int, note: str = "") -> pa.RecordBatch:
    ids = [f"p{i}" for i in range(start, start + count)]
    return pa.RecordBatch.from_arrays(
        [pa.array(ids), pa.array(ids), pa.array(range(start, start + count), pa.int64()), pa.array([note] * count)],
        schema=LAYOUT.schema,
    )


def open_writer(files: dict[str, bytes], opened: list[MemoryFile], cap: int, **kwargs: Any) -> Any:
    def new_file(part: int) -> MemoryFile:
        opened.append(MemoryFile(files, f"part-{part}.parquet"))
        return opened[-1]

    kwargs.setdefault("compression", "zstd")
    return parquet_writer.ParquetFileWriter(LAYOUT, max_file_bytes=cap, new_file=new_file, **kwargs)


def test_abort_discards_the_file_in_progress_and_keeps_committed_ones() -> None:
    files: dict[str, bytes] = {}
    opened: list[MemoryFile] = []
    writer = open_writer(files, opened, 30_000, row_group_rows=500)
    for start in range(0, 20_000, 1000):
        writer.write(batch_of(start, 1000, note="x" * (start % 37)))
    assert files and opened[-1].bytes_written > 0 and opened[-1].key not in files
    writer.abort()
    assert opened[-1].aborted and opened[-1].key not in files
    assert not any(f.aborted for f in opened[:-1])
    for data in files.values():
        assert pq.read_table(pa.BufferReader(data)).num_rows > 0
    writer.abort()  # twice is harmless


def letters(count: int, width: int, seed: int | None) -> pa.Array:
    """``count`` strings of ``width`` random letters (``seed``), or of one letter repeated (None)."""
    if seed is None:
        data = b"a" * (count * width)
    else:
        data = np.random.default_rng(seed).integers(ord("a"), ord("z") + 1, count * width, dtype=np.uint8).tobytes()
    offsets = np.arange(0, (count + 1) * width, width, dtype=np.int32)
    return pa.StringArray.from_buffers(count, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data))


@pytest.mark.parametrize("compression", ["none", "zstd"])
def test_a_change_in_the_data_does_not_push_files_over_the_cap(compression: str) -> None:
    # The same Arrow size, but the first half compresses to almost nothing and the second hardly.
    files: dict[str, bytes] = {}
    opened: list[MemoryFile] = []
    cap = 1_000_000
    writer = open_writer(files, opened, cap, compression=compression)
    for i in range(30):
        batch = batch_of(i * 5000, 5000)
        note = letters(5000, 200, seed=None if i < 15 else i)
        writer.write(pa.RecordBatch.from_arrays([*batch.columns[:3], note], schema=LAYOUT.schema))
    committed = writer.close()
    sizes = [f.bytes for f in committed]
    assert len(sizes) > 3 and all(size <= cap for size in sizes[:-1]), sizes
    assert sum(sizes[:-1]) / len(sizes[:-1]) > cap * 0.8
    assert sum(f.rows for f in committed) == 150_000


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=1500), min_size=1, max_size=5),
    cap=st.integers(min_value=5_000, max_value=200_000),
    group_rows=st.integers(min_value=1, max_value=5000),
    note=st.integers(min_value=0, max_value=300),
)
def test_every_row_lands_once_in_order_in_whole_files(sizes: list[int], cap: int, group_rows: int, note: int) -> None:
    files: dict[str, bytes] = {}
    opened: list[MemoryFile] = []
    writer = open_writer(files, opened, cap, row_group_rows=group_rows)
    start = 0
    for size in sizes:
        writer.write(batch_of(start, size, note="n" * note))
        start += size
    committed = writer.close()
    assert [f.part for f in committed] == list(range(len(committed))) == list(range(len(opened)))
    ids: list[str] = []
    for f in committed:
        table = pq.read_table(pa.BufferReader(files[f.key]))
        assert table.num_rows == f.rows and f.bytes == len(files[f.key])
        metadata = pq.read_metadata(pa.BufferReader(files[f.key]))
        assert all(metadata.row_group(i).num_rows <= group_rows for i in range(metadata.num_row_groups))
        ids += [r["clevertapId"] for r in table.column("profileIdentities").to_pylist()]
    assert ids == [f"p{i}" for i in range(start)]
    assert len(committed) == 1 or all(f.rows for f in committed)  # only an export without rows has an empty file


def test_scattered_text_is_written_plain_without_statistics_and_repeated_values_with_a_dictionary() -> None:
    # Unique ids: a dictionary would be built and dropped at its size limit, and min/max skip nothing.
    files: dict[str, bytes] = {}
    opened: list[MemoryFile] = []
    writer = open_writer(files, opened, 100_000_000)
    for start in range(0, 20_000, 5000):
        writer.write(batch_of(start, 5000, note=("red", "green", "blue")[start // 5000 % 3]))
    (committed,) = writer.close()
    metadata = pq.read_metadata(pa.BufferReader(files[committed.key]))
    columns = {}
    for g in range(metadata.num_row_groups):
        group = metadata.row_group(g)
        for c in range(group.num_columns):
            columns.setdefault(group.column(c).path_in_schema, []).append(group.column(c))
    dictionary = {"PLAIN_DICTIONARY", "RLE_DICTIONARY"}
    for path in ("identity", "profileIdentities.clevertapId"):
        assert all(not dictionary & set(c.encodings) for c in columns[path]), path
        assert all(c.statistics is None or not c.statistics.has_min_max for c in columns[path]), path
    note = columns["profileProps.note"]
    assert all(dictionary & set(c.encodings) for c in note)
    assert all(c.statistics.has_min_max for c in note)
    assert columns["profileProps.n"][-1].statistics.max == 19_999  # numbers keep their statistics
    table = pq.read_table(pa.BufferReader(files[committed.key]))
    assert table.column("identity").to_pylist() == [f"p{i}" for i in range(20_000)]


def test_too_few_values_to_judge_keep_arrows_default_encodings() -> None:
    files: dict[str, bytes] = {}
    opened: list[MemoryFile] = []
    writer = open_writer(files, opened, 100_000_000)
    writer.write(batch_of(0, 100))
    (committed,) = writer.close()
    group = pq.read_metadata(pa.BufferReader(files[committed.key])).row_group(0)
    assert all(group.column(c).statistics.has_min_max for c in range(group.num_columns))


class FailingFile(MemoryFile):
    """A sink file whose write fails once when it reaches ``limit`` bytes (a connection dropped
    mid-file), and works again after: a failure that went unnoticed would leave a hole in the file."""

    def __init__(self, files: dict[str, bytes], key: str, limit: int) -> None:
        super().__init__(files, key)
        self.limit = limit
        self.failed = False

    def write(self, data: bytes | memoryview) -> None:
        if not self.failed and self.bytes_written + len(data) > self.limit:
            self.failed = True
            raise OSError("connection reset by peer")
        super().write(data)


def test_a_failure_writing_a_row_group_reaches_the_caller_and_the_file_is_aborted() -> None:
    # Row groups are written in a thread: its error must come out of write() or close(), not vanish.
    files: dict[str, bytes] = {}
    opened: list[MemoryFile] = []

    def new_file(part: int) -> MemoryFile:
        opened.append(FailingFile(files, f"part-{part}.parquet", limit=200_000))
        return opened[-1]

    writer = parquet_writer.ParquetFileWriter(LAYOUT, compression="none", max_file_bytes=10**9, new_file=new_file)
    with pytest.raises(OSError, match="connection reset"):
        for start in range(0, 200_000, 5000):
            writer.write(batch_of(start, 5000, note="x" * 20))
        writer.close()
    writer.abort()
    assert opened and all(f.aborted for f in opened) and not files
