"""CSV: a header row, RFC 4180 quoting, UTF-8; lists and mappings as compact JSON in the cell.

With ``spreadsheet_safe`` (the default), text cells that a spreadsheet would run as a formula get a
leading apostrophe: see :mod:`profile_exports.spreadsheet`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from ..hookspecs import hookimpl
from ..layout import OutputLayout
from ..spreadsheet import safe_name, safe_texts
from ..textfile import TextWriter
from ..values import is_number_or_boolean, is_text_type, text_column


class CsvEncoder:
    """Rows as RFC 4180 lines: text quoted, numbers and booleans bare, missing values blank.

    Engines that infer column types from a CSV (ClickHouse, DuckDB, Spark, polars) type a quoted
    cell as text, so numbers and booleans must be bare (``36``, ``true``) to come back as numbers;
    text (times and JSON cells too) is always quoted, so an empty string (``""``) and a missing value
    (blank) stay apart.
    """

    def __init__(self, layout: OutputLayout, *, spreadsheet_safe: bool = True) -> None:
        self._names = [safe_name(n) for n in layout.names] if spreadsheet_safe else list(layout.names)
        self._safe = spreadsheet_safe
        self._options = pa_csv.WriteOptions(include_header=False, quoting_style="needed")

    def header(self) -> bytes:
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerow(self._names)
        return out.getvalue().encode("utf-8")

    def encode(self, batch: pa.RecordBatch) -> bytes:
        if batch.num_rows == 0:
            return b""
        columns = [self._cell_values(c) for c in batch.columns]
        if any(pa.types.is_floating(c.type) and not _all_finite(c) for c in columns):
            return _joined_lines(columns)
        # Arrow's CSV writer quotes every string and no number or boolean (quoting "needed"), doubles
        # quotes, and leaves nulls blank: the rule above, in C++.
        table = pa.RecordBatch.from_arrays(columns, names=[f"c{i}" for i in range(len(columns))])
        sink = io.BytesIO()
        pa_csv.write_csv(table, sink, self._options)
        return sink.getvalue()

    def footer(self) -> bytes:
        return b""

    def _cell_values(self, column: pa.Array) -> pa.Array:
        """Numbers and booleans as they are (written bare); everything else as text (quoted)."""
        t = column.type
        if pa.types.is_dictionary(t) and _is_bare(t.value_type):
            return column.cast(t.value_type)
        if _is_bare(t):
            return column
        text = text_column(column)
        if self._safe and is_text_type(t):
            text = safe_texts(text)
        return text


# Values written without quotes: numbers and booleans (their text never needs quotes).
_is_bare = is_number_or_boolean


def _all_finite(column: pa.Array) -> bool:
    return bool(pc.all(pc.fill_null(pc.is_finite(column), True)).as_py())


def _joined_lines(columns: list[pa.Array]) -> bytes:
    """The lines ``encode`` writes, joined cell by cell, for chunks with non-finite floats (Arrow's
    writer would print NaN as ``nan``)."""
    cells = [
        _float_text(c)
        if pa.types.is_floating(c.type)
        else text_column(c)
        if _is_bare(c.type)
        else _quoted(c if pa.types.is_string(c.type) else c.cast(pa.string()))
        for c in columns
    ]
    rows = pc.binary_join_element_wise(*cells, ",", null_handling="replace", null_replacement="")
    lines = pc.binary_join_element_wise(rows, "", "\n")
    # The lines sit back to back in the array's data buffer: that span is the encoding.
    _, offsets_buffer, data = lines.buffers()
    offset_type = np.int64 if pa.types.is_large_string(lines.type) else np.int32
    width = offset_type().itemsize
    offsets = np.frombuffer(offsets_buffer, offset_type, len(lines) + 1, offset=width * lines.offset)
    return data.slice(int(offsets[0]), int(offsets[-1] - offsets[0])).to_pybytes()


def _float_text(column: pa.Array) -> pa.Array:
    """Floats as Arrow prints them, non-finite ones as ``NaN``, ``inf`` and ``-inf``.

    The words the most engines type as floats with their default options: polars infers floats only
    from ``NaN`` and ``inf`` (not ``Infinity``); DuckDB, ClickHouse and pandas read both; Spark reads
    ``NaN`` and, with ``positiveInf="inf", negativeInf="-inf"`` (docs/loading.md), ``inf``.
    """
    text = column.cast(pa.string())  # "nan", "inf", "-inf"
    return pc.if_else(pc.is_nan(column), "NaN", text)


def _quoted(text: pa.Array) -> pa.Array:
    """``"text"`` with inner quotes doubled (RFC 4180); nulls stay null."""
    _, _, data = text.buffers()
    if data is not None and data.size and np.any(np.frombuffer(data, np.uint8) == _QUOTE):
        text = pc.replace_substring(text, '"', '""')
    return pc.binary_join_element_wise('"', text, '"', "")


_QUOTE = ord('"')


class CsvWriter(TextWriter):
    name = "csv"
    content_type = "text/csv"
    suffix = "csv"

    def encoder(self, layout: OutputLayout, options: Mapping[str, Any]) -> CsvEncoder:
        return CsvEncoder(layout, spreadsheet_safe=bool(options.get("spreadsheet_safe", True)))


@hookimpl
def register_writers(register: Any) -> None:
    register(CsvWriter())
