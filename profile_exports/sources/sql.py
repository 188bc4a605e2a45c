"""The ``sql`` source: the rows of one SQL query (or one table), streamed as Arrow record batches.

Two kinds of connection are served:

* SQLAlchemy: a URL (``url = "postgresql://..."``) or an ``Engine`` / ``Connection`` passed in as
  ``connection``. Rows are fetched with a server-side cursor where the dialect has one
  (``stream_results`` + ``yield_per``), ``batch_size`` rows at a time, and turned into Arrow columns
  with ``pa.array``. A column whose values in a batch have Python types that Arrow cannot put in one
  column (SQLite lets ``31`` and ``'31x'`` share a column) is kept as text for that batch; the values
  converted are counted in ``SqlSource.values_as_text``.
* ADBC: any DB-API connection whose cursors have ``fetch_record_batch`` (``adbc_driver_sqlite``,
  ``adbc_driver_postgresql``, ...). The driver builds the Arrow batches itself; they are re-cut to
  ``batch_size`` rows (the last one shorter), copying only the rows of a batch that straddles two
  driver batches.

SQLAlchemy is an optional dependency (the ``sql`` extra); it is imported only when a SQLAlchemy
connection is actually used, so the ADBC path works without it.

The URL is kept as a SQLAlchemy ``URL`` object and only ever rendered with its password hidden; the
password is also scrubbed from every database message this module re-raises.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from ..canonical import python_array
from ..errors import ConfigError, DataError, MissingExtraError
from ..hookspecs import hookimpl

if TYPE_CHECKING:
    from types import ModuleType

__all__ = ["SqlSource", "SqlSourceFactory"]

_OPTIONS = ("url", "connection", "query", "table")

# Arrow refuses a list of Python values with one of these when their types cannot share a column.
_MIXED_TYPE_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError)

_CHECK_QUERY = (
    "Check that the query is valid SQL for this database, that the tables and columns it names exist "
    "and that the connection has the right to read them."
)


def _sqlalchemy() -> ModuleType:
    """Import SQLAlchemy on first use; its absence only matters to users of this path."""
    try:
        import sqlalchemy
        import sqlalchemy.exc
    except ImportError:
        raise MissingExtraError("the sql source", "sql", "sqlalchemy") from None
    return sqlalchemy


def _is_sqlalchemy_connectable(obj: Any) -> bool:
    # An Engine or Connection can only exist when SQLAlchemy has been imported already, so looking in
    # sys.modules never imports it just to answer "no".
    engine_mod = sys.modules.get("sqlalchemy.engine")
    if engine_mod is None:
        return False
    return isinstance(obj, (engine_mod.Engine, engine_mod.Connection))


def _is_adbc_connection(obj: Any) -> bool:
    """Duck typing: a DB-API connection whose cursors can return Arrow record batch readers."""
    make_cursor = getattr(obj, "cursor", None)
    if not callable(make_cursor):
        return False
    try:
        cursor = make_cursor()
    except Exception:
        return False
    try:
        return callable(getattr(cursor, "fetch_record_batch", None))
    finally:
        close = getattr(cursor, "close", None)
        if callable(close):
            with suppress(Exception):
                close()


def _quote_adbc_identifier(name: str) -> str:
    """SQL standard identifier quoting: double quotes around, embedded double quotes doubled."""
    return '"' + name.replace('"', '""') + '"'


def _as_text(values: Sequence[Any]) -> tuple[pa.Array, int]:
    """Values as an Arrow string array (``None`` stays null) and how many were not text already."""
    converted = 0
    out: list[str | None] = []
    for value in values:
        if value is None or isinstance(value, str):
            out.append(value)
            continue
        converted += 1
        if isinstance(value, bytes | bytearray | memoryview):
            out.append(bytes(value).decode("utf-8", errors="backslashreplace"))
        else:
            out.append(str(value))
    return pa.array(out, type=pa.string()), converted


def _combine(pieces: list[pa.RecordBatch]) -> pa.RecordBatch:
    """One batch from consecutive slices of the same schema; copies only when there are several."""
    return pieces[0] if len(pieces) == 1 else pa.concat_batches(pieces)


class SqlSource:
    """The result of one SQL query as a single partition (``0``) of Arrow record batches.

    ``read`` runs the query again on every call, so the source is re-iterable as long as the database
    answers the same. ``values_as_text`` maps a column name to the number of values that the last
    ``read`` (SQLAlchemy path) had to convert to text because the column mixed types within a batch.
    """

    def __init__(
        self,
        *,
        batch_size: int,
        query: str | None = None,
        table: str | None = None,
        url: Any = None,
        connection: Any = None,
        adbc: bool = False,
    ) -> None:
        if (query is None) == (table is None):
            raise ConfigError("source.query", "set exactly one of query (SQL text) and table (a table name)")
        if (url is None) == (connection is None):
            raise ConfigError(
                "source.url", "set exactly one of url (a SQLAlchemy URL) and connection (a connection object)"
            )
        self.batch_size = batch_size
        self._query = query
        self._table = table
        self._url = url  # a sqlalchemy URL object, whose repr hides the password
        self._connection = connection
        self._adbc = adbc
        self.values_as_text: dict[str, int] = {}
        self._where = self._describe_connection()

    # -- Source protocol -------------------------------------------------------------------------

    def partitions(self) -> Sequence[int]:
        return [0]

    def schema(self) -> pa.Schema | None:
        return None

    @property
    def reiterable(self) -> bool:
        return True

    def describe(self) -> str:
        what = "query" if self._table is None else f"table {self._table!r}"
        return f"sql {what} on {self._where}"

    def read(self, partition: int) -> Iterator[pa.RecordBatch]:
        if partition != 0:
            raise ValueError(f"{self.describe()} has a single partition, 0; got {partition!r}")
        if self._adbc:
            return self._read_adbc()
        return self._read_sqlalchemy()

    def __repr__(self) -> str:
        return f"SqlSource({self.describe()!r}, batch_size={self.batch_size})"

    # -- helpers ---------------------------------------------------------------------------------

    def _describe_connection(self) -> str:
        if self._url is not None:
            return self._url.render_as_string(hide_password=True)
        conn = self._connection
        if self._adbc:
            vendor = ""
            get_info = getattr(conn, "adbc_get_info", None)
            if callable(get_info):
                try:
                    vendor = str(get_info().get("vendor_name") or "")
                except Exception:
                    vendor = ""
            return f"an ADBC {vendor} connection" if vendor else "an ADBC connection"
        engine = getattr(conn, "engine", conn)  # a Connection knows its Engine
        url = getattr(engine, "url", None)
        if url is not None:
            return url.render_as_string(hide_password=True)
        return "a SQLAlchemy connection"

    def _password(self) -> str | None:
        url = self._url
        if url is None:
            engine = getattr(self._connection, "engine", self._connection)
            url = getattr(engine, "url", None)
        password = getattr(url, "password", None)
        return str(password) if password else None

    def _redact(self, message: str) -> str:
        password = self._password()
        return message.replace(password, "***") if password else message

    def _sql(self, quote: Callable[[str], str]) -> str:
        if self._table is not None:
            return f"SELECT * FROM {quote(self._table)}"
        assert self._query is not None
        return self._query

    @contextmanager
    def _database_errors(
        self, errors: tuple[type[BaseException], ...], doing: str, advice: str = _CHECK_QUERY
    ) -> Iterator[None]:
        """Re-raise a database failure as ``DataError`` naming this source and what to check."""
        try:
            yield
        except errors as exc:
            orig = getattr(exc, "orig", None)  # SQLAlchemy wraps the driver's exception
            reason = str(orig if orig is not None else exc).strip() or type(exc).__name__
            raise DataError(
                f"{self.describe()}: the database failed while {doing}: {self._redact(reason)}. {advice}"
            ) from exc

    # -- ADBC ------------------------------------------------------------------------------------

    def _read_adbc(self) -> Iterator[pa.RecordBatch]:
        conn = self._connection
        db_error = getattr(conn, "Error", None)  # the DB-API optional extension; ADBC has it
        errors: tuple[type[BaseException], ...] = (pa.ArrowException, OSError)
        if isinstance(db_error, type) and issubclass(db_error, BaseException):
            errors = (db_error, *errors)
        sql = self._sql(_quote_adbc_identifier)
        size = self.batch_size
        self.values_as_text = {}
        with self._database_errors(errors, "opening a cursor"):
            cursor = conn.cursor()
        try:
            with self._database_errors(errors, "running the query"):
                cursor.execute(sql)
                batches = iter(cursor.fetch_record_batch())
            mixed_advice = (
                "ADBC drivers fix a column's type from the first rows they read; if a column holds values "
                "of different types, CAST it to one type in the query (for example CAST(col AS TEXT))."
            )
            pending: list[pa.RecordBatch] = []  # slices waiting to fill one batch of `size` rows
            pending_rows = 0
            while True:
                with self._database_errors(errors, "reading the results", mixed_advice):
                    batch = next(batches, None)
                if batch is None:
                    break
                offset = 0
                while offset < batch.num_rows:
                    piece = batch.slice(offset, size - pending_rows)  # zero-copy view
                    offset += piece.num_rows
                    pending.append(piece)
                    pending_rows += piece.num_rows
                    if pending_rows == size:
                        yield _combine(pending)
                        pending, pending_rows = [], 0
            if pending_rows:
                yield _combine(pending)
        finally:
            cursor.close()

    # -- SQLAlchemy ------------------------------------------------------------------------------

    def _read_sqlalchemy(self) -> Iterator[pa.RecordBatch]:
        sa = _sqlalchemy()
        db_errors = (sa.exc.DBAPIError,)
        self.values_as_text = {}
        engine: Any = None
        own_engine = self._url is not None
        if own_engine:
            try:
                engine = sa.create_engine(self._url)
            except (ImportError, sa.exc.SQLAlchemyError) as exc:
                raise ConfigError(
                    "source.url",
                    f"cannot use {self._where}: {self._redact(str(exc))}. Check the dialect and driver "
                    "in the URL and that the driver package is installed",
                ) from exc
        try:
            if isinstance(self._connection, sa.engine.Connection):
                # The caller's connection: used as it is, never closed.
                yield from self._stream(self._connection, db_errors)
            else:
                connectable: Any = engine if own_engine else self._connection
                with self._database_errors(db_errors, "connecting", "Check the connection settings."):
                    conn = connectable.connect()
                with conn:
                    yield from self._stream(conn, db_errors)
        finally:
            if own_engine and engine is not None:
                engine.dispose()

    def _stream(self, conn: Any, db_errors: tuple[type[BaseException], ...]) -> Iterator[pa.RecordBatch]:
        sql = self._sql(conn.dialect.identifier_preparer.quote)
        size = self.batch_size
        # Per-statement options: Connection.execution_options() would change the caller's connection.
        # exec_driver_sql + no_parameters sends the text untouched (no ":name" binds, no "%" escaping).
        options = {"stream_results": True, "yield_per": size, "no_parameters": True}
        with self._database_errors(db_errors, "running the query"):
            result = conn.exec_driver_sql(sql, execution_options=options)
        with result:
            if not result.returns_rows:
                raise DataError(
                    f"{self.describe()}: the statement returned no rows (it is not a query). "
                    "Use a SELECT statement, or table = a table name"
                )
            names = list(map(str, result.keys()))
            chunks = result.partitions(size)
            while True:
                with self._database_errors(db_errors, "reading the results"):
                    rows = next(chunks, None)
                if not rows:
                    break
                yield self._to_batch(names, rows)

    def _to_batch(self, names: list[str], rows: Sequence[Sequence[Any]]) -> pa.RecordBatch:
        arrays = []
        for index, name in enumerate(names):
            values = [row[index] for row in rows]
            try:
                if isinstance(next((v for v in values if v is not None), None), Mapping):
                    # A driver's JSON column as dicts (psycopg): typed so each keeps its own keys.
                    array, converted = python_array(values)
                    if converted:
                        self.values_as_text[name] = self.values_as_text.get(name, 0) + converted
                else:
                    array = pa.array(values)
            except _MIXED_TYPE_ERRORS:
                array, converted = _as_text(values)
                if converted:
                    self.values_as_text[name] = self.values_as_text.get(name, 0) + converted
            arrays.append(array)
        return pa.RecordBatch.from_arrays(arrays, names=names)


class SqlSourceFactory:
    """Builds a ``SqlSource`` from the ``[source]`` options of ``kind = "sql"``.

    Options: exactly one of ``url`` (SQLAlchemy URL) and ``connection`` (SQLAlchemy ``Engine`` or
    ``Connection``, or an ADBC DB-API connection); exactly one of ``query`` (SQL text) and ``table``.
    """

    name = "sql"

    def __call__(self, options: Mapping[str, Any], *, batch_size: int) -> SqlSource:
        for key in options:
            if key == "kind" and options[key] == self.name:
                continue  # tolerated: the selector of this factory, when the core passes it along
            if key not in _OPTIONS:
                raise ConfigError(
                    f"source.{key}",
                    "unknown option for the sql source; use url or connection, and query or table",
                )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError("batch_size", "must be a positive whole number of rows")
        given = {key: options[key] for key in _OPTIONS if options.get(key) is not None}

        if "url" in given and "connection" in given:
            raise ConfigError("source.connection", "set url or connection, not both")
        if "url" not in given and "connection" not in given:
            raise ConfigError(
                "source.url",
                "missing: set url to a SQLAlchemy URL (for example sqlite:///profiles.db), or connection to "
                "a SQLAlchemy Engine/Connection or an ADBC connection",
            )
        if "query" in given and "table" in given:
            raise ConfigError("source.table", "set query or table, not both")
        if "query" not in given and "table" not in given:
            raise ConfigError("source.query", "missing: set query to a SELECT statement, or table to a table name")
        for key in ("query", "table"):
            if key in given and (not isinstance(given[key], str) or not given[key].strip()):
                raise ConfigError(f"source.{key}", "must be a non-empty string")

        url = None
        adbc = False
        if "url" in given:
            url = self._parse_url(given["url"])
        else:
            connection = given["connection"]
            if not _is_sqlalchemy_connectable(connection):
                if _is_adbc_connection(connection):
                    adbc = True
                else:
                    raise ConfigError(
                        "source.connection",
                        f"a {type(connection).__name__} is not supported; pass a SQLAlchemy Engine or "
                        "Connection, an ADBC DB-API connection (its cursors have fetch_record_batch), "
                        "or set url instead",
                    )
        return SqlSource(
            batch_size=batch_size,
            query=given.get("query"),
            table=given.get("table"),
            url=url,
            connection=given.get("connection"),
            adbc=adbc,
        )

    @staticmethod
    def _parse_url(value: Any) -> Any:
        sa = _sqlalchemy()
        if not isinstance(value, str | sa.engine.URL):
            raise ConfigError("source.url", "must be a string such as sqlite:///profiles.db")
        try:
            return sa.make_url(value)
        except sa.exc.ArgumentError:
            # The message never repeats the URL: it may carry a password.
            raise ConfigError(
                "source.url",
                "is not a SQLAlchemy URL; expected dialect[+driver]://user:password@host/database, "
                "for example sqlite:///profiles.db",
            ) from None


@hookimpl
def register_sources(register):
    register(SqlSourceFactory())
