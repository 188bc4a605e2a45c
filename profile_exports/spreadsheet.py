"""Spreadsheet-safe text cells: no cell of an exported CSV runs as a formula when the file is opened.

Spreadsheets treat a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula (and a tab or
carriage return can hide one), so a profile property like ``=HYPERLINK("http://evil", "click")``
would run in the spreadsheet of whoever opens the export ("CSV injection"). Such cells get a leading
apostrophe, which spreadsheets show as text and do not evaluate.

Round trip: a reader restores the original values by removing one leading apostrophe from every
cell that matches ``^'+[=+\\-@\\t\\r]`` (``original_text`` does). Cells that already started
with apostrophes before one of those characters get one more, so that rule is exact (no original
value is changed by it).
Numbers, booleans, timestamps and nested values (JSON) never start with a trigger as text, except
negative numbers, which spreadsheets read as numbers: only text columns are touched.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["TRIGGERS", "original_text", "safe_name", "safe_texts"]

TRIGGERS = "=+-@\t\r"
_TRIGGER_BYTES = np.frombuffer(TRIGGERS.encode(), np.uint8)
_APOSTROPHE = ord("'")
_RISKY = r"^'*[=+\-@\t\r]"
_ADDED = re.compile(r"^'(?='*[=+\-@\t\r])")


def original_text(cell: str) -> str:
    """The value a spreadsheet-safe cell was written from (the reader's side of the round trip)."""
    return _ADDED.sub("", cell)


def safe_name(name: str) -> str:
    """A header cell, made safe like the values."""
    stripped = name.lstrip("'")
    return "'" + name if stripped[:1] and stripped[0] in TRIGGERS else name


def safe_texts(column: pa.Array) -> pa.Array:
    """A text column with a leading apostrophe on the values a spreadsheet would run as formulas.

    Only the first byte of each value is looked at (with numpy, on the data buffer); the regular
    expression runs on the rare values that start with an apostrophe.
    """
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)) or not len(column):
        return column
    large = pa.types.is_large_string(column.type)
    _, offsets_buffer, data_buffer = column.buffers()
    if data_buffer is None or data_buffer.size == 0:
        return column
    width = 8 if large else 4
    offset_type = np.int64 if large else np.int32
    offsets: np.ndarray = np.frombuffer(offsets_buffer, offset_type, len(column) + 1, offset=width * column.offset)
    data = np.frombuffer(data_buffer, np.uint8)
    starts = offsets[:-1]
    present = offsets[1:] > starts  # nulls and empty strings have no first byte
    if column.null_count:
        present &= column.is_valid().to_numpy(zero_copy_only=False)
    first = np.where(present, data[np.minimum(starts, len(data) - 1)], 0)
    risky = np.isin(first, _TRIGGER_BYTES)
    quoted = np.flatnonzero(first == _APOSTROPHE)
    if len(quoted):
        matches = pc.match_substring_regex(column.take(pa.array(quoted)), _RISKY)
        risky[quoted] = matches.to_numpy(zero_copy_only=False)
    if not risky.any():
        return column
    mask = pa.array(risky)
    return pc.if_else(mask, pc.binary_join_element_wise("'", column, ""), column)
