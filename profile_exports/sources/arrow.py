"""Source: Arrow tables, record batches and readers, and anything exporting the Arrow C stream
(pandas and polars DataFrames, DuckDB relations, ...)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa

from ..errors import ConfigError
from ..hookspecs import hookimpl
from ..options import check_options


def _as_reader_or_table(data: Any) -> pa.Table | pa.RecordBatchReader:
    if isinstance(data, pa.Table | pa.RecordBatchReader):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if hasattr(data, "__arrow_c_stream__"):
        return pa.RecordBatchReader.from_stream(data)
    if type(data).__module__.startswith("pandas") and hasattr(data, "to_records"):
        return pa.Table.from_pandas(data, preserve_index=False)
    raise ConfigError(
        "source.data",
        f"a {type(data).__name__} is not Arrow data; pass a pyarrow Table or RecordBatchReader, "
        "a pandas or polars DataFrame, or use the records source for dicts",
    )


class ArrowSource:
    def __init__(self, data: Any, batch_size: int) -> None:
        self._data = data
        self._batch_size = batch_size
        first = _as_reader_or_table(data)
        self._schema = first.schema
        self._pending: pa.Table | pa.RecordBatchReader | None = first
        # A DataFrame can export a fresh stream every time; a reader cannot be rewound.
        self._reiterable = not isinstance(data, pa.RecordBatchReader) and not (
            hasattr(data, "__arrow_c_stream__") and not hasattr(data, "__arrow_c_schema__") and not _is_frame(data)
        )

    def partitions(self) -> Sequence[int]:
        return [0]

    def schema(self) -> pa.Schema:
        return self._schema

    @property
    def reiterable(self) -> bool:
        return self._reiterable

    def describe(self) -> str:
        return f"arrow data ({type(self._data).__name__})"

    def read(self, partition: int) -> Iterator[pa.RecordBatch]:
        data = self._pending
        self._pending = None
        if data is None:
            if not self._reiterable:
                raise RuntimeError("this Arrow stream was read already and cannot be read again")
            data = _as_reader_or_table(self._data)
        if isinstance(data, pa.Table):
            yield from data.to_batches(max_chunksize=self._batch_size)
            return
        for batch in data:
            for start in range(0, batch.num_rows, self._batch_size):
                yield batch.slice(start, self._batch_size)


def _is_frame(data: Any) -> bool:
    module = type(data).__module__
    return module.startswith(("pandas", "polars"))


class ArrowSourceFactory:
    name = "arrow"

    def __call__(self, options: Mapping[str, Any], *, batch_size: int) -> ArrowSource:
        check_options("source", options, allowed=("data",), required=("data",))
        return ArrowSource(options["data"], batch_size)


@hookimpl
def register_sources(register: Any) -> None:
    register(ArrowSourceFactory())
