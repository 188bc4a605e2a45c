"""Values keep their meaning for engines that read the files with default options (issue 15, item 6).

Every test exports with ``profile_exports.export`` to a temporary folder and reads the files back with
independent readers (gzip + csv, json, lxml, pyarrow.parquet; DuckDB where it is installed).
"""

from __future__ import annotations

import json
import math
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import profile_exports as pe
from profile_exports.errors import ConfigError, DataError

from .formats import read_rows, unnest

FORMATS = ["csv", "json", "xml", "parquet"]


def rows_of(result: pe.ExportResult) -> list[dict[str, Any]]:
    if result.format == "parquet":  # maps as dicts, empty ones too
        rows = [r for f in result.files for r in pq.read_table(f.url).to_pylist(maps_as_pydicts="strict")]
    else:
        rows = read_rows(result)
    nested = result.format == "parquet" and any(g in r for r in rows for g in ("profileIdentities", "profileProps"))
    return [unnest(r) for r in rows] if nested else rows


def export(data: Any, out: Path, fmt: str, **settings: Any) -> pe.ExportResult:
    settings.setdefault("identifiers", {"select": ["Identity"], "clevertap_id": True})
    return pe.export(data, str(out / fmt), format=fmt, compression="gzip" if fmt != "parquet" else None, **settings)


# -- 1. a mapping keeps exactly its own keys ------------------------------------------------------------

MIXED_MAPPINGS = [{"a": 1}, {"b": "x"}, {}]  # values of different types: JSON text
SAME_TYPE_MAPPINGS = [{"a": 1}, {"b": 2}, {}]  # values of one type: a map
NESTED_MAPPINGS = [{"outer": {"a": 1.5}}, {"outer": {}}, {"other": {"b": 2.0}}]


def _mapping_read_back(value: Any, fmt: str) -> Any:
    """A mapping as a reader of ``fmt`` sees it, as a Python dict (None: missing)."""
    if fmt in ("csv", "xml"):
        return None if value == "" else json.loads(value)
    if fmt == "parquet" and isinstance(value, str):  # JSON text (a Parquet JSON column)
        return json.loads(value)
    return value  # JSON objects; Parquet maps (formats._plain makes them dicts)


def _mapping_sources(tmp_path: Path, mappings: list[Any]) -> dict[str, Any]:
    import pandas as pd

    records = [{"profile_id": f"p{i}", "prefs": m} for i, m in enumerate(mappings)]
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in records))
    frame = pd.DataFrame({"profile_id": [r["profile_id"] for r in records], "prefs": mappings})
    return {"records": records, "jsonl": str(jsonl), "pandas": frame}


@pytest.mark.parametrize(
    "mappings", [MIXED_MAPPINGS, SAME_TYPE_MAPPINGS, NESTED_MAPPINGS], ids=["mixed", "same", "nested"]
)
@pytest.mark.parametrize("source", ["records", "jsonl", "pandas"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_a_mapping_keeps_exactly_its_own_keys(tmp_path: Path, fmt: str, source: str, mappings: list[Any]) -> None:
    data = _mapping_sources(tmp_path, mappings)[source]
    result = export(data, tmp_path, fmt, parquet_layout="flat", properties={"user": ["prefs"]})
    got = [_mapping_read_back(r["prefs"], fmt) for r in rows_of(result)]
    assert got == mappings
    assert result.values_as_text == {}


def test_mappings_in_parquet_are_a_map_when_their_values_share_a_type_and_json_text_otherwise(tmp_path: Path) -> None:
    records = [
        {"profile_id": f"p{i}", "same": s, "mixed": m}
        for i, (s, m) in enumerate(zip(SAME_TYPE_MAPPINGS, MIXED_MAPPINGS, strict=True))
    ]
    result = export(records, tmp_path, "parquet", parquet_layout="flat", properties={"user": ["same", "mixed"]})
    schema = pq.read_schema(result.files[0].url)
    assert schema.field("same").type == pa.map_(pa.string(), pa.int64())
    assert schema.field("mixed").type == pa.json_()  # a string column with the Parquet JSON annotation
    assert "binary field_id=-1 mixed (JSON);" in str(pq.read_metadata(result.files[0].url).schema)
    nested = export(records, tmp_path / "nested", "parquet", properties={"user": ["same", "mixed"]})
    props = pq.read_schema(nested.files[0].url).field("profileProps").type
    assert props.field("same").type == pa.map_(pa.string(), pa.int64()) and props.field("mixed").type == pa.json_()


def test_mappings_keep_their_keys_inside_lists(tmp_path: Path) -> None:
    lists = [[{"a": 1}, {}], [{"b": 2}], None]
    records = [{"profile_id": f"p{i}", "items": v} for i, v in enumerate(lists)]
    for fmt in FORMATS:
        result = export(records, tmp_path, fmt, parquet_layout="flat", properties={"user": ["items"]})
        got = [r["items"] for r in rows_of(result)]
        if fmt in ("csv", "xml"):
            got = [None if v == "" else json.loads(v) for v in got]
        assert got == lists, fmt


@pytest.mark.parametrize(
    ("mappings", "parquet_type"),
    [
        ([{"a": 1, "b": "x"}, {"b": "y", "a": 2}, None], pa.struct([("a", pa.int64()), ("b", pa.string())])),
        ([{"a": 1}, {"b": 2.5}, {}], pa.map_(pa.string(), pa.float64())),
        ([{"o": {"a": 1}}, {"o": {"b": 2}}, {"o": {}}], pa.struct([("o", pa.map_(pa.string(), pa.int64()))])),
        ([{"a": 1}, {"a": "x"}, {}], pa.json_()),
        ([{"o": {"a": 1}}, {"o": {"a": "x"}}], pa.json_()),
    ],
    ids=["same-keys-struct", "map", "struct-of-maps", "json", "nested-json"],
)
@pytest.mark.parametrize("batch_size", [1, 2, 1000])
def test_the_type_of_mappings_does_not_depend_on_where_batches_start(
    tmp_path: Path, mappings: list[Any], parquet_type: pa.DataType, batch_size: int
) -> None:
    records = [{"profile_id": f"p{i}", "m": m} for i, m in enumerate(mappings)]
    settings = {"parquet_layout": "flat", "properties": {"user": ["m"]}, "batch_size": batch_size}
    parquet = export(records, tmp_path, "parquet", **settings)
    assert pq.read_schema(parquet.files[0].url).field("m").type == parquet_type
    got = [r["m"] for r in rows_of(parquet)]
    assert [json.loads(v) if isinstance(v, str) else v for v in got] == mappings
    assert [r["m"] for r in rows_of(export(records, tmp_path, "json", **settings))] == mappings


def test_column_wise_json_writes_nested_non_finite_floats_as_null() -> None:
    from profile_exports.json_text import json_texts
    from profile_exports.values import json_text_per_value

    column = pa.array(
        [{"l": [math.nan, 1.0], "m": [("k", math.inf)], "f": -math.inf}, {"l": None, "m": [], "f": 2.0}, None],
        pa.struct([("l", pa.list_(pa.float64())), ("m", pa.map_(pa.string(), pa.float64())), ("f", pa.float64())]),
    )
    expected = ['{"l":[null,1.0],"m":{"k":null},"f":null}', '{"l":null,"m":{},"f":2.0}', None]
    assert json_texts(column, non_finite="null").to_pylist() == expected
    assert json_text_per_value(column, non_finite="null").to_pylist() == expected
    assert json_texts(pa.array([math.nan, 1.5]), non_finite="null").to_pylist() == [None, "1.5"]


def test_durations_are_iso_8601_column_wise_and_per_value_alike() -> None:
    from profile_exports.values import duration_text, iso_duration

    values = [timedelta(microseconds=n) for n in (0, 1, -1, 10**6, -(10**6) - 1, 86_400 * 10**6 + 1, 3_723_500_000)]
    values += [timedelta(days=10**8), -timedelta(days=10**8, microseconds=1), None]
    got = duration_text(pa.array(values, pa.duration("us"))).to_pylist()
    assert got == [None if v is None else iso_duration(v) for v in values]
    assert got[:7] == ["PT0S", "PT0.000001S", "-PT0.000001S", "PT1S", "-PT1.000001S", "P1DT0.000001S", "PT1H2M3.5S"]
    assert duration_text(pa.array([-1, 1500], pa.duration("ms"))).to_pylist() == ["-PT0.001S", "PT1.5S"]
    assert duration_text(pa.array([90061], pa.duration("s"))).to_pylist() == ["P1DT1H1M1S"]


def test_json_text_from_an_arrow_source_is_written_raw_on_one_line(tmp_path: Path) -> None:
    text = pa.array(['{"a": 1,\n "b": [1, 2]}', '{"c":"x"}', None], pa.string())
    table = pa.table({"profile_id": ["p1", "p2", "p3"], "doc": pa.ExtensionArray.from_storage(pa.json_(), text)})
    result = export(table, tmp_path, "json", properties={"user": ["doc"]})
    assert [r["doc"] for r in rows_of(result)] == [{"a": 1, "b": [1, 2]}, {"c": "x"}, None]


def test_struct_columns_declared_by_an_arrow_source_keep_their_struct(tmp_path: Path) -> None:
    table = pa.table(
        {
            "profile_id": ["p1", "p2"],
            "point": pa.array(
                [{"x": 1, "y": 2}, {"x": 3, "y": None}], pa.struct([("x", pa.int64()), ("y", pa.int64())])
            ),
        }
    )
    parquet = export(table, tmp_path, "parquet", parquet_layout="flat", properties={"user": ["point"]})
    assert pq.read_schema(parquet.files[0].url).field("point").type == table.schema.field("point").type
    json_rows = rows_of(export(table, tmp_path, "json", properties={"user": ["point"]}))
    assert [r["point"] for r in json_rows] == [{"x": 1, "y": 2}, {"x": 3, "y": None}]


def test_device_comm_prefs_and_subscription_groups_are_unchanged(tmp_path: Path) -> None:
    records = [
        {
            "profile_id": "p1",
            "device": {"token": "t1", "os": "ios"},
            "comm_prefs": {"MSG-email": True},
            "subscription_groups": {"news": "subscribed"},
        },
        {"profile_id": "p2", "device": {"token": "t2"}, "subscription_groups": {}},
    ]
    settings = {
        "properties": {"device": ["token", "os"], "comm_prefs": ["MSG-email", "subscriptionGroups"], "user": ["x"]}
    }
    rows = rows_of(export(records, tmp_path, "json", **settings))
    assert [r["device"] for r in rows] == [{"token": "t1", "os": "ios"}, {"token": "t2", "os": None}]
    assert [r["subscriptionGroups"] for r in rows] == [{"news": "subscribed"}, {}]
    assert [r["MSG-email"] for r in rows] == [True, None]


# -- 2. a DataFrame column of mixed Python objects ---------------------------------------------------------


def _mixed_frames() -> dict[str, Any]:
    import pandas as pd
    import polars as pl

    frames: dict[str, Any] = {
        "pandas": pd.DataFrame({"profile_id": ["p1", "p2", "p3", "p4"], "x": [1, "one", 2.5, None]})
    }
    frames["polars"] = pl.DataFrame(
        {"profile_id": ["p1", "p2", "p3", "p4"], "x": pl.Series("x", [1, "one", 2.5, None], dtype=pl.Object)}
    )
    return frames


@pytest.mark.parametrize("frame", ["pandas", "polars"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_a_dataframe_column_of_mixed_objects_follows_the_mixed_type_rule(tmp_path: Path, fmt: str, frame: str) -> None:
    data = _mixed_frames()[frame]
    records = [{"profile_id": f"p{i + 1}", "x": v} for i, v in enumerate([1, "one", 2.5, None])]
    expected = export(records, tmp_path / "records", fmt, properties={"user": ["x"]})
    result = export(data, tmp_path, fmt, properties={"user": ["x"]})
    assert [r["x"] for r in rows_of(result)] == [r["x"] for r in rows_of(expected)]
    assert [r["x"] or None for r in rows_of(result)] == ["1", "one", "2.5", None]
    assert result.values_as_text == expected.values_as_text == {"x": 2}
    preview = pe.preview(data, destination=str(tmp_path / "preview"), format=fmt, properties={"user": ["x"]})
    assert [r["x"] for r in preview.rows] == ["1", "one", "2.5", None]


def test_an_arrow_conversion_error_of_a_dataframe_is_a_data_error_naming_the_column_and_a_value(tmp_path: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame({"profile_id": ["p1", "p2"], "z": [1 + 2j, 3 + 4j]})
    with pytest.raises(DataError, match=r"column 'z'.*\(1\+2j\).*Convert the column") as caught:
        pe.export(frame, str(tmp_path / "out"), format="json")
    assert not isinstance(caught.value, pa.ArrowException)
    with pytest.raises(DataError, match=r"column 'z'"):
        pe.preview(frame, destination=str(tmp_path / "out"), format="json")


def test_an_arrow_error_while_a_source_is_read_is_a_data_error(tmp_path: Path) -> None:
    schema = pa.schema([("profile_id", pa.string())])

    def batches() -> Any:
        yield pa.record_batch([pa.array(["p1"])], schema=schema)
        raise pa.ArrowInvalid("broken stream")

    reader = pa.RecordBatchReader.from_batches(schema, batches())
    with pytest.raises(DataError, match=r"broken stream"):
        pe.export(reader, str(tmp_path / "out"), format="json")


# -- 3. non-finite floats in JSON ---------------------------------------------------------------------------

NON_FINITE_RECORDS = [
    {"profile_id": "p1", "score": 1.5, "scores": [math.nan, 2.0]},
    {"profile_id": "p2", "score": math.nan, "scores": [math.inf]},
    {"profile_id": "p3", "score": math.inf, "scores": []},
    {"profile_id": "p4", "score": -math.inf, "scores": None},
]


def test_non_finite_floats_are_null_in_json_and_counted(tmp_path: Path) -> None:
    result = export(NON_FINITE_RECORDS, tmp_path, "json", properties={"user": ["score", "scores"]})
    rows = rows_of(result)
    assert [r["score"] for r in rows] == [1.5, None, None, None]
    assert [r["scores"] for r in rows] == [[None, 2.0], [None], [], None]
    assert result.non_finite_as_null == 5
    assert sum(p.non_finite_as_null for p in result.partitions) == 5
    assert "5 non-finite" in result.summary()
    assert "NaN/infinity as null" in result._repr_html_()
    import duckdb  # in the test extra: a reader that types a column holding "NaN" strings as JSON
    (path,) = [f.url for f in result.files]
    with duckdb.connect() as con:  # its own connection: the default one is shared with other tests
        described = con.execute(f"DESCRIBE SELECT * FROM read_json('{path}')").fetchall()
    types = {name: kind for name, kind, *_ in described}
    assert types["score"] == "DOUBLE" and types["scores"] == "DOUBLE[]"


def test_json_non_finite_string_keeps_the_strings(tmp_path: Path) -> None:
    result = export(NON_FINITE_RECORDS, tmp_path, "json", properties={"user": ["score"]}, json_non_finite="string")
    assert [r["score"] for r in rows_of(result)] == [1.5, "NaN", "Infinity", "-Infinity"]
    assert result.non_finite_as_null == 0
    with pytest.raises(ConfigError, match="json_non_finite"):
        export(NON_FINITE_RECORDS, tmp_path / "bad", "json", json_non_finite="nan")


@pytest.mark.parametrize("fmt", ["csv", "xml", "parquet"])
def test_non_finite_floats_keep_their_text_in_csv_and_xml_and_their_value_in_parquet(tmp_path: Path, fmt: str) -> None:
    result = export(NON_FINITE_RECORDS, tmp_path, fmt, parquet_layout="flat", properties={"user": ["score"]})
    assert result.non_finite_as_null == 0
    got = [r["score"] for r in rows_of(result)]
    if fmt == "xml":
        assert got == ["1.5", "NaN", "Infinity", "-Infinity"]
        return
    if fmt == "csv":  # the CSV writer picks the words engines read as floats (NaN, inf): see docs/output.md
        got = [float(v) for v in got]
    assert got[0] == 1.5 and math.isnan(got[1]) and got[2:] == [math.inf, -math.inf]


# -- 4. durations -------------------------------------------------------------------------------------------

DURATIONS = [
    (timedelta(hours=1), "PT1H"),
    (timedelta(days=1, hours=2, minutes=3, seconds=4.5), "P1DT2H3M4.5S"),
    (-timedelta(minutes=90), "-PT1H30M"),
    (timedelta(0), "PT0S"),
    (timedelta(microseconds=1), "PT0.000001S"),
    (timedelta(days=-1, seconds=1), "-PT23H59M59S"),
    (timedelta(days=400), "P400D"),
    (None, None),
]


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_timedelta_is_an_iso_8601_duration_in_text_and_a_duration_in_parquet(tmp_path: Path, fmt: str) -> None:
    records = [
        {"profile_id": f"p{i}", "wait": d, "waits": None if d is None else [d]} for i, (d, _) in enumerate(DURATIONS)
    ]
    result = export(records, tmp_path, fmt, parquet_layout="flat", properties={"user": ["wait", "waits"]})
    rows = rows_of(result)
    if fmt == "parquet":
        schema = pq.read_schema(result.files[0].url)
        assert schema.field("wait").type == pa.duration("us")
        assert schema.field("waits").type == pa.list_(pa.duration("us"))
        assert [r["wait"] for r in rows] == [d for d, _ in DURATIONS]
        return
    texts = [text for _, text in DURATIONS]
    got = [r["wait"] for r in rows]
    if fmt in ("csv", "xml"):
        assert got == [t or "" for t in texts]
        assert [json.loads(r["waits"]) if r["waits"] else None for r in rows] == [
            None if t is None else [t] for t in texts
        ]
    else:
        assert got == texts
        assert [r["waits"] for r in rows] == [None if t is None else [t] for t in texts]


def test_a_pandas_timedelta_column_is_an_iso_8601_duration(tmp_path: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame({"profile_id": ["p1", "p2"], "wait": pd.to_timedelta(["1h", "-1ns"])})
    rows = rows_of(export(frame, tmp_path, "json", properties={"user": ["wait"]}))
    assert [r["wait"] for r in rows] == ["PT1H", "-PT0.000000001S"]
