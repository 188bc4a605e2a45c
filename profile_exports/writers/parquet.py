"""Parquet: typed columns, the reference's grouping (``nested``) or one column per output column (``flat``).

The nested layout has the reference sample's top-level columns — ``identity``, ``profileIdentities``,
``device``, ``commPrefs``, ``profileProps`` — with native Parquet structs, lists and maps and the real
types of the values (the reference's ``member0``/``member1`` union wrappers are an artifact of its
Avro origin and are not reproduced). A group with no selected column is left out: Parquet has no
empty structs. The flat layout is exactly the output columns, one typed top-level column each, for
warehouses that load Parquet column by column. Columns of nothing but nulls are strings; an empty
object keeps a struct with one placeholder field (``EMPTY_STRUCT_FIELD``).

Files rotate at a cap on bytes actually written. Parquet's size is only known once a row group is
encoded, and a row group cannot be taken back, so the writer projects each row group's size from
the row groups written before and cuts the row group, or starts the next file, before the
projection would cross the cap. A file exceeds the cap only if a row group turns out much bigger
than projected (values far less compressible than all before them), or if one row alone is bigger
than the cap (it gets a file of its own). Every file is a complete Parquet file.

Columns whose values are nearly all distinct in the first row group (ids, emails, tokens) are
written without a dictionary, and text ones without min/max statistics (``DISTINCT_SHARE``). Row
groups are encoded in a thread while the next rows are read and projected.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import attrs
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..hookspecs import hookimpl
from ..interfaces import NewFile, SinkFile
from ..layout import GROUP_ORDER, OutputLayout
from ..results import CommittedFile, commit_file
from ..values import JSON_TEXT, is_json_type, is_text_type, json_text

# The first is the default: zstd pages make files about half the size of uncompressed ones for little
# time, and every engine reads them (the file stays `.parquet`; only `gzip` is named `.parquet.gz`).
CODECS: dict[str, str | None] = {"zstd": "zstd", "none": None, "snappy": "snappy", "gzip": "gzip"}
# Arrow's gzip default is level 9: on profile data 7x slower than level 1 for 6% smaller files. Like
# the text formats, favour speed; zstd is the codec to pick for small files.
CODEC_LEVELS: dict[str, int | None] = {"gzip": 1}
LAYOUTS = ("nested", "flat")

ROW_GROUP_ROWS = 65_536  # readers parallelise and skip by row group: big enough, not huge
ROW_GROUP_BYTES = 64 * 1024 * 1024  # Arrow bytes buffered at most before a row group is written
# Bytes gathered before a write to the sink. Row groups are written in a thread, and each write to
# the (Python) sink waits for the GIL: few large writes, not hundreds of small ones.
WRITE_BUFFER = 16 * 1024 * 1024
PROBE_ROWS = 1024  # the first row group, written before there is any size history to project from
CALIBRATION_ROWS = 64  # the fixed cost of a row group is measured on a typical one of these
SAMPLE_ROWS = 1024  # rows of a row group encoded in memory first, to catch a change in the data
SAMPLE_RUNS = 16

# Each row group written halves the weight of those before: the projection follows the data.
HISTORY_DECAY = 0.5
# The ratio learnt from the row groups written is trusted for row groups up to this many times their
# volume: a first row group of short rows says little about a later one of long values.
HISTORY_REACH = 4
# Data the history cannot vouch for: Parquet (dictionary or plain pages, optionally compressed) is
# hardly bigger than the Arrow data, once the fixed cost of a row group is counted. (Not a strict
# bound: a column whose dictionary overflows keeps its dictionary page, up to 1 MB, besides the
# plain pages; SIZE_MARGIN covers that for row groups of a few MB per column.)
PESSIMISTIC_RATIO = 1.1
# Smaller row groups compress a little worse (their dictionaries are spread over fewer rows): a row
# group k times smaller than those a ratio was learnt on is projected with the ratio times k ** this.
SMALL_GROUP_EXPONENT = 0.1
# A row group whose sample encodes this much bigger than the sample of the one before holds different
# data: the history says nothing about it, and the pessimistic ratio counts. (Samples of steady
# profile data differ by a few percent.)
CHANGED_DATA_DRIFT = 1.2
# The projection is multiplied by this: values drift, and the size model is a model.
SIZE_MARGIN = 1.1
# A tail row group smaller than this share of the cap is not worth its metadata: the file ends instead.
TAIL_SHARE = 1 / 64

# A leaf column with more distinct values than this share of its values in the first row group is
# written without a dictionary and, if it holds text or bytes, without min/max statistics: Arrow
# would build a dictionary only to drop it at its 1 MB limit and fall back to plain pages, and the
# min and max of scattered unique values (ids, emails, tokens) skip no row group for a reader.
# Together that is about a third of the time Parquet takes to encode profiles.
DISTINCT_SHARE = 0.5
# Fewer values than this in the first row group say little about a column: Arrow's defaults stay.
ENCODING_EVIDENCE = 1024
ENCODING_SAMPLE_ROWS = 8192  # rows of the first row group the choice is made on

# Parquet cannot store a struct without fields; an empty object keeps its struct (and so "{}" stays
# apart from a missing value) with one all-null field of this name.
EMPTY_STRUCT_FIELD = "_empty"
# Arrow reads no Parquet schema nested deeper than 100 levels (and writes one it cannot read back). A
# column nested deeper than this, with the root and a group struct above it, is written as JSON text.
PARQUET_COLUMN_DEPTH = 98
_FILE_TRAILER = 8  # footer length (4 bytes) and the closing "PAR1"


# -- types -----------------------------------------------------------------------------------------


def parquet_type(type_: pa.DataType) -> pa.DataType:
    """``type_`` with what Parquet cannot store replaced: null -> string, empty struct -> placeholder."""
    if pa.types.is_null(type_):
        return pa.string()
    if pa.types.is_struct(type_):
        if type_.num_fields == 0:
            return pa.struct([pa.field(EMPTY_STRUCT_FIELD, pa.string())])
        fields = [f.with_type(parquet_type(f.type)) for f in type_]
        return type_ if all(f.equals(g) for f, g in zip(fields, type_, strict=True)) else pa.struct(fields)
    if pa.types.is_map(type_):
        key, item = type_.key_field, type_.item_field
        new_key, new_item = key.with_type(parquet_type(key.type)), item.with_type(parquet_type(item.type))
        if new_key.equals(key) and new_item.equals(item):
            return type_
        return pa.map_(new_key, new_item, keys_sorted=type_.keys_sorted)
    if pa.types.is_list(type_) or pa.types.is_large_list(type_) or pa.types.is_fixed_size_list(type_):
        value = type_.value_field
        new_value = value.with_type(parquet_type(value.type))
        if new_value.equals(value):
            return type_
        if pa.types.is_large_list(type_):
            return pa.large_list(new_value)
        if pa.types.is_fixed_size_list(type_):
            return pa.list_(new_value, type_.list_size)
        return pa.list_(new_value)
    return type_


def storable_type(type_: pa.DataType) -> pa.DataType:
    """The type an output column is written with: ``parquet_type``, or JSON text for a column nested
    too deep for Parquet readers (lists of lists 50 levels deep, say)."""
    return JSON_TEXT if _parquet_depth(type_) > PARQUET_COLUMN_DEPTH else parquet_type(type_)


def _parquet_depth(type_: pa.DataType) -> int:
    """Levels of the Parquet schema of a column: a struct adds one, a list or a map two (a group and
    its repeated group), a value one."""
    if pa.types.is_struct(type_):
        return 1 + max((_parquet_depth(f.type) for f in type_), default=1)
    if pa.types.is_list(type_) or pa.types.is_large_list(type_) or pa.types.is_fixed_size_list(type_):
        return 2 + _parquet_depth(type_.value_type)
    if pa.types.is_map(type_):
        return 2 + max(_parquet_depth(type_.key_type), _parquet_depth(type_.item_type))
    return 1


def _conform(array: pa.Array, type_: pa.DataType) -> pa.Array:
    if array.type == type_:
        return array
    if is_json_type(type_) and not is_json_type(array.type):
        return pa.ExtensionArray.from_storage(JSON_TEXT, json_text(array, non_finite="null"))
    # Arrow casts nulls to any type and fills fields missing from a struct with nulls, so one cast
    # turns every unstorable part of a column into its stand-in.
    return array.cast(type_)


@attrs.frozen
class _Shape:
    """How the output columns of a layout become the top-level columns of the files."""

    schema: pa.Schema  # of the files
    column_types: tuple[pa.DataType, ...]  # each output column, storable in Parquet
    groups: tuple[tuple[int, ...] | int, ...]  # per file column: an output column, or a struct of several

    @classmethod
    def of(cls, layout: OutputLayout, parquet_layout: str) -> _Shape:
        columns = [pa.field(c.name, storable_type(c.type)) for c in layout.columns]
        types = tuple(f.type for f in columns)
        if parquet_layout == "flat":
            return cls(pa.schema(columns), types, tuple(range(len(columns))))
        index = {c.name: i for i, c in enumerate(layout.columns)}
        fields: list[pa.Field] = []
        groups: list[tuple[int, ...] | int] = []
        for group in GROUP_ORDER:
            members = [index[c.name] for c in layout.group(group)]
            if not members:
                continue  # Parquet has no empty structs: an unselected group is not a column
            if len(members) == 1 and layout.columns[members[0]].name == group:
                fields.append(columns[members[0]])  # identity and device: the column itself
                groups.append(members[0])
            else:
                fields.append(pa.field(group, pa.struct([columns[i] for i in members])))
                groups.append(tuple(members))
        return cls(pa.schema(fields), types, tuple(groups))

    def apply(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """A batch of the files' schema from a projected batch; structs share the columns' buffers."""
        columns = [_conform(c, t) for c, t in zip(batch.columns, self.column_types, strict=True)]
        arrays = []
        for field, group in zip(self.schema, self.groups, strict=True):
            if isinstance(group, int):
                arrays.append(columns[group])
            else:
                arrays.append(pa.StructArray.from_arrays([columns[i] for i in group], fields=list(field.type)))
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)


# -- the sink as a file for pyarrow ----------------------------------------------------------------------


class _SinkStream:
    """The parts of a Python file ``pa.PythonFile`` uses to write: write, tell, flush, close, closed.

    Closing it does not close the sink file: the writer commits or aborts that itself, after
    pyarrow is done with it. After ``discard()`` writes go nowhere (an aborted file's footer).
    """

    def __init__(self, file: SinkFile) -> None:
        self._file = file
        self._closed = False
        self._discard = False

    def write(self, data: bytes) -> int:
        if self._closed:
            raise ValueError("write to a closed Parquet stream")
        if not self._discard:
            self._file.write(data)
        return len(data)

    def tell(self) -> int:
        return self._file.bytes_written

    def flush(self) -> None:
        return None

    def writable(self) -> bool:
        return True

    def close(self) -> None:
        self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed

    def discard(self) -> None:
        self._discard = True


# -- per-column encodings ------------------------------------------------------------------------------


def _leaves(path: str, array: pa.Array) -> Iterator[tuple[str, pa.Array]]:
    """The leaf columns of ``array`` with their Parquet column paths (``a.b``, ``a.list.element``,
    ``a.key_value.key``): the names Arrow's writer options take."""
    type_ = array.type
    if pa.types.is_struct(type_):
        for i, field in enumerate(type_):
            yield from _leaves(f"{path}.{field.name}", array.field(i))
    elif pa.types.is_map(type_):
        yield from _leaves(f"{path}.key_value.key", array.keys)
        yield from _leaves(f"{path}.key_value.value", array.items)
    elif pa.types.is_list(type_) or pa.types.is_large_list(type_) or pa.types.is_fixed_size_list(type_):
        yield from _leaves(f"{path}.list.element", array.flatten())
    else:
        yield path, array


@attrs.frozen
class _Encodings:
    """Which leaf columns get a dictionary and statistics (``True``: all of them, Arrow's default)."""

    dictionary: list[str] | bool = True
    statistics: list[str] | bool = True

    @classmethod
    def of(cls, table: pa.Table) -> _Encodings:
        """Chosen from the values of ``table``, the first row group: see ``DISTINCT_SHARE``."""
        dictionary: list[str] = []
        statistics: list[str] = []
        scattered = False
        for name, column in zip(table.column_names, table.columns, strict=True):
            for path, leaf in _leaves(name, column.combine_chunks()):
                values = len(leaf) - leaf.null_count
                unique = values >= ENCODING_EVIDENCE and _distinct(leaf) > DISTINCT_SHARE * values
                scattered = scattered or unique
                if not unique:
                    dictionary.append(path)
                if not (unique and is_text_type(leaf.type)):
                    statistics.append(path)
        return cls(dictionary, statistics) if scattered else cls()


def _distinct(leaf: pa.Array) -> int:
    try:
        return int(pc.count_distinct(leaf).as_py())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):  # a type Arrow cannot hash: keep its defaults
        return 0


# -- the batch writer ---------------------------------------------------------------------------------


def _rows_within(table: pa.Table, rows: int, fits: Callable[[int], bool]) -> int:
    """The most rows, at most ``rows``, from the start of ``table`` whose Arrow size ``fits``.

    ``fits`` must be monotonic (what fits, a smaller size fits too).
    """
    if fits(table.slice(0, rows).nbytes):
        return rows
    low, high = 0, rows  # slice(0, low) fits, slice(0, high) does not
    while high - low > 1:
        middle = (low + high) // 2
        if fits(table.slice(0, middle).nbytes):
            low = middle
        else:
            high = middle
    return low


def _typical_row(table: pa.Table) -> pa.Table:
    """The row of median Arrow size among the first few: one unusual row does not skew a calibration."""
    head = table.slice(0, CALIBRATION_ROWS)
    sizes = sorted((head.slice(i, 1).nbytes, i) for i in range(head.num_rows))
    return head.slice(sizes[len(sizes) // 2][1], 1)


@attrs.define
class _SizeModel:
    """The file bytes of a row group, projected from its Arrow size and the row groups written before.

    A row group costs ``overhead + ratio * arrow_bytes``. ``overhead`` (page headers, dictionary
    pages, statistics and codec framing of every column chunk) is measured once, on a one-row row
    group written to memory. ``ratio`` is the larger of two estimates: the ratio of the row groups
    written (recent ones weighing most), which is steady, and that of the last one alone, which
    follows a change in the data at once. Both are raised for row groups smaller than those they
    come from (``SMALL_GROUP_EXPONENT``), never lowered for bigger ones (how much bigger row groups
    gain depends on the data), and trusted only up to ``HISTORY_REACH`` times the volume learnt on;
    beyond, ``PESSIMISTIC_RATIO`` counts.
    """

    overhead: int = 0
    groups: float = 0.0  # decayed sums over the row groups written
    file_bytes: float = 0.0
    arrow_bytes: float = 0.0
    last_ratio: float = 0.0  # the last row group written
    last_arrow_bytes: int = 0

    @property
    def learnt(self) -> bool:
        return self.groups > 0

    def learn(self, arrow_bytes: int, file_bytes: int) -> None:
        self.groups = self.groups * HISTORY_DECAY + 1
        self.file_bytes = self.file_bytes * HISTORY_DECAY + file_bytes
        self.arrow_bytes = self.arrow_bytes * HISTORY_DECAY + arrow_bytes
        self.last_ratio = max(file_bytes - self.overhead, 0) / max(arrow_bytes, 1)
        self.last_arrow_bytes = arrow_bytes

    def project(self, arrow_bytes: int) -> float:
        vouched = min(arrow_bytes, HISTORY_REACH * self.arrow_bytes)
        ratio = 0.0
        if vouched:
            steady = max(self.file_bytes - self.groups * self.overhead, 0) / self.arrow_bytes
            average = self.arrow_bytes / self.groups
            steady *= max(average / arrow_bytes, 1) ** SMALL_GROUP_EXPONENT  # smaller compress worse
            latest = self.last_ratio * max(self.last_arrow_bytes / arrow_bytes, 1) ** SMALL_GROUP_EXPONENT
            ratio = max(steady, latest)
        return self.overhead + ratio * vouched + PESSIMISTIC_RATIO * (arrow_bytes - vouched)


def _sample(table: pa.Table, rows: int) -> pa.Table:
    """At most ``SAMPLE_ROWS`` of the first ``rows``, in runs spread evenly over them: runs keep the
    encodings realistic, spreading keeps the mix of a row group whose data changes along the rows."""
    if rows <= SAMPLE_ROWS:
        return table.slice(0, rows)
    run = SAMPLE_ROWS // SAMPLE_RUNS
    step = (rows - run) / (SAMPLE_RUNS - 1)
    return pa.concat_tables([table.slice(round(i * step), run) for i in range(SAMPLE_RUNS)])


class ParquetFileWriter:
    """A ``BatchWriter`` for Parquet: buffers row groups, projects their size, rotates, commits.

    Before a row group is written its size is projected (``_SizeModel``), and a sample of it is
    encoded in memory and compared with the sample of the row group before: if it comes out bigger,
    the data changed (say, values far less compressible than those before) and the projection is
    raised by as much; if it is much bigger, the history says nothing and the pessimistic ratio
    counts. The first row group, with no history, is a small probe projected pessimistically.
    """

    def __init__(
        self,
        layout: OutputLayout,
        *,
        compression: str,
        max_file_bytes: int,
        new_file: NewFile,
        parquet_layout: str = "nested",
        row_group_rows: int = ROW_GROUP_ROWS,
        row_group_bytes: int = ROW_GROUP_BYTES,
    ) -> None:
        if compression not in CODECS:
            raise ValueError(f"Parquet supports {', '.join(CODECS)} compression, not {compression!r}")
        if parquet_layout not in LAYOUTS:
            raise ValueError(f"parquet_layout must be nested or flat, not {parquet_layout!r}")
        self._shape = _Shape.of(layout, parquet_layout)
        self._codec = CODECS[compression]
        self._codec_level = CODEC_LEVELS.get(compression)
        self._cap = max_file_bytes
        self._new_file = new_file
        self._group_rows = max(1, row_group_rows)
        self._group_bytes = max(1, row_group_bytes)
        self._committed: list[CommittedFile] = []
        # rows received and not yet written: about one row group at most (plus the last batch)
        self._buffer: list[pa.RecordBatch] = []
        self._buffered_rows = 0
        self._buffered_bytes = 0
        # the file in progress
        self._file: SinkFile | None = None
        self._stream: _SinkStream | None = None
        self._buffered: pa.BufferedOutputStream | None = None
        self._parquet: pq.ParquetWriter | None = None
        self._part = 0
        self._rows = 0
        self._groups = 0
        # sizes, measured by _calibrate and learnt from the row groups written
        self._calibrated = False
        self._encodings = _Encodings()
        self._model = _SizeModel()
        # rows and ratio of the last row group's sample (None: it needed none)
        self._reference: tuple[int, float] | None = None
        self._footer_base = 0  # footer of a file without row groups
        self._footer_per_group = 0  # what each row group adds to the footer
        # Row groups are encoded and written in a thread (Arrow releases the GIL) while the next rows
        # are read and projected; one at a time, so the size model has learnt from one row group
        # before the next is planned.
        self._pool: ThreadPoolExecutor | None = None
        self._in_flight: tuple[Future[int], int] | None = None  # file bytes to come, Arrow bytes

    # -- BatchWriter ---------------------------------------------------------------------------

    def write(self, batch: pa.RecordBatch) -> None:
        if not batch.num_rows:
            return
        batch = self._shape.apply(batch)
        self._buffer.append(batch)
        self._buffered_rows += batch.num_rows
        self._buffered_bytes += batch.nbytes
        while self._buffered_rows >= self._group_rows or self._buffered_bytes >= self._group_bytes:
            self._write_next_group()

    def close(self) -> list[CommittedFile]:
        while self._buffered_rows:
            self._write_next_group()
        if self._file is None and not self._committed:
            self._open()  # an export with no rows still gets one file, with the schema
        if self._file is not None:
            self._finish()
        self._stop_pool()
        return list(self._committed)

    def abort(self) -> None:
        if self._in_flight is not None:
            with contextlib.suppress(Exception):  # the error that made the run abort was raised already
                self._in_flight[0].result()
            self._in_flight = None
        self._stop_pool()
        if self._file is None:
            return
        file, stream, parquet, buffered = self._file, self._stream, self._parquet, self._buffered
        self._file = self._stream = self._parquet = self._buffered = None
        try:
            if stream is not None and parquet is not None:
                stream.discard()  # closing pyarrow's writer writes a footer: let it go nowhere
                with contextlib.suppress(Exception):
                    parquet.close()
                if buffered is not None:
                    with contextlib.suppress(Exception):
                        buffered.close()
        finally:
            file.abort()

    # -- row groups ------------------------------------------------------------------------------

    def _write_next_group(self) -> None:
        table = pa.Table.from_batches(self._buffer, schema=self._shape.schema)
        limit = min(table.num_rows, self._group_rows)
        if not self._calibrated:
            self._encodings = _Encodings.of(table.slice(0, min(limit, ENCODING_SAMPLE_ROWS)))
            self._calibrate(_typical_row(table))
        wanted = max(1, _rows_within(table, limit, lambda size: size <= self._group_bytes))
        self._settle()
        if self._file is None:
            self._open()
        rows, sample = self._plan_group(table, wanted)
        if not rows:  # this file is full: the rows start the next one
            self._finish()
            self._open()
            rows, sample = self._plan_group(table, wanted)
        self._write_group(table.slice(0, rows))
        self._reference = sample
        rest = table.slice(rows)
        self._buffer = rest.to_batches()
        self._buffered_rows = rest.num_rows
        self._buffered_bytes = rest.nbytes

    def _plan_group(self, table: pa.Table, wanted: int) -> tuple[int, tuple[int, float] | None]:
        """How many of the first ``wanted`` rows go into the file in progress now (0: start another),
        and the sample (rows, ratio) of them the projection was checked with, if one was needed.

        A file without rows always takes at least one: a row larger than the cap gets a file of its own.
        """
        rows = limit = wanted if self._model.learnt else min(wanted, PROBE_ROWS)
        if self._model.learnt and self._projected(table.slice(0, rows).nbytes, float("inf")) <= self._room():
            return rows, None  # the file has room even for the pessimistic projection: no sample needed
        while True:
            sample, drift = self._sample_drift(table, rows)
            fit = self._rows_that_fit(table, rows, drift)
            if fit == rows:
                break
            if not fit:
                return 0, sample
            rows = fit  # fewer rows: check their own sample (the data may change along the rows)
        tail = self._projected(table.slice(0, rows).nbytes, drift)
        small = self._cap * TAIL_SHARE
        if self._rows and rows < limit and tail < small and self._room() - tail < small:
            # The file is full but for a row group not worth its metadata (readers pay for many small
            # ones). Rows cut short by a change in the data, in a file with room, are written.
            return 0, sample
        return rows, sample

    def _sample_drift(self, table: pa.Table, rows: int) -> tuple[tuple[int, float], float]:
        """A sample of the first ``rows`` encoded in memory, and how much less compressible it is (at
        least 1) than the rows written before: like with like, compared with the sample of the last
        row group; without one of the same size, with what the model expects of the sample's size.
        """
        sample = _sample(table, rows)
        size = self._memory_file(sample)[0]
        ratio = size / max(sample.nbytes, 1)
        drift = 1.0  # before any history, the pessimistic projection needs no correction
        if self._model.learnt:
            reference = self._reference
            if reference is not None and reference[0] == sample.num_rows:
                drift = max(1.0, ratio / reference[1])
            else:
                drift = max(1.0, size / self._model.project(sample.nbytes))
        return (sample.num_rows, ratio), drift

    def _rows_that_fit(self, table: pa.Table, rows: int, drift: float) -> int:
        """The most of the first ``rows`` the projection lets into the file in progress (at least one
        if the file is empty)."""
        room = self._room()
        fit = _rows_within(table, rows, lambda size: self._projected(size, drift) <= room)
        return fit if self._rows else max(1, fit)

    def _room(self) -> int:
        """File bytes the next row group may take before the file in progress would cross the cap."""
        assert self._file is not None
        return self._cap - self._file.bytes_written - self._footer_allowance(self._groups + 1)

    def _projected(self, arrow_bytes: int, drift: float) -> float:
        if drift > CHANGED_DATA_DRIFT:  # the history says nothing about these rows: the pessimistic ratio
            return (self._model.overhead + PESSIMISTIC_RATIO * arrow_bytes) * SIZE_MARGIN
        return self._model.project(arrow_bytes) * drift * SIZE_MARGIN

    def _footer_allowance(self, groups: int) -> int:
        # Statistics (min and max values) make what a row group adds to the footer vary a little.
        return self._footer_base + _FILE_TRAILER + groups * (self._footer_per_group * 5 // 4 + 256)

    def _write_group(self, group: pa.Table) -> None:
        assert self._file is not None and self._parquet is not None and self._buffered is not None
        self._settle()
        file, parquet, buffered = self._file, self._parquet, self._buffered
        before = file.bytes_written

        def write() -> int:
            parquet.write_table(group, row_group_size=group.num_rows)
            buffered.flush()  # the sink's byte count is what the size model learns from
            return file.bytes_written - before

        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="profile-exports-parquet")
        self._in_flight = (self._pool.submit(write), group.nbytes)
        self._rows += group.num_rows
        self._groups += 1

    def _settle(self) -> None:
        """Wait for the row group being written, and learn its size (or raise its error)."""
        if self._in_flight is None:
            return
        future, arrow_bytes = self._in_flight
        self._in_flight = None
        self._model.learn(arrow_bytes, future.result())

    def _stop_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _calibrate(self, row: pa.Table) -> None:
        """Measure, in memory, the footer without and with one row group, and a row group's overhead."""
        self._footer_base = self._memory_file(None)[1]
        overhead, footer = self._memory_file(row)
        self._model.overhead = overhead
        self._footer_per_group = footer - self._footer_base
        self._calibrated = True

    def _memory_file(self, group: pa.Table | None) -> tuple[int, int]:
        """(bytes of ``group`` as a row group, footer size) of an in-memory file."""
        buffer = pa.BufferOutputStream()
        writer = self._parquet_writer(buffer)
        written = 0
        if group is not None:
            writer.write_table(group, row_group_size=group.num_rows)
            written = buffer.tell() - 4  # "PAR1" opens the file
        writer.close()
        return written, int(pq.read_metadata(pa.BufferReader(buffer.getvalue())).serialized_size)

    # -- files -----------------------------------------------------------------------------------

    def _parquet_writer(self, where: Any) -> pq.ParquetWriter:
        return pq.ParquetWriter(
            where,
            self._shape.schema,
            compression=self._codec,
            compression_level=self._codec_level,
            use_dictionary=self._encodings.dictionary,
            write_statistics=self._encodings.statistics,
            # The Arrow schema in the footer: Parquet has no duration type (an INT64 is written), and
            # with it Arrow-based readers read durations back as durations (docs/output.md).
            store_schema=True,
        )

    def _open(self) -> None:
        self._file = self._new_file(self._part)
        self._stream = _SinkStream(self._file)
        # pyarrow writes page by page: buffered, the sink gets a few large writes instead of many small ones
        self._buffered = pa.BufferedOutputStream(pa.PythonFile(self._stream, mode="w"), buffer_size=WRITE_BUFFER)
        self._parquet = self._parquet_writer(self._buffered)
        self._rows = 0
        self._groups = 0

    def _finish(self) -> None:
        self._settle()
        assert self._file is not None and self._parquet is not None and self._buffered is not None
        before = self._file.bytes_written
        self._parquet.close()
        self._buffered.close()  # pyarrow does not close a stream it was given: the footer is still in the buffer
        if self._groups:  # the real footer corrects the estimate of what a row group adds to it
            footer = self._file.bytes_written - before - _FILE_TRAILER - self._footer_base
            self._footer_per_group = max(self._footer_per_group, footer // self._groups)
        self._committed.append(commit_file(self._file, rows=self._rows, part=self._part))
        self._file = self._stream = self._parquet = self._buffered = None
        self._part += 1


class ParquetWriter:
    """The ``parquet`` format.

    ``gzip`` files are named ``.parquet.gz`` as in the reference, but they are Parquet files whose
    pages are gzip-compressed, not gzip streams: their ``Content-Encoding`` is None for every codec,
    and a reader opens them as Parquet, never through gunzip.
    """

    name = "parquet"
    compressions: tuple[str, ...] = tuple(CODECS)
    content_type = "application/vnd.apache.parquet"

    def extension(self, compression: str) -> str:
        return "parquet.gz" if compression == "gzip" else "parquet"

    def content_encoding(self, compression: str) -> str | None:
        return None

    def open(
        self,
        *,
        layout: OutputLayout,
        compression: str,
        max_file_bytes: int,
        new_file: NewFile,
        options: Mapping[str, Any],
    ) -> ParquetFileWriter:
        return ParquetFileWriter(
            layout,
            compression=compression,
            max_file_bytes=max_file_bytes,
            new_file=new_file,
            parquet_layout=options.get("parquet_layout") or "nested",
        )


@hookimpl
def register_writers(register: Any) -> None:
    register(ParquetWriter())
