"""Sources reading files: JSON Lines (``jsonl``) and Parquet files or datasets (``parquet``).

Paths may be local paths, globs or any fsspec URL; ``.gz`` JSON Lines are decompressed.

``partitions = N`` splits the input into N partitions (instance ids 0..N-1) that run in parallel.
``split = "files"`` (the default) gives each partition whole files, round robin in path order; a
Parquet input with fewer files than partitions is split by row groups instead, in contiguous
ranges, and one with fewer row groups than partitions by rows (contiguous ranges of equal size;
Parquet cannot seek inside a row group, so a partition whose range starts inside one decodes and
drops that group's earlier rows, batch by batch). ``split = "hash"`` keeps a profile in the same
partition run after run whatever the files hold: each partition reads everything and keeps the
rows whose id (``id_field``, default ``profile_id``) hashes to it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import groupby
from typing import Any

import attrs
import fsspec
import numpy as np
import orjson
import pyarrow as pa

from ..canonical import MAX_NESTING, BadRecord, merge_types
from ..errors import ConfigError, DataError
from ..fingerprints import value_hashes
from ..hookspecs import hookimpl
from ..options import check_options, positive_int

SPLITS = ("files", "hash")
PREBUFFER_BYTES = 32 << 20  # a Parquet row group up to this size (compressed) is fetched in one read
BUFFER_BYTES = 1 << 20  # a larger one streams: each column reads this much at a time
_PARTITION_OPTIONS = ("partitions", "split", "id_field")


@attrs.frozen
class Split:
    """How a file source is cut into partitions."""

    partitions: int = 1
    how: str = "files"
    id_field: str = "profile_id"

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Split:
        partitions = positive_int("source", "partitions", options.get("partitions", 1))
        how = options.get("split", "files")
        if how not in SPLITS:
            raise ConfigError("source.split", f"must be one of {', '.join(map(repr, SPLITS))}; got {how!r}")
        id_field = options.get("id_field", "profile_id")
        if not isinstance(id_field, str) or not id_field:
            raise ConfigError("source.id_field", "must be the name of the profile id field")
        return cls(partitions, how, id_field)

    def by_hash(self) -> bool:
        return self.partitions > 1 and self.how == "hash"

    def owned(self, ids: pa.Array | pa.ChunkedArray, partition: int) -> np.ndarray:
        """Which of these ids belong to ``partition`` (a stable hash of the id's text)."""
        text = ids if pa.types.is_string(ids.type) else ids.cast(pa.string())
        return np.asarray(value_hashes(text) % np.uint64(self.partitions) == partition)

    def files_of(self, items: Sequence[Any], partition: int) -> Sequence[Any]:
        """Whole files for a partition, round robin (all of them when not split by files)."""
        if self.partitions == 1 or self.how != "files":
            return items
        return items[partition :: self.partitions]


def _paths(options: Mapping[str, Any]) -> list[str]:
    value = options["path"]
    paths = [value] if isinstance(value, str) else list(value)
    if not paths or not all(isinstance(p, str) and p for p in paths):
        raise ConfigError("source.path", "must be a path, a glob or a list of them")
    return [str(p) for p in paths]


class JsonLinesSource:
    def __init__(
        self, paths: list[str], batch_size: int, storage_options: Mapping[str, Any], split: Split = Split()
    ) -> None:
        self._paths = paths
        self._batch_size = batch_size
        self._storage_options = dict(storage_options)
        self._split = split

    def partitions(self) -> Sequence[int]:
        return list(range(self._split.partitions))

    def schema(self) -> None:
        return None

    @property
    def reiterable(self) -> bool:
        return True

    def describe(self) -> str:
        return f"jsonl {', '.join(self._paths)}"

    def read(self, partition: int) -> Iterator[list[Any]]:
        files = fsspec.open_files(self._paths, "rb", compression="infer", **self._storage_options)
        if not files:
            raise DataError(f"source.path: no file matches {self._paths}; check the path")
        if self._split.by_hash():
            for chunk in self._records(list(files)):
                ids = [r.get(self._split.id_field) if isinstance(r, dict) else None for r in chunk]
                text = pa.array([None if v is None else str(v) for v in ids], pa.string())
                yield chunk.select(self._split.owned(text, partition).tolist())
            return
        yield from self._records(self._split.files_of(sorted(files, key=lambda f: f.path), partition))

    def _records(self, files: Sequence[Any]) -> Iterator[JsonLines]:
        chunk = JsonLines()
        for of in files:
            with of as handle:
                for number, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    chunk.append(_record(line, of.path, number))
                    chunk.lines.append(line)
                    if len(chunk) >= self._batch_size:
                        yield chunk
                        chunk = JsonLines()
        if chunk:
            yield chunk


class JsonLines(list[Any]):
    """Records read from JSON lines, with their lines: ``exact(i)`` reads line ``i`` again with the
    standard library, which keeps integers beyond 64 bits (orjson reads them as rounded floats; the
    canonicalizer asks for the lines that hold a float of that size)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[bytes] = []

    def exact(self, index: int) -> Any:
        try:
            return _exact(self.lines[index])
        except RecursionError:  # deeper than the standard library reads: too deep to export anyway
            return self[index]

    def select(self, keep: Sequence[bool]) -> JsonLines:
        chosen = JsonLines()
        for record, line, kept in zip(self, self.lines, keep, strict=True):
            if kept:
                chosen.append(record)
                chosen.lines.append(line)
        return chosen


def _record(line: bytes, path: str, number: int) -> Any:
    """One line's record: orjson's, or, for JSON orjson refuses (a lone surrogate escape such as
    ``"\\ud800"``, which the canonicalizer makes a bad record naming its field; more than 1,024
    levels of nesting), the standard library's, or a ``BadRecord`` for nesting no parser reads."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        problem = exc
    try:
        return _exact(line)
    except RecursionError:
        field = _deep_field(line)
        named = f"field {field!r} " if field else ""
        return BadRecord(
            f"{named}(line {number} of {path}) nests lists and objects more than {MAX_NESTING} levels deep; "
            "flatten the value or store it as JSON text at the source"
        )
    except ValueError:
        raise DataError(f"{path}: line {number} is not valid JSON ({problem}); fix or remove that line") from None


def _exact(line: bytes) -> Any:
    return json.loads(line, parse_constant=_not_json, parse_float=_finite)


def _not_json(word: str) -> Any:
    raise ValueError(f"{word} is not JSON")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is beyond the range of a float")
    return number


_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')


def _key(string: bytes) -> str:
    try:
        return str(json.loads(string))
    except ValueError:  # an escape JSON does not have: the key as it is written
        return string[1:-1].decode("utf-8", "replace")
_GROUPS = ("properties", "device", "comm_prefs")


def _deep_field(line: bytes) -> str | None:
    """The field (``properties.x`` for a member of a group) whose value nests past ``MAX_NESTING``
    levels, found by a scan of the bytes of a line too deep to parse; None if the scan finds none."""
    keys: list[str] = []  # the keys of the object at depth 1 and of the one at depth 2 being read
    depth, at, last = 0, 0, b'""'
    while at < len(line):
        byte = line[at]
        if byte == 0x22:
            string = _JSON_STRING.match(line, at)
            if string is None:
                return None
            last, at = string.group(), string.end()
            continue
        if byte == 0x3A and depth <= 2:  # ":" after a key of the record or of a group
            keys[depth - 1 :] = [_key(last)]
        elif byte in b"[{":
            depth += 1
            if depth > MAX_NESTING + 2:  # the record is one level, a group another
                return ".".join(keys[:2] if keys and keys[0] in _GROUPS else keys[:1]) or None
        elif byte in b"]}":
            depth -= 1
        at += 1
    return None


class JsonLinesSourceFactory:
    name = "jsonl"

    def __call__(self, options: Mapping[str, Any], *, batch_size: int) -> JsonLinesSource:
        check_options("source", options, allowed=("path", "storage_options", *_PARTITION_OPTIONS), required=("path",))
        return JsonLinesSource(
            _paths(options), batch_size, options.get("storage_options", {}), Split.from_options(options)
        )


class ParquetSource:
    """Parquet files, a folder of them or a glob, read file by file in the order of their paths.

    Every file is read with its own schema; the source declares the union of the files' schemas (a
    column some files lack is null in their rows; a column whose type differs between files takes the
    merged type of the export's mixed-type rule, ``canonical.merge_types``, and the exporter turns the
    values to it, counting those it makes text). Where a struct column differs between files, whether
    its fields are profile fields or one mapping value depends on the export's mapping, which a source
    does not know: it declares no schema then, and the exporter settles the types by reading once.

    Memory follows ``batch_size``, not the size of the files: a row group is fetched whole when it is
    small (``PREBUFFER_BYTES``), else streamed ``BUFFER_BYTES`` per column at a time, and decoded a
    batch at a time; nothing read is kept past its row group, and no footer past its file.
    """

    def __init__(
        self, paths: list[str], batch_size: int, storage_options: Mapping[str, Any], split: Split = Split()
    ) -> None:
        import pyarrow.dataset as ds

        self._paths = paths
        self._batch_size = batch_size
        self._split = split
        self._skipped: frozenset[str] = frozenset()
        fs, _ = fsspec.core.url_to_fs(paths[0], **dict(storage_options))
        resolved: list[str] = []
        for p in paths:
            found = fs.glob(p) if any(c in p for c in "*?[") else [fs._strip_protocol(p)]
            resolved += found
        if not resolved:
            raise DataError(f"source.path: no file matches {paths}; check the path")
        try:  # the dataset finds the files of a folder (leaving out _ and . names), as engines do
            dataset = ds.dataset(resolved if len(resolved) > 1 else resolved[0], format="parquet", filesystem=fs)
        except (FileNotFoundError, pa.ArrowInvalid, OSError) as exc:
            raise DataError(
                f"source.path: cannot read Parquet at {paths}: {exc}; check the path, and replace or remove "
                "a file that is not Parquet"
            ) from None
        self._fs = fs
        self._filesystem = dataset.filesystem
        self._files: list[str] = sorted(dataset.files)
        self._union: pa.Schema | None = None
        self._union_settled = False
        if split.by_hash() and split.id_field not in dataset.schema.names:
            raise ConfigError(
                "source.id_field", f"{split.id_field!r} is not a column of {paths}; name the profile id column"
            )

    def partitions(self) -> Sequence[int]:
        return list(range(self._split.partitions))

    def skip_columns(self, names: frozenset[str]) -> None:
        """Leave out top-level columns the export does not use (Parquet reads columns one by one)."""
        self._skipped = frozenset(names) - {self._split.id_field} if self._split.by_hash() else frozenset(names)

    def schema(self) -> pa.Schema | None:
        union = self._schema_of_files()
        if union is None:
            return None
        return pa.schema([f for f in union if f.name not in self._skipped], metadata=union.metadata)

    @property
    def reiterable(self) -> bool:
        return True

    def describe(self) -> str:
        return f"parquet {', '.join(self._paths)}"

    def read(self, partition: int) -> Iterator[pa.RecordBatch]:
        split = self._split
        for batch in self._part(partition):
            if split.by_hash():
                batch = batch.filter(pa.array(split.owned(batch.column(split.id_field), partition)))
            if batch.num_rows:
                yield batch

    # -- the files -----------------------------------------------------------------------------

    def _footer(self, path: str) -> Any:
        """The file's metadata: its schema and row groups. Not kept: the footers of a folder of many
        files would add up, and a file's footer is one small read."""
        import pyarrow.parquet as pq

        try:
            with self._open(path) as handle:
                return pq.read_metadata(handle)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{path}: not a readable Parquet file ({exc}); replace or remove it") from None

    def _schema_of_files(self) -> pa.Schema | None:
        """The union of the files' schemas, settled once (None: a struct column differs between files)."""
        if not self._union_settled:
            distinct: list[pa.Schema] = []
            with ThreadPoolExecutor(max_workers=min(8, len(self._files))) as pool:  # footers of remote files
                for footer in pool.map(self._footer, self._files):
                    schema = footer.schema.to_arrow_schema()
                    if not any(schema.equals(seen) for seen in distinct):
                        distinct.append(schema)
            self._union = _union(distinct)
            self._union_settled = True
        return self._union

    def _open(self, path: str) -> Any:
        """The file for Arrow to read. Remote files without fsspec's read-ahead: Arrow asks for exactly the
        ranges it needs, and a read-ahead block added to each of a streaming column's reads would fetch
        the same bytes many times over."""
        from pyarrow import fs as pafs

        if isinstance(self._filesystem, pafs.LocalFileSystem):
            return self._filesystem.open_input_file(path)
        return pa.PythonFile(self._fs.open(path, "rb", cache_type="none"), mode="r")

    def _batches(
        self, path: str, row_groups: Sequence[int] | None = None, footer: Any = None
    ) -> Iterator[pa.RecordBatch]:
        """The batches of one file (of these row groups), one row group after another."""
        footer = footer if footer is not None else self._footer(path)
        columns = [name for name in footer.schema.to_arrow_schema().names if name not in self._skipped]
        try:
            with self._open(path) as handle:
                for group in range(footer.num_row_groups) if row_groups is None else row_groups:
                    yield from self._group(handle, footer, group, columns)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{path}: cannot read this Parquet file ({exc}); replace or remove it") from None

    def _group(self, handle: Any, footer: Any, group: int, columns: list[str]) -> Iterator[pa.RecordBatch]:
        """One row group's batches: fetched in one read when it is small (what object stores want), else
        its pages streamed a column buffer at a time, so memory follows the batch size either way.

        One reader per row group: Arrow's pre-buffer of a file keeps every row group it fetched until the
        reader goes, and its dataset scanner decodes whole row groups, so a file's peak memory grew with
        its size (benchmarks/memory.py: 290 MB at 100k profiles, 2.3 GB at 4M). Decoding on this thread:
        Arrow's decoding threads each kept pages of their own (45 MB more, no faster on two cores);
        partitions are the way to use more cores.
        """
        import pyarrow.parquet as pq

        meta = footer.row_group(group)
        size = sum(meta.column(j).total_compressed_size for j in range(meta.num_columns))
        reader = pq.ParquetFile(handle, metadata=footer, pre_buffer=size <= PREBUFFER_BYTES, buffer_size=BUFFER_BYTES)
        return reader.iter_batches(batch_size=self._batch_size, row_groups=[group], columns=columns, use_threads=False)

    def _part(self, partition: int) -> Iterator[pa.RecordBatch]:
        """The batches of one partition: its files, its row groups, or its range of rows."""
        split = self._split
        files = self._files
        if split.partitions == 1 or split.how != "files":
            return (batch for path in files for batch in self._batches(path))
        if len(files) >= split.partitions:
            return (batch for path in split.files_of(files, partition) for batch in self._batches(path))
        footers = {path: self._footer(path) for path in files}  # fewer files than partitions
        groups = [(path, group) for path in files for group in range(footers[path].num_row_groups)]
        n = len(groups)
        if n >= split.partitions:  # fewer files than partitions: contiguous ranges of row groups
            mine = groups[partition * n // split.partitions : (partition + 1) * n // split.partitions]
            by_file = groupby(mine, key=lambda g: g[0])
            return (b for path, its in by_file for b in self._batches(path, [g for _, g in its], footers[path]))
        return self._rows(groups, footers, partition)

    def _rows(
        self, groups: Sequence[tuple[str, int]], footers: Mapping[str, Any], partition: int
    ) -> Iterator[pa.RecordBatch]:
        """Fewer row groups than partitions: a contiguous range of rows, the rows of every group counted.

        Row groups wholly outside the range are not read. Parquet cannot start reading in the middle of
        a row group, so the rows of a group before the range start are decoded batch by batch and
        dropped (memory stays one batch); the scan stops at the range's end.
        """
        counts = [footers[path].row_group(group).num_rows for path, group in groups]
        total = sum(counts)
        start = partition * total // self._split.partitions
        stop = (partition + 1) * total // self._split.partitions
        first = 0  # the row number of the group's first row, over all the groups
        for (path, group), count in zip(groups, counts, strict=True):
            if first >= stop:
                return
            if first + count > start:
                at = first
                for batch in self._batches(path, [group], footers[path]):
                    low, high = max(start - at, 0), min(stop - at, batch.num_rows)
                    if high > low:
                        yield batch.slice(low, high - low)
                    at += batch.num_rows
                    if at >= stop:
                        break
            first += count


def _union(schemas: Sequence[pa.Schema]) -> pa.Schema | None:
    """The columns of all the files, in first-seen order, each with the type that holds all its values
    (nullable: a file without the column gives nulls).

    None when a struct column differs between files: whether its fields are profile fields (merged
    field by field) or one mapping (a map or JSON text) depends on the export's mapping.
    """
    first = schemas[0]
    if all(s.equals(first) for s in schemas[1:]):
        return first
    types: dict[str, pa.DataType] = {}
    for schema in schemas:
        for f in schema:
            seen = types.setdefault(f.name, f.type)
            if seen == f.type:
                continue
            structs = pa.types.is_struct(seen) or pa.types.is_struct(f.type)
            if structs and not (pa.types.is_null(seen) or pa.types.is_null(f.type)):
                return None
            types[f.name] = merge_types(seen, f.type)
    return pa.schema([pa.field(name, type_) for name, type_ in types.items()])


class ParquetSourceFactory:
    name = "parquet"

    def __call__(self, options: Mapping[str, Any], *, batch_size: int) -> ParquetSource:
        check_options("source", options, allowed=("path", "storage_options", *_PARTITION_OPTIONS), required=("path",))
        return ParquetSource(
            _paths(options), batch_size, options.get("storage_options", {}), Split.from_options(options)
        )


@hookimpl
def register_sources(register: Any) -> None:
    register(JsonLinesSourceFactory())
    register(ParquetSourceFactory())
