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

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import attrs
import fsspec
import numpy as np
import orjson
import pyarrow as pa

from ..errors import ConfigError, DataError
from ..fingerprints import value_hashes
from ..hookspecs import hookimpl
from ..options import check_options, positive_int

SPLITS = ("files", "hash")
READAHEAD_BATCHES = 2  # batches the Parquet scanner decodes ahead of the one being exported
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
                mine = self._split.owned(text, partition)
                yield [record for record, keep in zip(chunk, mine.tolist(), strict=True) if keep]
            return
        yield from self._records(self._split.files_of(sorted(files, key=lambda f: f.path), partition))

    def _records(self, files: Sequence[Any]) -> Iterator[list[Any]]:
        chunk: list[Any] = []
        for of in files:
            with of as handle:
                for number, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    try:
                        chunk.append(orjson.loads(line))
                    except orjson.JSONDecodeError as exc:
                        raise DataError(
                            f"{of.path}: line {number} is not valid JSON ({exc}); fix or remove that line"
                        ) from None
                    if len(chunk) >= self._batch_size:
                        yield chunk
                        chunk = []
        if chunk:
            yield chunk


class JsonLinesSourceFactory:
    name = "jsonl"

    def __call__(self, options: Mapping[str, Any], *, batch_size: int) -> JsonLinesSource:
        check_options("source", options, allowed=("path", "storage_options", *_PARTITION_OPTIONS), required=("path",))
        return JsonLinesSource(
            _paths(options), batch_size, options.get("storage_options", {}), Split.from_options(options)
        )


class ParquetSource:
    def __init__(
        self, paths: list[str], batch_size: int, storage_options: Mapping[str, Any], split: Split = Split()
    ) -> None:
        import pyarrow.dataset as ds

        self._paths = paths
        self._batch_size = batch_size
        self._split = split
        self._columns: list[str] | None = None  # None: all
        fs, _ = fsspec.core.url_to_fs(paths[0], **dict(storage_options))
        resolved: list[str] = []
        for p in paths:
            found = fs.glob(p) if any(c in p for c in "*?[") else [fs._strip_protocol(p)]
            resolved += found
        if not resolved:
            raise DataError(f"source.path: no file matches {paths}; check the path")
        try:
            self._dataset = ds.dataset(resolved if len(resolved) > 1 else resolved[0], format="parquet", filesystem=fs)
        except (FileNotFoundError, pa.ArrowInvalid, OSError) as exc:
            raise DataError(f"source.path: cannot read Parquet at {paths}: {exc}") from None
        if split.by_hash() and split.id_field not in self._dataset.schema.names:
            raise ConfigError(
                "source.id_field", f"{split.id_field!r} is not a column of {paths}; name the profile id column"
            )

    def partitions(self) -> Sequence[int]:
        return list(range(self._split.partitions))

    def skip_columns(self, names: frozenset[str]) -> None:
        """Leave out top-level columns the export does not use (Parquet reads columns one by one)."""
        self._columns = [n for n in self._dataset.schema.names if n not in names]

    def schema(self) -> pa.Schema:
        if self._columns is None:
            return self._dataset.schema
        return pa.schema([self._dataset.schema.field(n) for n in self._columns])

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

    def _scan(self, fragments: Sequence[Any] | None = None) -> Iterator[pa.RecordBatch]:
        """Batches of the whole dataset, or of these fragments (files or row groups), in order."""
        import pyarrow.dataset as ds

        dataset = self._dataset
        if fragments is not None:
            dataset = ds.FileSystemDataset(fragments, dataset.schema, dataset.format, filesystem=dataset.filesystem)
        # Arrow's default readahead (16 batches, 4 files) holds several decoded row groups of wide
        # profiles at once: measured, peak RSS 1.0 GB for a 1M-profile file (0.8 GB with this).
        yield from dataset.to_batches(
            batch_size=self._batch_size,
            columns=self._columns,
            batch_readahead=READAHEAD_BATCHES,
            fragment_readahead=1,
        )

    def _part(self, partition: int) -> Iterator[pa.RecordBatch]:
        """The batches of one partition: its files, its row groups, or its range of rows."""
        split = self._split
        if split.partitions == 1 or split.how != "files":
            return self._scan()
        files = sorted(self._dataset.get_fragments(), key=lambda f: f.path)
        if len(files) >= split.partitions:
            return self._scan(split.files_of(files, partition))
        groups = [group for fragment in files for group in fragment.split_by_row_group()]
        n = len(groups)
        if n >= split.partitions:  # fewer files than partitions: contiguous ranges of row groups
            return self._scan(groups[partition * n // split.partitions : (partition + 1) * n // split.partitions])
        return self._rows(groups, partition)

    def _rows(self, groups: Sequence[Any], partition: int) -> Iterator[pa.RecordBatch]:
        """Fewer row groups than partitions: a contiguous range of rows, the rows of every group counted.

        Row groups wholly outside the range are not read. Parquet cannot start reading in the middle of
        a row group, so the rows of a group before the range start are decoded batch by batch and
        dropped (memory stays one batch); the scan stops at the range's end.
        """
        counts = [sum(info.num_rows for info in group.row_groups) for group in groups]
        total = sum(counts)
        start = partition * total // self._split.partitions
        stop = (partition + 1) * total // self._split.partitions
        first = 0  # the row number of the group's first row, over all the groups
        for group, count in zip(groups, counts, strict=True):
            if first >= stop:
                return
            if first + count > start:
                at = first
                for batch in self._scan([group]):
                    low, high = max(start - at, 0), min(stop - at, batch.num_rows)
                    if high > low:
                        yield batch.slice(low, high - low)
                    at += batch.num_rows
                    if at >= stop:
                        break
            first += count


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
