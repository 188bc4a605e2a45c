"""CSV: a header row, RFC 4180 quoting, UTF-8; lists and mappings as compact JSON in the cell.

With ``spreadsheet_safe`` (the default), text cells that a spreadsheet would run as a formula get a
leading apostrophe: see :mod:`profile_exports.spreadsheet`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv

from ..hookspecs import hookimpl
from ..layout import OutputLayout
from ..spreadsheet import safe_name, safe_texts
from ..textfile import TextWriter
from ..values import is_text_type, text_column


class CsvEncoder:
    def __init__(self, layout: OutputLayout, *, spreadsheet_safe: bool = True) -> None:
        self._names = [safe_name(n) for n in layout.names] if spreadsheet_safe else list(layout.names)
        self._safe = spreadsheet_safe
        self._options = pa_csv.WriteOptions(include_header=False, quoting_style="needed")

    def header(self) -> bytes:
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerow(self._names)
        return out.getvalue().encode("utf-8")

    def encode(self, batch: pa.RecordBatch) -> bytes:
        # Arrow's CSV writer quotes strings as needed and leaves nulls blank (an empty string is
        # written as ""), so blank cells and empty strings stay apart for readers that care.
        columns = [self._cell_texts(c) for c in batch.columns]
        table = pa.RecordBatch.from_arrays(columns, names=[f"c{i}" for i in range(len(columns))])
        sink = io.BytesIO()
        pa_csv.write_csv(table, sink, self._options)
        return sink.getvalue()

    def footer(self) -> bytes:
        return b""

    def _cell_texts(self, column: pa.Array) -> pa.Array:
        text = text_column(column)
        return safe_texts(text) if self._safe and is_text_type(column.type) else text


class CsvWriter(TextWriter):
    name = "csv"
    content_type = "text/csv"
    suffix = "csv"

    def encoder(self, layout: OutputLayout, options: Mapping[str, Any]) -> CsvEncoder:
        return CsvEncoder(layout, spreadsheet_safe=bool(options.get("spreadsheet_safe", True)))


@hookimpl
def register_writers(register: Any) -> None:
    register(CsvWriter())
