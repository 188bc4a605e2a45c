"""Source: Arrow tables, record batches and readers, and anything exporting the Arrow C stream
(pandas and polars DataFrames, DuckDB relations, ...).

Columns of Python objects (pandas ``object`` columns, polars ``Object`` columns) are typed like dicts
from the records source (``canonical.python_array``), not by Arrow's inference: mappings keep exactly
their own keys, and a column mixing kinds of values (``1``, ``"one"``, ``2.5``) is text, its converted
values counted in ``values_as_text``. Any other column Arrow cannot convert is a ``DataError`` naming
the column and a value.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa

from ..canonical import ARROW_CONVERSION_ERRORS, python_array
from ..errors import ConfigError, DataError
from ..hookspecs import hookimpl
from ..options import check_options

Converted = tuple[pa.Table | pa.RecordBatchReader, dict[str, int]]
_CONVERSION_ERRORS: tuple[type[Exception], ...] = (*ARROW_CONVERSION_ERRORS, OverflowError)


def _as_reader_or_table(data: Any) -> Converted:
    """The data as Arrow, and the number of values turned to text per column."""
    if isinstance(data, pa.Table | pa.RecordBatchReader):
        return data, {}
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data]), {}
    # Before the C stream: pandas (2.2 and later) has one, which types object columns by Arrow's inference.
    if type(data).__module__.startswith("pandas") and hasattr(data, "to_records"):
        return _from_pandas(data)
    if type(data).__module__.startswith("polars") and _polars_objects(data):
        return _from_polars(data)
    if hasattr(data, "__arrow_c_stream__"):
        return pa.RecordBatchReader.from_stream(data), {}
    raise ConfigError(
        "source.data",
        f"a {type(data).__name__} is not Arrow data; pass a pyarrow Table or RecordBatchReader, "
        "a pandas or polars DataFrame, or use the records source for dicts",
    )


def _problem(name: str, sample: Any, exc: Exception) -> DataError:
    return DataError(
        f"source.data: column {name!r} of the DataFrame cannot be converted to Arrow ({exc}); a value: "
        f"{repr(sample)[:60]}. Convert the column to a supported type first (for example text, with "
        f"df[{name!r}].astype(str)), or drop it from the DataFrame."
    )


def _pandas_missing(value: Any) -> bool:
    import pandas as pd

    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def _from_pandas(frame: Any) -> Converted:
    names: list[str] = []
    arrays: list[pa.Array] = []
    as_text: dict[str, int] = {}
    for i in range(frame.shape[1]):
        name, series = str(frame.columns[i]), frame.iloc[:, i]
        names.append(name)
        if series.dtype == object:
            try:
                array = pa.array(series, from_pandas=True)
            except _CONVERSION_ERRORS:
                array = None
            if array is None or _has_struct(array.type):  # mixed values, or dicts Arrow made structs of
                array, converted = python_array([None if _pandas_missing(v) else v for v in series.tolist()])
                if converted:
                    as_text[name] = converted
            arrays.append(array)
            continue
        try:
            arrays.append(pa.array(series, from_pandas=True))
        except _CONVERSION_ERRORS as exc:
            sample = next((v for v in series.tolist() if not _pandas_missing(v)), None)
            raise _problem(name, sample, exc) from exc
    return pa.Table.from_arrays(arrays, names=names), as_text


def _polars_objects(frame: Any) -> bool:
    schema = getattr(frame, "schema", None)
    return schema is not None and hasattr(schema, "items") and any(str(t) == "Object" for _, t in schema.items())


def _from_polars(frame: Any) -> Converted:
    names: list[str] = []
    arrays: list[pa.Array] = []
    as_text: dict[str, int] = {}
    for name, type_ in frame.schema.items():
        series = frame.get_column(name)
        names.append(name)
        if str(type_) == "Object":
            array, converted = python_array(series.to_list())
            if converted:
                as_text[name] = converted
            arrays.append(array)
            continue
        try:
            arrays.append(series.to_arrow())
        except _CONVERSION_ERRORS as exc:
            sample = next((v for v in series.to_list() if v is not None), None)
            raise _problem(name, sample, exc) from exc
    return pa.Table.from_arrays(arrays, names=names), as_text


def _has_struct(t: pa.DataType) -> bool:
    if pa.types.is_struct(t):
        return True
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _has_struct(t.value_type)
    return False


class ArrowSource:
    def __init__(self, data: Any, batch_size: int) -> None:
        self._data = data
        self._batch_size = batch_size
        first, as_text = _as_reader_or_table(data)
        # values of object columns turned to text (mixed kinds), per column: the run reports them
        self.values_as_text: dict[str, int] = as_text
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
            data, self.values_as_text = _as_reader_or_table(self._data)
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
