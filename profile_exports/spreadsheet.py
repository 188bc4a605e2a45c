"""Spreadsheet-safe text cells: no cell of an exported CSV runs as a formula when the file is opened.

Spreadsheets treat a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula (and a tab or
carriage return can hide one), so a profile property like ``=HYPERLINK("http://evil", "click")``
would run in the spreadsheet of whoever opens the export ("CSV injection"). Such cells get a leading
apostrophe, which spreadsheets show as text and do not evaluate.

Round trip: a reader restores the original values by removing one leading apostrophe from every
cell that matches ``^'+[=+\\-@\\t\\r]`` (``original_text`` does). Cells that already started
with apostrophes before one of those characters get one more, so that rule is exact (no original
value is changed by it).
Number literals pass unchanged, in text columns too (an E.164 phone ``+15551230001``, ``-3``,
``+1.5e3``): a spreadsheet reads them as numbers, never as formulas, and every engine loading the file
must read the value itself, not an apostrophe before it. A cell only passes when the whole of it is
one number, so ``-2+3+cmd|' /C calc'!A0`` is still neutralised. The round trip stays exact: a number
literal starts with no apostrophe, so the reader's rule never touches it.
Numbers, booleans, timestamps and nested values (JSON) never start with a trigger as text, except
negative numbers: only text columns are touched.
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
_RISKY_FIRST, _QUOTED = 1, 2
_FIRST_BYTE_FLAGS = np.zeros(256, np.uint8)
_FIRST_BYTE_FLAGS[_TRIGGER_BYTES] = _RISKY_FIRST
_FIRST_BYTE_FLAGS[_APOSTROPHE] = _QUOTED
_RISKY = r"^'*[=+\-@\t\r]"
_NUMBER = r"^[+-](?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
_SIGNS = np.frombuffer(b"+-", np.uint8)
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

    CSV encodes a few thousand rows at a time, so this runs tens of thousands of times per million
    profiles: it works on the Arrow buffers with numpy (a lookup of each value's first byte, then
    one insertion into the data buffer) and leaves columns without risky values untouched. The
    regular expression only runs on the rare values that start with an apostrophe.
    """
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)) or not len(column):
        return column
    large = pa.types.is_large_string(column.type)
    _, offsets_buffer, data_buffer = column.buffers()
    if data_buffer is None or data_buffer.size == 0:
        return column
    offset_type = np.int64 if large else np.int32
    offsets: np.ndarray = np.frombuffer(
        offsets_buffer, offset_type, len(column) + 1, offset=offset_type().itemsize * column.offset
    )
    data = np.frombuffer(data_buffer, np.uint8)
    starts = offsets[:-1]
    first = _FIRST_BYTE_FLAGS[data[np.minimum(starts, len(data) - 1)]]
    risky = np.flatnonzero(first)
    if not len(risky):
        return column
    # A null or empty value has no first byte: the lookup above read its neighbour's.
    risky = risky[offsets[risky + 1] > starts[risky]]
    if column.null_count and len(risky):
        risky = risky[column.is_valid().to_numpy(zero_copy_only=False)[risky]]
    signed = risky[np.isin(data[starts[risky]], _SIGNS)]
    if len(signed):  # phones and negative numbers: a whole number literal is not a formula
        numbers = pc.match_substring_regex(column.take(pa.array(signed)), _NUMBER).to_numpy(zero_copy_only=False)
        risky = np.setdiff1d(risky, signed[numbers], assume_unique=True)
    quoted = risky[first[risky] == _QUOTED]
    if len(quoted):
        matches = pc.match_substring_regex(column.take(pa.array(quoted)), _RISKY).to_numpy(zero_copy_only=False)
        risky = np.union1d(risky[first[risky] != _QUOTED], quoted[matches])
    if not len(risky):
        return column
    return _with_apostrophes(column, offsets, data, risky, large)


def _with_apostrophes(
    column: pa.Array, offsets: np.ndarray, data: np.ndarray, rows: np.ndarray, large: bool
) -> pa.Array:
    """``column`` with an apostrophe inserted before the values at ``rows`` (sorted, non-empty)."""
    base = offsets[0]
    added = np.zeros(len(offsets), np.int64)
    added[rows + 1] = 1
    new_offsets = offsets.astype(np.int64) - base + np.cumsum(added)
    if not large and new_offsets[-1] > np.iinfo(np.int32).max:
        return safe_texts(column.cast(pa.large_string()))  # the apostrophes overflow 32-bit offsets
    new_data = np.insert(data[base : offsets[-1]], offsets[rows] - base, _APOSTROPHE)
    validity = column.is_valid().buffers()[1] if column.null_count else None
    return pa.Array.from_buffers(
        column.type,
        len(column),
        [validity, pa.py_buffer(new_offsets.astype(np.int64 if large else np.int32)), pa.py_buffer(new_data)],
        null_count=column.null_count,
    )
