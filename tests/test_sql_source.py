"""The ``sql`` source against real SQLite database files, through SQLAlchemy and through ADBC."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pluggy
import pyarrow as pa
import pytest

from profile_exports import hookspecs
from profile_exports.errors import ConfigError, DataError, MissingExtraError
from profile_exports.sources import sql as sql_module
from profile_exports.sources.sql import SqlSource, SqlSourceFactory

sqlalchemy = pytest.importorskip("sqlalchemy")
adbc_sqlite = pytest.importorskip("adbc_driver_sqlite.dbapi")

N_ROWS = 2_500
BATCH = 1_000
COLUMNS = ["id", "name", "age", "score", "note"]
ODD_TABLE = 'my "odd" table'
NAMES = ["Zoë", "José", "名前", "🙂 smile", "plain", "Ørjan 🚀", "", "O'Brien", 'say "hi"', "tab\there"]


def _expected_rows() -> list[dict]:
    rows = []
    for i in range(N_ROWS):
        rows.append(
            {
                "id": i + 1,
                "name": f"{NAMES[i % len(NAMES)]} #{i}",
                "age": None if i % 7 == 3 else 18 + i % 80,
                "score": None if i % 11 == 5 else i * 0.25 - 100.125,
                "note": None if i % 3 else f"note ✓ {i} — ünïcödé 👩‍💻",
            }
        )
    return rows


EXPECTED = _expected_rows()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "profiles.db"
    con = sqlite3.connect(path)
    with con:
        con.execute(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, age INTEGER, score REAL, note TEXT)"
        )
        con.executemany(
            "INSERT INTO users VALUES (:id, :name, :age, :score, :note)",
            EXPECTED,
        )
        con.execute(f'CREATE TABLE "{ODD_TABLE.replace(chr(34), chr(34) * 2)}" (k INTEGER, v TEXT)')
        con.executemany(f'INSERT INTO "{ODD_TABLE.replace(chr(34), 2 * chr(34))}" VALUES (?, ?)', [(1, "a")])
        # A column without a declared type has no affinity: SQLite keeps 31 and '31x' as they are.
        con.execute("CREATE TABLE mixed (id INTEGER, v)")
        con.executemany("INSERT INTO mixed VALUES (?, ?)", [(1, 31), (2, "31x"), (3, None), (4, 2.5), (5, "plain")])
    con.close()
    return path


def _url(path: Path) -> str:
    return f"sqlite:///{path}"


def _read(source: SqlSource) -> list[pa.RecordBatch]:
    return list(source.read(0))


def _rows(batches: list[pa.RecordBatch]) -> list[dict]:
    return [row for batch in batches for row in batch.to_pylist()]


def _check_users(batches: list[pa.RecordBatch]) -> None:
    assert [b.num_rows for b in batches] == [1000, 1000, 500]
    for batch in batches:
        assert isinstance(batch, pa.RecordBatch)
        assert batch.schema.names == COLUMNS
        assert batch.num_rows <= BATCH
        assert batch.schema.field("id").type == pa.int64()
        assert batch.schema.field("name").type == pa.string()
        assert batch.schema.field("age").type == pa.int64()
        assert batch.schema.field("score").type == pa.float64()
        assert batch.schema.field("note").type == pa.string()
    assert _rows(batches) == EXPECTED


# -- reading ---------------------------------------------------------------------------------


def test_url_round_trip_and_reread(db_path: Path) -> None:
    source = SqlSourceFactory()({"url": _url(db_path), "query": "SELECT * FROM users ORDER BY id"}, batch_size=BATCH)
    assert source.partitions() == [0]
    assert source.schema() is None
    assert source.reiterable is True
    assert source.describe() == f"sql query on {_url(db_path)}"

    first = _read(source)
    _check_users(first)
    second = _read(source)
    _check_users(second)
    assert pa.Table.from_batches(first).equals(pa.Table.from_batches(second))
    assert source.values_as_text == {}


def test_passed_engine_is_left_usable(db_path: Path) -> None:
    engine = sqlalchemy.create_engine(_url(db_path))
    try:
        source = SqlSourceFactory()({"connection": engine, "table": "users"}, batch_size=BATCH)
        assert source.describe() == f"sql table 'users' on {_url(db_path)}"
        _check_users(_read(source))
        _check_users(_read(source))
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM users").scalar() == N_ROWS
    finally:
        engine.dispose()


def test_passed_connection_is_never_closed(db_path: Path) -> None:
    engine = sqlalchemy.create_engine(_url(db_path))
    try:
        with engine.connect() as conn:
            source = SqlSourceFactory()(
                {"connection": conn, "query": "SELECT * FROM users ORDER BY id"}, batch_size=BATCH
            )
            _check_users(_read(source))
            _check_users(_read(source))  # re-executes on the same external connection
            assert not conn.closed
            assert conn.exec_driver_sql("SELECT count(*) FROM users").scalar() == N_ROWS
            # The streaming options were set per statement, not on the caller's connection.
            assert "yield_per" not in conn.get_execution_options()
    finally:
        engine.dispose()


def test_adbc_round_trip_and_reread(db_path: Path) -> None:
    conn = adbc_sqlite.connect(str(db_path))
    try:
        source = SqlSourceFactory()({"connection": conn, "query": "SELECT * FROM users ORDER BY id"}, batch_size=BATCH)
        assert source.describe() == "sql query on an ADBC SQLite connection"
        first = _read(source)
        _check_users(first)
        second = _read(source)
        _check_users(second)
        assert pa.Table.from_batches(first).equals(pa.Table.from_batches(second))
    finally:
        conn.close()


def test_adbc_small_batches_and_abandoned_read(db_path: Path) -> None:
    conn = adbc_sqlite.connect(str(db_path))
    try:
        source = SqlSourceFactory()({"connection": conn, "table": "users"}, batch_size=300)
        batches = _read(source)
        assert all(b.num_rows <= 300 for b in batches)
        assert sum(b.num_rows for b in batches) == N_ROWS
        assert sorted(_rows(batches), key=lambda r: r["id"]) == EXPECTED

        reader = source.read(0)
        assert next(reader).num_rows == 300
        reader.close()  # closes the cursor; the connection stays usable
        assert sum(b.num_rows for b in source.read(0)) == N_ROWS
    finally:
        conn.close()


def test_abandoned_sqlalchemy_read_releases_the_connection(db_path: Path) -> None:
    engine = sqlalchemy.create_engine(_url(db_path))
    try:
        with engine.connect() as conn:
            source = SqlSourceFactory()({"connection": conn, "table": "users"}, batch_size=BATCH)
            reader = source.read(0)
            assert next(reader).num_rows == BATCH
            reader.close()  # closes the result, not the caller's connection
            assert not conn.closed
            assert conn.exec_driver_sql("SELECT count(*) FROM users").scalar() == N_ROWS
        own = SqlSourceFactory()({"url": _url(db_path), "table": "users"}, batch_size=BATCH)
        reader = own.read(0)
        next(reader)
        reader.close()  # closes the connection and disposes the engine it created
        _check_users(_read(own))
    finally:
        engine.dispose()


def test_sqlalchemy_small_batches(db_path: Path) -> None:
    source = SqlSourceFactory()({"url": _url(db_path), "table": "users"}, batch_size=7)
    batches = _read(source)
    assert all(0 < b.num_rows <= 7 for b in batches)
    assert sorted(_rows(batches), key=lambda r: r["id"]) == EXPECTED


def test_empty_result_yields_no_batches(db_path: Path) -> None:
    query = {"query": "SELECT * FROM users WHERE id < 0"}
    assert _read(SqlSourceFactory()({"url": _url(db_path), **query}, batch_size=BATCH)) == []
    conn = adbc_sqlite.connect(str(db_path))
    try:
        assert _read(SqlSourceFactory()({"connection": conn, **query}, batch_size=BATCH)) == []
    finally:
        conn.close()


def test_query_text_is_sent_untouched(db_path: Path) -> None:
    # No ":name" bind parameters and no "%" escaping: the SQL goes to the driver as written.
    source = SqlSourceFactory()(
        {"url": _url(db_path), "query": "SELECT 'at 12:30 :b 100%' AS s, count(*) AS n FROM users"},
        batch_size=BATCH,
    )
    assert _rows(_read(source)) == [{"s": "at 12:30 :b 100%", "n": N_ROWS}]


# -- table quoting ---------------------------------------------------------------------------


def test_table_quoting_sqlalchemy(db_path: Path) -> None:
    source = SqlSourceFactory()({"url": _url(db_path), "table": ODD_TABLE}, batch_size=BATCH)
    assert _rows(_read(source)) == [{"k": 1, "v": "a"}]


def test_table_quoting_adbc(db_path: Path) -> None:
    conn = adbc_sqlite.connect(str(db_path))
    try:
        source = SqlSourceFactory()({"connection": conn, "table": ODD_TABLE}, batch_size=BATCH)
        assert _rows(_read(source)) == [{"k": 1, "v": "a"}]
    finally:
        conn.close()


def test_table_name_cannot_inject_sql(db_path: Path) -> None:
    evil = 'users"; DROP TABLE users; --'
    source = SqlSourceFactory()({"url": _url(db_path), "table": evil}, batch_size=BATCH)
    with pytest.raises(DataError, match="no such table"):
        _read(source)
    con = sqlite3.connect(db_path)
    try:
        assert con.execute("SELECT count(*) FROM users").fetchone() == (N_ROWS,)
    finally:
        con.close()


# -- mixed types -----------------------------------------------------------------------------


def test_mixed_type_column_kept_as_text_and_counted(db_path: Path) -> None:
    source = SqlSourceFactory()(
        {"url": _url(db_path), "query": "SELECT id, v FROM mixed ORDER BY id"}, batch_size=BATCH
    )
    (batch,) = _read(source)
    assert batch.schema.field("v").type == pa.string()
    assert batch.schema.field("id").type == pa.int64()
    assert batch.column("v").to_pylist() == ["31", "31x", None, "2.5", "plain"]
    assert source.values_as_text == {"v": 2}  # 31 and 2.5 were converted; the strings were text
    _read(source)
    assert source.values_as_text == {"v": 2}  # counts the last read, not every read


def test_mixed_types_are_decided_per_batch(db_path: Path) -> None:
    source = SqlSourceFactory()({"url": _url(db_path), "query": "SELECT v FROM mixed ORDER BY id"}, batch_size=2)
    batches = _read(source)
    assert [b.column("v").to_pylist() for b in batches] == [["31", "31x"], [None, 2.5], ["plain"]]
    assert [b.schema.field("v").type for b in batches] == [pa.string(), pa.float64(), pa.string()]
    assert source.values_as_text == {"v": 1}


def test_adbc_type_change_after_first_batch_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "drift.db"
    con = sqlite3.connect(path)
    with con:
        con.execute("CREATE TABLE t (v)")
        con.executemany("INSERT INTO t VALUES (?)", [(i if i < 2400 else f"{i}x",) for i in range(2500)])
    con.close()
    conn = adbc_sqlite.connect(str(path))
    try:
        source = SqlSourceFactory()({"connection": conn, "table": "t"}, batch_size=BATCH)
        with pytest.raises(DataError) as info:
            _read(source)
        assert source.describe() in str(info.value)
        assert "CAST" in str(info.value)
    finally:
        conn.close()


# -- errors ----------------------------------------------------------------------------------


def test_bad_sql_names_the_source_sqlalchemy(db_path: Path) -> None:
    source = SqlSourceFactory()({"url": _url(db_path), "query": "SELECT * FROM nope"}, batch_size=BATCH)
    with pytest.raises(DataError) as info:
        _read(source)
    message = str(info.value)
    assert source.describe() in message
    assert "no such table: nope" in message
    assert "Check" in message

    source = SqlSourceFactory()({"url": _url(db_path), "query": "SELEC oops"}, batch_size=BATCH)
    with pytest.raises(DataError, match="syntax error") as info:
        _read(source)
    assert source.describe() in str(info.value)


def test_bad_sql_names_the_source_adbc(db_path: Path) -> None:
    conn = adbc_sqlite.connect(str(db_path))
    try:
        source = SqlSourceFactory()({"connection": conn, "table": "missing"}, batch_size=BATCH)
        with pytest.raises(DataError) as info:
            _read(source)
        assert source.describe() in str(info.value)
        assert "no such table: missing" in str(info.value)
        # The connection survives the failed query.
        assert (
            sum(
                b.num_rows for b in SqlSourceFactory()({"connection": conn, "table": "users"}, batch_size=BATCH).read(0)
            )
            == N_ROWS
        )
    finally:
        conn.close()


def test_statement_without_rows_is_a_data_error(db_path: Path) -> None:
    source = SqlSourceFactory()(
        {"url": _url(db_path), "query": "UPDATE users SET age = age WHERE id < 0"}, batch_size=BATCH
    )
    with pytest.raises(DataError, match="returned no rows"):
        _read(source)


def _sqlite3_connection(tmp_path: Path) -> sqlite3.Connection:
    return sqlite3.connect(tmp_path / "plain.db")


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({}, "source.url"),
        ({"query": "SELECT 1"}, "source.url"),
        ({"url": "sqlite://", "connection": "ENGINE", "query": "SELECT 1"}, "source.connection"),
        ({"url": "sqlite://"}, "source.query"),
        ({"url": "sqlite://", "query": "SELECT 1", "table": "users"}, "source.table"),
        ({"url": "sqlite://", "query": "SELECT 1", "password": "x"}, "source.password"),
        ({"url": "sqlite://", "query": "   "}, "source.query"),
        ({"url": "sqlite://", "table": 3}, "source.table"),
        ({"url": "not a url at all", "query": "SELECT 1"}, "source.url"),
        ({"url": 42, "query": "SELECT 1"}, "source.url"),
        ({"connection": "sqlite:///x.db", "query": "SELECT 1"}, "source.connection"),
        ({"connection": "SQLITE3", "query": "SELECT 1"}, "source.connection"),
    ],
)
def test_bad_options_raise_config_error(options: dict, field: str, tmp_path: Path) -> None:
    plain = _sqlite3_connection(tmp_path)
    engine = sqlalchemy.create_engine("sqlite://")
    replace = {"ENGINE": engine, "SQLITE3": plain}
    options = {k: replace.get(v, v) if isinstance(v, str) else v for k, v in options.items()}
    try:
        with pytest.raises(ConfigError) as info:
            SqlSourceFactory()(options, batch_size=BATCH)
        assert info.value.field == field
        assert str(info.value).startswith(f"{field}: ")
    finally:
        plain.close()
        engine.dispose()


def test_bad_batch_size() -> None:
    with pytest.raises(ConfigError):
        SqlSourceFactory()({"url": "sqlite://", "query": "SELECT 1"}, batch_size=0)


def test_password_never_shown() -> None:
    url = "postgresql://u:s3cret@host/db"
    source = SqlSourceFactory()({"url": url, "table": "users"}, batch_size=BATCH)
    assert "s3cret" not in source.describe()
    assert "s3cret" not in repr(source)
    assert source.describe() == "sql table 'users' on postgresql://u:***@host/db"
    with pytest.raises(ConfigError) as info:
        SqlSourceFactory()({"url": url, "query": "SELECT 1", "bogus": 1}, batch_size=BATCH)
    assert "s3cret" not in str(info.value)

    as_object = SqlSourceFactory()({"url": sqlalchemy.make_url(url), "query": "SELECT 1"}, batch_size=BATCH)
    assert as_object.describe() == "sql query on postgresql://u:***@host/db"
    assert "s3cret" not in repr(as_object)


# -- optional dependency and registration ----------------------------------------------------


def test_missing_sqlalchemy_only_matters_when_used(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)  # "import sqlalchemy" now raises ImportError
    with pytest.raises(MissingExtraError) as info:
        SqlSourceFactory()({"url": _url(db_path), "table": "users"}, batch_size=BATCH)
    assert info.value.extra == "sql"
    assert "sqlalchemy" in str(info.value)

    conn = adbc_sqlite.connect(str(db_path))
    try:
        source = SqlSourceFactory()({"connection": conn, "table": "users"}, batch_size=BATCH)
        assert sum(b.num_rows for b in source.read(0)) == N_ROWS
    finally:
        conn.close()


def test_module_import_does_not_import_sqlalchemy() -> None:
    code = (
        "import sys, profile_exports.sources.sql; "
        "assert 'sqlalchemy' not in sys.modules, sorted(m for m in sys.modules if 'sqlalchemy' in m)"
    )
    root = Path(sql_module.__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, env={**os.environ, "PYTHONPATH": str(root)})


def test_registers_through_the_hook() -> None:
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.register(sql_module)
    registered: list = []
    pm.hook.register_sources(register=registered.append)
    assert [f.name for f in registered] == ["sql"]
    assert isinstance(registered[0], SqlSourceFactory)


def test_json_columns_a_driver_gives_as_dicts_keep_their_own_keys() -> None:
    from profile_exports.sources.sql import SqlSource

    source = object.__new__(SqlSource)  # only the batch building is under test: no database needed
    source.values_as_text = {}
    rows = [("p1", {"a": 1}), ("p2", {"b": "x"}), ("p3", {}), ("p4", None)]
    batch = source._to_batch(["profile_id", "prefs"], rows)
    prefs = batch.column(1).to_pylist()
    decoded = [None if v is None else json.loads(v) if isinstance(v, str) else dict(v) for v in prefs]
    assert decoded == [{"a": 1}, {"b": "x"}, {}, None]
