"""Sources reading files: JSON Lines (``jsonl``) and Parquet files or datasets (``parquet``).

Paths may be local paths, globs or any fsspec URL; ``.gz`` JSON Lines are decompressed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import fsspec
import orjson
import pyarrow as pa

from ..errors import ConfigError, DataError
from ..hookspecs import hookimpl
from ..options import check_options


def _paths(options: Mapping[str, Any]) -> list[str]:
    value = options["path"]
    paths = [value] if isinstance(value, str) else list(value)
    if not paths or not all(isinstance(p, str) and p for p in paths):
        raise ConfigError("source.path", "must be a path, a glob or a list of them")
    return [str(p) for p in paths]


class JsonLinesSource:
    def __init__(self, paths: list[str], batch_size: int, storage_options: Mapping[str, Any]) -> None:
        self._paths = paths
        self._batch_size = batch_size
        self._storage_options = dict(storage_options)

    def partitions(self) -> Sequence[int]:
        return [0]

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
        check_options("source", options, allowed=("path", "storage_options"), required=("path",))
        return JsonLinesSource(_paths(options), batch_size, options.get("storage_options", {}))


class ParquetSource:
    def __init__(self, paths: list[str], batch_size: int, storage_options: Mapping[str, Any]) -> None:
        import pyarrow.dataset as ds

        self._paths = paths
        self._batch_size = batch_size
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

    def partitions(self) -> Sequence[int]:
        return [0]

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
        for batch in self._dataset.to_batches(batch_size=self._batch_size, columns=self._columns):
            if batch.num_rows:
                yield batch


class ParquetSourceFactory:
    name = "parquet"

    def __call__(self, options: Mapping[str, Any], *, batch_size: int) -> ParquetSource:
        check_options("source", options, allowed=("path", "storage_options"), required=("path",))
        return ParquetSource(_paths(options), batch_size, options.get("storage_options", {}))


@hookimpl
def register_sources(register: Any) -> None:
    register(JsonLinesSourceFactory())
    register(ParquetSourceFactory())
