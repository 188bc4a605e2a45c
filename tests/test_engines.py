"""The exported folders read by the engines people point at them: DuckDB, ClickHouse (chDB), polars, Spark.

Each engine reads a data folder (Spark) or a glob of it (the others) with exactly the statements
docs/loading.md gives (``test_the_statements_are_the_ones_docs_loading_md_gives`` holds the page to
them): one per format, the page's JSON statements for mappings, and for Spark CSV its second pass
that keeps phone columns text. No other schema or option. The exports keep their run manifest
(``_manifests/`` at the destination root) in two layouts, a ``run_date`` folder and the destination
root itself, so a manifest that sat among the data files would break Spark's folder reads and the
listing check below. For every engine, format and layout the tests check, one concern per test so a
failure names what broke:

- every profile is counted exactly once (row count and distinct ids);
- numbers and booleans come back typed, summed and counted by the engine itself;
- floats keep NaN and infinities where the format can hold them (JSON writes ``null``);
- E.164 phones and the identity lists come back unchanged (no spreadsheet apostrophe);
- text with commas, quotes, line breaks and emoji round trips, ``""`` stays apart from missing
  (except in Spark's CSV reader, which reads both as null);
- a mapping comes back with exactly its own keys (``{}`` is not missing, no key borrowed from
  other profiles), whether the file holds it as a map or as JSON text.

``nox -s engines`` runs this module (Spark needs Java 17+; one ``local[1]`` session for the module).
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import json
import math
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import profile_exports as pe
from profile_exports.manifest import read_manifests

N = 3000
NOW = datetime(2025, 10, 3, 12, 0, tzinfo=UTC)
DATE_FOLDER = "20251003"  # folders = "run_date" for NOW
ACCOUNT, EXPORT = "100000000", "1761651721"

NAMES = [
    "Zoë 👩🏽‍💻",
    'comma, "quote" and\nnewline',
    "Smith, John",
    'say "hi"',
    "line1\r\nline2",
    "漢字 テスト",
    "",  # an empty string: written "" and read back as one, not as missing
    "émoji 🎉🎉",
    None,  # missing: a blank CSV cell
    "plain",
    "-minus, @at =eq",  # text a spreadsheet would run: only this gets the CSV apostrophe
]
PREFS: list[dict[str, str] | None] = [
    {"lang": "en", "theme": "dark"},
    {},
    {"lang": "fr"},
    {"tz": "Europe/Paris", "note": 'a, "b"\nc'},
    None,
    {"beta": "yes", "lang": "de", "theme": "light"},
]
# Mapping values of mixed types: written as JSON text (a Parquet string annotated JSON), not a map.
EXTRA: list[dict[str, Any] | None] = [
    {"n": 1, "tags": ["a", "b"]},
    {"flag": True},
    {},
    None,
    {"n": 2.5, "s": 'x, "y"\nz'},
]
MAPPINGS = ("Prefs", "Extra")
NON_FINITE = [float("nan"), float("inf"), float("-inf")]


def _profile(i: int) -> dict[str, Any]:
    profile: dict[str, Any] = {
        "profile_id": f"p{i:05d}",
        "device": {"token": f"tok-{i:05d}" if i % 7 else None},
        "comm_prefs": {"MSG-email": i % 3 == 0, "MSG-push": None if i % 5 == 0 else i % 2 == 0},
        "properties": {
            "Name": NAMES[i % len(NAMES)],
            "Age": None if i % 11 == 0 else 18 + i % 60,
            "Balance": i - 1500,
            "Score": NON_FINITE[i % 3] if i % 97 == 0 else i * 0.25 - 100,
            "Vip": i % 4 == 1,
            "Prefs": PREFS[i % len(PREFS)],
            "Extra": EXTRA[i % len(EXTRA)],
        },
    }
    if i % 4:
        profile["identity"] = f"user_{i}"
    if i % 3:
        profile["email"] = f"user{i}@example.com"
    if i % 10 != 9:
        profile["phone"] = f"+1555{i:07d}"  # E.164
    return profile


PROFILES = [_profile(i) for i in range(N)]
BY_ID = {p["profile_id"]: p for p in PROFILES}

SETTINGS: dict[str, Any] = {
    "account_id": ACCOUNT,
    "export_id": EXPORT,
    "identifiers": {"select": ["Identity", "Email", "Phone"], "values": "all"},
    "properties": {
        "comm_prefs": ["MSG-email", "MSG-push"],
        "user": ["Name", "Phone", "Age", "Balance", "Score", "Vip", "Prefs", "Extra"],
    },
}
# Default compressions (gzip text, zstd Parquet); caps small enough for several files per format.
FORMATS: dict[str, dict[str, Any]] = {
    "csv": {"format": "csv", "max_file_mb": 0.04},
    "json": {"format": "json", "max_file_mb": 0.04},
    "parquet": {"format": "parquet", "max_file_mb": 0.02},
    "parquet_flat": {"format": "parquet", "parquet_layout": "flat", "max_file_mb": 0.02},
}
EXTENSIONS = {"csv": "csv.gz", "json": "json.gz", "parquet": "parquet", "parquet_flat": "parquet"}
LAYOUTS = ["run_date", "root"]
ENGINES = ["duckdb", "chdb", "polars", "spark"]

# Logical columns and where they are in the file: top level, or a field of the nested Parquet groups.
COLUMNS = ["clevertapId", "identity", "device", "MSG-email", "MSG-push", "Name", "Phone", "Age", "Balance"]
COLUMNS += ["Score", "Vip", *MAPPINGS]
NESTED = {
    "clevertapId": ("profileIdentities", "clevertapId"),
    "MSG-email": ("commPrefs", "MSG-email"),
    "MSG-push": ("commPrefs", "MSG-push"),
    **{name: ("profileProps", name) for name in ("Name", "Phone", "Age", "Balance", "Score", "Vip", *MAPPINGS)},
}


def _path(fmt: str, column: str) -> tuple[str, ...]:
    return NESTED.get(column, (column,)) if fmt == "parquet" else (column,)


# -- the statements docs/loading.md gives, verbatim but for the folder ------------------------------

DUCKDB = {
    "csv": "read_csv('{folder}/*.csv.gz', allow_quoted_nulls = false)",
    "json": "read_json('{folder}/*.json.gz')",
    "parquet": "read_parquet('{folder}/*.parquet')",
    # A mapping with its own keys: objects whose keys vary as MAPs, not one STRUCT of every key seen.
    "json_mappings": "read_json('{folder}/*.json.gz', field_appearance_threshold = 1)",
}
CLICKHOUSE = {
    "csv": "file('{folder}/*.csv.gz', CSVWithNames)",
    "json": "file('{folder}/*.json.gz', JSONEachRow)",
    "parquet": "file('{folder}/*.parquet', Parquet)",
}
# A mapping with its own keys: objects as their JSON text instead of one Tuple of every key seen.
CLICKHOUSE_JSON_MAPPINGS = "SETTINGS input_format_json_try_infer_named_tuples_from_objects = 0"
SPARK_CSV_OPTIONS = {"header": True, "multiLine": True, "escape": '"', "positiveInf": "inf", "negativeInf": "-inf"}
# Spark's inferSchema ignores quotes: "+15551230001" is inferred as a number. The page's second pass
# keeps the text columns that can look like numbers as text.
SPARK_CSV_TEXT_COLUMNS = {"Phone"}


def engine_module(name: str) -> Any:
    """The engine's module. A missing engine fails its tests (never skips them): install the extra."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        pytest.fail(f"{name} is not installed ({exc}): pip install -e '.[test,engines]' (nox -s engines does)")


# -- expectations ------------------------------------------------------------------------------------


def expected_identity(p: dict[str, Any]) -> list[str] | None:
    values = [v for v in (p.get("identity"), p.get("email"), p.get("phone")) if v]
    return values or None


def expected_score(p: dict[str, Any], fmt: str) -> float | None:
    score = p["properties"]["Score"]
    if fmt == "json" and not math.isfinite(score):
        return None  # JSON has no number for NaN or infinity: null by default
    return score


def expected_name(p: dict[str, Any], engine: str, fmt: str) -> str | None:
    name = p["properties"]["Name"]
    if name == "" and engine == "spark" and fmt == "csv":
        # Spark reads a quoted empty CSV cell as null whatever the options (emptyValue applies to
        # writing); docs/loading.md says so. The file keeps them apart: the other engines show it.
        return None
    return name


def same_float(got: Any, want: float | None) -> bool:
    if want is None or got is None:
        return got is want
    if not isinstance(got, float):
        return False
    return (math.isnan(got) and math.isnan(want)) or got == want


def as_mapping(value: Any) -> dict[str, Any] | None:
    """An engine's mapping value as a dict: JSON text (CSV cells, JSON-text mappings, JSON read as
    text), a map (a dict in DuckDB and Spark, pairs or key/value structs in Arrow and polars) or a
    struct (a dict)."""
    if value is None:
        return None
    if isinstance(value, str):
        return json.loads(value)
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return dict((p["key"], p["value"]) if isinstance(p, dict) else tuple(p) for p in value)
    raise TypeError(f"not a mapping: {value!r}")


def same_mapping(got: Any, want: dict[str, Any] | None) -> bool:
    """Exactly the same keys and values; a value may come as its JSON text (DuckDB's MAP(VARCHAR, JSON)
    for a JSON object whose values differ in type)."""
    mapping = as_mapping(got)
    if mapping is None or want is None:
        return mapping == want
    if mapping.keys() != want.keys():
        return False
    return all(v == want[k] or (isinstance(v, str) and _json_equal(v, want[k])) for k, v in mapping.items())


def _json_equal(text: str, want: Any) -> bool:
    try:
        return json.loads(text) == want
    except ValueError:
        return False


def as_json(value: Any) -> Any:
    """A nested value that CSV holds as JSON text."""
    return json.loads(value) if isinstance(value, str) else value


# -- exports -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Export:
    result: pe.ExportResult
    dest: Path
    folder: Path  # the data folder engines read
    ext: str

    @property
    def glob(self) -> str:
        return f"{self.folder}/*.{self.ext}"


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Export]:
    done = {}
    for fmt, settings in FORMATS.items():
        for layout in LAYOUTS:
            dest = tmp_path_factory.mktemp(f"{fmt}-{layout}") / "exports"
            result = pe.export(PROFILES, dest, folders=layout, now=NOW, **SETTINGS, **settings)
            folder = dest / DATE_FOLDER if layout == "run_date" else dest
            done[fmt, layout] = Export(result, dest, folder, EXTENSIONS[fmt])
    return done


def _kind(fmt: str) -> str:
    return "parquet" if fmt.startswith("parquet") else fmt


# -- engines -----------------------------------------------------------------------------------------


@dataclass
class Readout:
    """What an engine made of a folder: counts and aggregates computed by the engine, column kinds
    (int, float, bool, str or the engine's own type name) and every row, keyed by clevertapId."""

    count: int
    distinct: int
    kinds: dict[str, str]
    aggregates: Callable[[], tuple[Any, ...]]  # sum(Age), sum(Balance), count of Vip, count of MSG-email
    rows: dict[str, dict[str, Any]]


def _sql_kind(type_name: str) -> str:
    t = type_name
    while m := re.fullmatch(r"(?:Nullable|LowCardinality)\((.*)\)", t):
        t = m.group(1)
    u = t.upper()
    if u in {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UBIGINT"} or re.fullmatch(r"U?INT\d+", u):
        return "int"
    if u in {"FLOAT", "DOUBLE", "REAL"} or re.fullmatch(r"FLOAT\d+", u):
        return "float"
    if u in {"BOOLEAN", "BOOL"}:
        return "bool"
    if u in {"VARCHAR", "STRING"}:
        return "str"
    return type_name


AGGREGATES = (
    'SELECT sum("Age"), sum("Balance"), sum(CASE WHEN "Vip" THEN 1 ELSE 0 END), '
    'sum(CASE WHEN "MSG-email" THEN 1 ELSE 0 END) FROM {table}'
)


def read_duckdb(export: Export, fmt: str, *, mappings: bool = False) -> Readout:
    duckdb = engine_module("duckdb")
    con = duckdb.connect()
    statement = DUCKDB["json_mappings" if mappings and fmt == "json" else _kind(fmt)].format(folder=export.folder)

    def expr(column: str) -> str:
        top, *fields = _path(fmt, column)
        out = f'"{top}"'
        for field in fields:
            out = f"struct_extract({out}, '{field}')"
        return f'{out} AS "{column}"'

    con.execute(f"CREATE VIEW t AS SELECT {', '.join(map(expr, COLUMNS))} FROM {statement}")
    count, distinct = con.execute('SELECT count(*), count(DISTINCT "clevertapId") FROM t').fetchone()
    kinds = {name: _sql_kind(type_name) for name, type_name, *_ in con.execute("DESCRIBE t").fetchall()}
    rows = {row[0]: dict(zip(COLUMNS, row, strict=True)) for row in con.execute("SELECT * FROM t").fetchall()}
    return Readout(count, distinct, kinds, lambda: con.execute(AGGREGATES.format(table="t")).fetchone(), rows)


def read_chdb(export: Export, fmt: str, *, mappings: bool = False) -> Readout:
    chdb = engine_module("chdb")
    statement = CLICKHOUSE[_kind(fmt)].format(folder=export.folder)
    settings = CLICKHOUSE_JSON_MAPPINGS if mappings and fmt == "json" else ""

    def expr(column: str) -> str:
        top, *fields = _path(fmt, column)
        out = f'"{top}"'
        for field in fields:
            out = f"tupleElement({out}, '{field}')"
        return f'{out} AS "{column}"'

    table = f"(SELECT {', '.join(map(expr, COLUMNS))} FROM {statement})"

    def query(sql: str) -> Any:
        return chdb.query(f"{sql} {settings}", "ArrowTable")

    (counts,) = query(f'SELECT count(), uniqExact("clevertapId") FROM {table}').to_pylist()
    described = query(f"DESCRIBE {table}").to_pylist()
    kinds = {d["name"]: _sql_kind(d["type"]) for d in described}
    rows = {r["clevertapId"]: r for r in query(f"SELECT * FROM {table}").to_pylist()}

    def aggregates() -> tuple[Any, ...]:
        (row,) = query(AGGREGATES.format(table=table)).to_pylist()
        return tuple(row.values())

    return Readout(*counts.values(), kinds, aggregates, rows)


def read_polars(export: Export, fmt: str, *, mappings: bool = False) -> Readout:
    pl = engine_module("polars")
    if fmt == "csv":
        frame = pl.read_csv(export.glob)
    elif fmt == "json":
        overrides = {"schema_overrides": {"Prefs": pl.String, "Extra": pl.String}} if mappings else {}
        frame = pl.read_ndjson(export.glob, **overrides)
    else:
        frame = pl.read_parquet(export.glob)

    def expr(column: str) -> Any:
        top, *fields = _path(fmt, column)
        out = pl.col(top)
        for field in fields:
            out = out.struct.field(field)
        return out.alias(column)

    df = frame.select([expr(c) for c in COLUMNS])

    def kind(dtype: Any) -> str:
        if dtype.is_integer():
            return "int"
        if dtype.is_float():
            return "float"
        return {pl.Boolean: "bool", pl.String: "str"}.get(dtype, str(dtype))

    def aggregates() -> tuple[Any, ...]:
        sums = df.select(pl.col("Age").sum(), pl.col("Balance").sum(), pl.col("Vip").sum(), pl.col("MSG-email").sum())
        return sums.row(0)

    rows = {r["clevertapId"]: r for r in df.to_dicts()}
    kinds = {name: kind(dtype) for name, dtype in df.schema.items()}
    return Readout(df.height, df["clevertapId"].n_unique(), kinds, aggregates, rows)


def read_spark(export: Export, fmt: str, spark: Any, *, mappings: bool = False) -> Readout:
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    folder = str(export.folder)
    if fmt == "csv":
        inferred = spark.read.csv(folder, inferSchema=True, **SPARK_CSV_OPTIONS).schema
        schema = T.StructType(
            [T.StructField(f.name, T.StringType()) if f.name in SPARK_CSV_TEXT_COLUMNS else f for f in inferred]
        )
        frame = spark.read.csv(folder, schema=schema, **SPARK_CSV_OPTIONS)
    elif fmt == "json":
        if mappings:
            frame = spark.read.json(folder, schema="clevertapId STRING, Prefs STRING, Extra STRING")
        else:
            frame = spark.read.json(folder)
    else:
        frame = spark.read.parquet(folder)
    columns = ["clevertapId", *MAPPINGS] if mappings and fmt == "json" else COLUMNS
    df = frame.select([F.col(".".join(f"`{p}`" for p in _path(fmt, c))).alias(c) for c in columns])
    df.createOrReplaceTempView("t")

    def kind(dtype: Any) -> str:
        if isinstance(dtype, T.IntegralType):
            return "int"
        if isinstance(dtype, T.FloatType | T.DoubleType):
            return "float"
        if isinstance(dtype, T.BooleanType):
            return "bool"
        if isinstance(dtype, T.StringType):
            return "str"
        return dtype.simpleString()

    counts = spark.sql("SELECT count(*), count(DISTINCT `clevertapId`) FROM t").first()

    def aggregates() -> tuple[Any, ...]:
        return tuple(spark.sql(AGGREGATES.format(table="t").replace('"', "`")).first())

    rows = {r["clevertapId"]: r.asDict(recursive=True) for r in df.collect()}
    kinds = {f.name: kind(f.dataType) for f in df.schema.fields}
    return Readout(counts[0], counts[1], kinds, aggregates, rows)


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    """One local[1] Spark session for the module (starting one takes about ten seconds)."""
    engine_module("pyspark")
    if shutil.which("java") is None:
        pytest.fail("Spark needs Java 17+ on the PATH")
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[1]")
        .appName("profile-exports-engines")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def read(exports: dict[tuple[str, str], Export], request: pytest.FixtureRequest) -> Callable[..., Readout]:
    """``read(engine, fmt, layout, mappings=False)``: each folder is read once per engine and statement."""
    cache: dict[tuple[str, str, str, bool], Readout | BaseException] = {}

    def read(engine: str, fmt: str, layout: str, *, mappings: bool = False) -> Readout:
        key = (engine, fmt, layout, mappings and fmt == "json")
        if key not in cache:
            export = exports[fmt, layout]
            try:
                if engine == "spark":
                    cache[key] = read_spark(export, fmt, request.getfixturevalue("spark"), mappings=key[3])
                else:
                    reader = {"duckdb": read_duckdb, "chdb": read_chdb, "polars": read_polars}[engine]
                    cache[key] = reader(export, fmt, mappings=key[3])
            except pytest.skip.Exception:
                raise
            except Exception as exc:  # the engine could not read the folder: every test of it says so
                cache[key] = exc
        got = cache[key]
        if isinstance(got, BaseException):
            raise AssertionError(f"{engine} could not read the {fmt} folder ({layout}): {got}") from got
        return got

    return read


ALL = pytest.mark.parametrize(
    ("engine", "fmt", "layout"), [(e, f, lay) for e in ENGINES for f in FORMATS for lay in LAYOUTS]
)


# -- the files themselves ----------------------------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_data_folder_holds_only_data_files(exports: dict[tuple[str, str], Export], fmt: str, layout: str) -> None:
    export = exports[fmt, layout]
    assert len(export.result.files) >= 3, "the cap should give several files per format"
    names = sorted(p.name for p in export.folder.iterdir() if p.is_file())
    assert names == sorted(Path(f.url).name for f in export.result.files)
    assert all(name.endswith(f".{export.ext}") for name in names), names
    assert not any("manifest" in name for name in names)
    # The manifest is in _manifests/ at the destination root, beside the data folder, never in it.
    subfolders = sorted(p.name for p in export.dest.iterdir() if p.is_dir())
    assert subfolders == ([DATE_FOLDER, "_manifests"] if layout == "run_date" else ["_manifests"])
    (manifest,) = read_manifests(str(export.dest))
    assert manifest.key.startswith("_manifests/")
    assert [f.key for f in manifest.files] == [f.key for f in export.result.files]
    if fmt.startswith("parquet"):  # zstd pages by default, still named .parquet
        import pyarrow.parquet as pq

        meta = pq.ParquetFile(export.result.files[0].url).metadata
        assert {meta.row_group(0).column(i).compression for i in range(meta.num_columns)} == {"ZSTD"}


# -- what each engine makes of the folder ------------------------------------------------------------


@ALL
def test_every_profile_is_counted_once(read: Callable[..., Readout], engine: str, fmt: str, layout: str) -> None:
    got = read(engine, fmt, layout)
    assert (got.count, got.distinct) == (N, N)
    assert set(got.rows) == set(BY_ID)


@ALL
def test_numbers_and_booleans_come_back_typed(read: Callable[..., Readout], engine: str, fmt: str, layout: str) -> None:
    got = read(engine, fmt, layout)
    kinds = {c: got.kinds[c] for c in ("Age", "Balance", "Vip", "MSG-email", "MSG-push", "Name", "clevertapId")}
    assert kinds == {
        "Age": "int",
        "Balance": "int",
        "Vip": "bool",
        "MSG-email": "bool",
        "MSG-push": "bool",
        "Name": "str",
        "clevertapId": "str",
    }
    props = [p["properties"] for p in PROFILES]
    expected = (
        sum(p["Age"] for p in props if p["Age"] is not None),
        sum(p["Balance"] for p in props),
        sum(p["Vip"] for p in props),
        sum(p["comm_prefs"]["MSG-email"] for p in PROFILES),
    )
    assert tuple(int(v) for v in got.aggregates()) == expected  # summed and counted by the engine
    for pid, row in got.rows.items():
        p = BY_ID[pid]
        assert (row["Age"], row["Balance"], row["Vip"]) == (
            p["properties"]["Age"],
            p["properties"]["Balance"],
            p["properties"]["Vip"],
        ), pid
        assert (row["MSG-email"], row["MSG-push"]) == (p["comm_prefs"]["MSG-email"], p["comm_prefs"]["MSG-push"]), pid


@ALL
def test_floats_keep_nan_and_infinity(read: Callable[..., Readout], engine: str, fmt: str, layout: str) -> None:
    got = read(engine, fmt, layout)
    assert got.kinds["Score"] == "float"
    wrong = {
        pid: (row["Score"], expected_score(BY_ID[pid], fmt))
        for pid, row in got.rows.items()
        if not same_float(row["Score"], expected_score(BY_ID[pid], fmt))
    }
    assert not wrong, dict(list(wrong.items())[:5])


@ALL
def test_phones_and_identity_lists_are_unchanged(
    read: Callable[..., Readout], engine: str, fmt: str, layout: str
) -> None:
    got = read(engine, fmt, layout)
    assert got.kinds["Phone"] == "str"
    phones = {pid: row["Phone"] for pid, row in got.rows.items()}
    assert not [v for v in phones.values() if v and v.startswith("'")], "a phone got a spreadsheet apostrophe"
    assert phones == {pid: p.get("phone") for pid, p in BY_ID.items()}
    # CSV holds a list as its JSON text; the engines give it as text, JSON and Parquet as a list.
    identities = {pid: as_json(row["identity"]) for pid, row in got.rows.items()}
    assert identities == {pid: expected_identity(p) for pid, p in BY_ID.items()}


@ALL
def test_text_round_trips(read: Callable[..., Readout], engine: str, fmt: str, layout: str) -> None:
    got = read(engine, fmt, layout)
    names = {pid: row["Name"] for pid, row in got.rows.items()}
    expected = {pid: expected_name(p, engine, fmt) for pid, p in BY_ID.items()}
    if fmt == "csv":
        # spreadsheet_safe (the CSV default) writes text a spreadsheet would run with a leading
        # apostrophe; docs/loading.md tells loaders to export with spreadsheet_safe = false.
        expected = {pid: "'" + v if v and v[0] in "=+-@" else v for pid, v in expected.items()}
    wrong = {pid: (names[pid], want) for pid, want in expected.items() if names[pid] != want}
    assert not wrong, dict(list(wrong.items())[:5])
    tokens = {pid: (as_json(row["device"]) or {}).get("token") for pid, row in got.rows.items()}
    assert tokens == {pid: p["device"]["token"] for pid, p in BY_ID.items()}


@ALL
def test_mappings_keep_exactly_their_own_keys(read: Callable[..., Readout], engine: str, fmt: str, layout: str) -> None:
    # CSV: the engines give the cell's JSON text, parsed here. JSON: every engine infers one struct of
    # all the keys seen in any row (a key a profile lacks comes back null), so the page's statement
    # for mappings reads objects as maps or JSON text. Parquet: the engine's own map (or JSON) value.
    got = read(engine, fmt, layout, mappings=True)
    for column in MAPPINGS:  # Prefs: a map of text; Extra: values of mixed types, JSON text
        expected = {pid: p["properties"][column] for pid, p in BY_ID.items()}
        if engine == "chdb" and fmt.startswith("parquet") and column == "Prefs":
            # ClickHouse has no Nullable(Map) nor Nullable(Tuple): a missing map reads as an empty one.
            expected = {pid: {} if v is None else v for pid, v in expected.items()}
        rows = got.rows
        wrong = {
            pid: (rows[pid][column], want)
            for pid, want in expected.items()
            if not same_mapping(rows[pid][column], want)
        }
        assert not wrong, f"{column}: {dict(list(wrong.items())[:5])}"


# -- complete runs only ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_loading_only_the_files_the_manifests_list_skips_a_killed_runs_leftovers(tmp_path: Path, fmt: str) -> None:
    duckdb = engine_module("duckdb")
    dest = tmp_path / "exports"
    result = pe.export(PROFILES, dest, folders="run_date", now=NOW, **SETTINGS, **FORMATS[fmt])
    folder = dest / DATE_FOLDER
    ext = EXTENSIONS[fmt]
    # A later run that was killed after committing one file: no manifest lists it.
    ts = int(NOW.timestamp()) + 3600
    shutil.copy(result.files[0].url, folder / f"{ACCOUNT}-{EXPORT}-{ts}-0-00000.{ext}")
    reader = {"csv": "read_csv", "parquet": "read_parquet"}[fmt]
    options = ", allow_quoted_nulls = false" if fmt == "csv" else ""
    pid = "struct_extract(profileIdentities, 'clevertapId')" if fmt == "parquet" else '"clevertapId"'

    def count(source: str) -> tuple[int, int]:
        return duckdb.execute(f"SELECT count(*), count(DISTINCT {pid}) FROM {reader}({source}{options})").fetchone()

    whole_folder = count(f"'{folder}/*.{ext}'")
    assert whole_folder[0] > N and whole_folder[1] == N  # the glob double counts the leftover's profiles

    # Plain JSON, as docs/loading.md shows it: every manifest in _manifests/, keys relative to the destination.
    files: list[str] = []
    for path in sorted((dest / "_manifests").glob("*-manifest.json")):
        manifest = json.loads(path.read_text(encoding="utf-8"))
        for f in manifest["files"]:
            data = (dest / f["key"]).read_bytes()
            assert (len(data), hashlib.sha256(data).hexdigest()) == (f["bytes"], f["sha256"])
            files.append(str(dest / f["key"]))
    assert files == [f.url for m in read_manifests(str(dest)) for f in m.files]
    listed = "[" + ", ".join(f"'{f}'" for f in files) + "]"
    assert count(listed) == (N, N)


# -- the page and the tests use the same statements ----------------------------------------------------


def test_the_statements_are_the_ones_docs_loading_md_gives() -> None:
    page = (Path(__file__).resolve().parent.parent / "docs" / "loading.md").read_text(encoding="utf-8")
    folder = f"exports/{DATE_FOLDER}"
    statements = [s.format(folder=folder) for s in (*DUCKDB.values(), *CLICKHOUSE.values())]
    statements += [
        CLICKHOUSE_JSON_MAPPINGS,
        f'pl.read_csv("{folder}/*.csv.gz")',
        f'pl.read_ndjson("{folder}/*.json.gz")',
        f'pl.read_parquet("{folder}/*.parquet")',
        f'pl.read_ndjson("{folder}/*.json.gz", schema_overrides={{"Prefs": pl.String, "Extra": pl.String}})',
        f'"{folder}", header=True, inferSchema=True, multiLine=True, escape=\'"\', '
        'positiveInf="inf", negativeInf="-inf"',
        'options = {"header": True, "multiLine": True, "escape": \'"\', "positiveInf": "inf", "negativeInf": "-inf"}',
        f'inferred = spark.read.csv("{folder}", inferSchema=True, **options).schema',
        "StructField(f.name, StringType()) if f.name in text_columns else f for f in inferred",
        f'spark.read.csv("{folder}", schema=schema, **options)',
        f'spark.read.json("{folder}")',
        f'spark.read.parquet("{folder}")',
        f'spark.read.json("{folder}", schema="clevertapId STRING, Prefs STRING, Extra STRING")',
    ]
    missing = [s for s in statements if s not in page]
    assert not missing, missing
    options_line = next(s for s in statements if s.startswith("options = "))
    assert ast.literal_eval(options_line.removeprefix("options = ")) == SPARK_CSV_OPTIONS
