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

from ..hookspecs import hookimpl
from ..layout import OutputLayout
from ..spreadsheet import safe_name, safe_texts
from ..textfile import TextWriter
from ..values import is_text_type, text_column


class CsvEncoder:
    """Rows as RFC 4180 lines: text quoted, numbers, booleans and times bare, missing values blank.

    Engines that infer column types from a CSV (ClickHouse, DuckDB, Spark, polars) type a quoted
    cell as text, so numbers and booleans must be bare (``36``, ``true``) to come back as numbers;
    text is always quoted, so an empty string (``""``) and a missing value (blank) stay apart.
    """

    def __init__(self, layout: OutputLayout, *, spreadsheet_safe: bool = True) -> None:
        self._names = [safe_name(n) for n in layout.names] if spreadsheet_safe else list(layout.names)
        self._safe = spreadsheet_safe

    def header(self) -> bytes:
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerow(self._names)
        return out.getvalue().encode("utf-8")

    def encode(self, batch: pa.RecordBatch) -> bytes:
        if batch.num_rows == 0:
            return b""
        # One join per row over the cells; a null cell (null_replacement) is blank.
        cells = [self._cell_texts(c) for c in batch.columns]
        rows = pc.binary_join_element_wise(*cells, ",", null_handling="replace", null_replacement="")
        lines = pc.binary_join_element_wise(rows, "", "\n")
        # The lines sit back to back in the array's data buffer: that span is the encoding.
        _, offsets_buffer, data = lines.buffers()
        offset_type = np.int64 if pa.types.is_large_string(lines.type) else np.int32
        width = offset_type().itemsize
        offsets = np.frombuffer(offsets_buffer, offset_type, len(lines) + 1, offset=width * lines.offset)
        return data.slice(int(offsets[0]), int(offsets[-1] - offsets[0])).to_pybytes()

    def footer(self) -> bytes:
        return b""

    def _cell_texts(self, column: pa.Array) -> pa.Array:
        text = text_column(column)
        if not _is_bare(column.type):
            if self._safe and is_text_type(column.type):
                text = safe_texts(text)
            text = _quoted(text)
        return text


def _is_bare(t: pa.DataType) -> bool:
    """Values written without quotes: their text never holds a comma, quote or line break."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    return (
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_boolean(t)
        or pa.types.is_decimal(t)
        or (pa.types.is_temporal(t) and not pa.types.is_duration(t))
        or pa.types.is_null(t)
    )


def _quoted(text: pa.Array) -> pa.Array:
    """``"text"`` with inner quotes doubled (RFC 4180); nulls stay null."""
    if not pa.types.is_string(text.type):
        text = text.cast(pa.string())
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
