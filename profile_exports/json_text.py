"""Compact JSON text of whole Arrow columns, built with Arrow compute instead of one object per value.

``json_texts(column)`` is the JSON of each value (nulls stay null); ``json_objects`` the JSON object
of each row of a batch. Both give what ``orjson.dumps`` gives for the values of ``values.python_values``
(the same strings, numbers, ``true``/``false``, nested arrays and objects), without building a Python
object per value: strings are quoted by concatenation, and only the rare strings that need escapes
(a quote, a backslash, a control character) go through orjson one by one; lists are joined with
``binary_join`` over their offsets, structs and maps with ``binary_join_element_wise``.

Numbers are printed by Arrow: integers as they are, decimals as their digits (``1.50``, ``1E-7``: JSON
numbers, never strings), floats in the shortest form that reads back as
the same float (``1.0``, ``0.1``, ``1e+20``), non-finite floats as the strings ``"NaN"``,
``"Infinity"``, ``"-Infinity"`` (``non_finite="string"``, the default) or ``null``
(``non_finite="null"``, what the JSON Lines writer uses unless told otherwise). Durations are ISO 8601
duration strings (``values.duration_text``); JSON text (the ``arrow.json`` extension type) goes in as it
is. Types without a rule here (binary, ...) take the per-value path, so every type still
gets its JSON.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from . import values

__all__ = ["json_objects", "json_texts"]


def _escaped(strings: pa.Array) -> pa.Array:
    """The inside of each JSON string: the text itself, or orjson's escapes for the rare values that need them."""
    if not pa.types.is_string(strings.type):
        strings = strings.cast(pa.string())
    n = len(strings)
    if n == 0:
        return strings
    _, offsets_buffer, data_buffer = strings.buffers()
    offsets = np.frombuffer(offsets_buffer, np.int32, n + 1, offset=4 * strings.offset)
    first, size = int(offsets[0]), int(offsets[-1] - offsets[0])
    if size == 0:
        return strings
    # A quote, a backslash or a control byte: found on the bytes, without a look at each value.
    data = np.frombuffer(data_buffer, np.uint8, size, offset=first)
    bad = np.flatnonzero((data < 0x20) | (data == 0x22) | (data == 0x5C))
    if not len(bad):
        return strings
    needs = np.zeros(n, bool)
    needs[np.searchsorted(offsets, bad + first, side="right") - 1] = True
    mask = pa.array(needs)
    escaped = [None if v is None else orjson.dumps(v).decode()[1:-1] for v in strings.filter(mask).to_pylist()]
    return pc.replace_with_mask(strings, mask, pa.array(escaped, pa.string()))


def _quoted(strings: pa.Array) -> pa.Array:
    """JSON strings (nulls stay null)."""
    return pc.binary_join_element_wise('"', _escaped(strings), '"', "")


def _string_like(column: pa.Array) -> pa.Array | None:
    """The text of a column written as JSON strings (text, timestamps, dates); None for the others."""
    t = column.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return column
    if pa.types.is_dictionary(t) and (pa.types.is_string(t.value_type) or pa.types.is_large_string(t.value_type)):
        return column.cast(pa.string())
    if pa.types.is_timestamp(t):
        return values.timestamp_text(column)
    if pa.types.is_date32(t):
        return column.cast(pa.string())
    if pa.types.is_duration(t):
        return values.duration_text(column)
    return None


def _raw_json(column: pa.Array) -> pa.Array:
    """JSON text as it is, on one line: a value holding a line break (JSON text from elsewhere than
    this library, which writes it compact) is parsed and written again compact."""
    text = values.json_storage(column)
    _, offsets_buffer, data_buffer = text.buffers()
    if data_buffer is None or not len(text):
        return text
    offsets = np.frombuffer(offsets_buffer, np.int32, len(text) + 1, offset=4 * text.offset)
    first, size = int(offsets[0]), int(offsets[-1] - offsets[0])
    data = np.frombuffer(data_buffer, np.uint8, size, offset=first)
    breaks = np.flatnonzero((data == 0x0A) | (data == 0x0D))
    if not len(breaks):
        return text
    needs = np.zeros(len(text), bool)
    needs[np.searchsorted(offsets, breaks + first, side="right") - 1] = True
    mask = pa.array(needs)
    compact = [None if v is None else values.dumps(orjson.loads(v)) for v in text.filter(mask).to_pylist()]
    return pc.replace_with_mask(text, mask, pa.array(compact, pa.string()))


def _float_texts(column: pa.Array, non_finite: str = "string") -> pa.Array:
    text = column.cast(pa.string())
    numbers = column.to_numpy(zero_copy_only=False)
    with np.errstate(invalid="ignore"):
        whole = np.isfinite(numbers) & (numbers == np.trunc(numbers))
    if whole.any():
        # Arrow prints 1.0 as "1": keep the point (where it did not print an exponent), as orjson does.
        mask = pa.array(whole)
        printed = text.filter(mask)
        pointed = pc.if_else(pc.match_substring(printed, "e"), printed, pc.binary_join_element_wise(printed, ".0", ""))
        text = pc.replace_with_mask(text, mask, pointed)
    if pc.all(pc.fill_null(pc.is_finite(column), True)).as_py():
        return text
    if non_finite == "null":
        return pc.if_else(pc.is_finite(column), text, pa.scalar(None, pa.string()))
    text = pc.if_else(pc.is_nan(column), '"NaN"', text)
    text = pc.if_else(pc.and_(pc.is_inf(column), pc.greater(column, 0)), '"Infinity"', text)
    return pc.if_else(pc.and_(pc.is_inf(column), pc.less(column, 0)), '"-Infinity"', text)


_NULL = "\x00"  # stands for a null while an object is joined: valid JSON never holds a raw NUL byte


def _object(
    keys: Sequence[str], columns: Sequence[pa.Array], closing: str = "}", non_finite: str = "string"
) -> pa.Array:
    """``{"k1":v1,...}`` per row (at least one key), ``null`` for a null value.

    One join for all members: strings go in unquoted between quotes of the surrounding constants, so
    they take no pass of their own; a null goes in as a NUL byte that one replacement turns to null.
    """
    parts: list[pa.Array | str] = []
    open_quote = quoted_nulls = plain_nulls = False
    for i, (key, column) in enumerate(zip(keys, columns, strict=True)):
        lead = ('"' if open_quote else "") + ("{" if i == 0 else ",") + orjson.dumps(key).decode() + ":"
        text = _string_like(column)
        if text is not None:
            parts += [lead + '"', _escaped(text)]
            open_quote = True
            quoted_nulls |= column.null_count > 0
        else:
            texts = json_texts(column, non_finite=non_finite)
            parts += [lead, texts]
            open_quote = False
            # a non-finite float written as null is a null text where the column has a value
            plain_nulls |= texts.null_count > 0 or pa.types.is_null(column.type)
    closing = ('"' if open_quote else "") + closing
    joined = pc.binary_join_element_wise(*parts, closing, "", null_handling="replace", null_replacement=_NULL)
    if quoted_nulls:
        joined = pc.replace_substring(joined, '"' + _NULL + '"', "null")
    if plain_nulls:
        joined = pc.replace_substring(joined, _NULL, "null")
    return joined


def _list_texts(column: pa.Array, non_finite: str = "string") -> pa.Array:
    # .values with the offsets (not .flatten()): the offsets index the whole child array.
    values = column.values
    list_type = pa.large_list(pa.string()) if pa.types.is_large_list(column.type) else pa.list_(pa.string())
    text = _string_like(values)
    if text is not None and values.null_count == 0:
        # Lists of text (tags, ids): joined with '","' between quotes, no quoting pass per item.
        lists = type(column).from_arrays(column.offsets, _escaped(text), type=list_type)
        joined = pc.binary_join_element_wise('["', pc.binary_join(lists, '","'), '"]', "")
        joined = pc.if_else(pc.equal(pc.list_value_length(column), 0), "[]", joined)
        return _with_nulls(joined, column)
    items = pc.fill_null(json_texts(values, non_finite=non_finite), "null")
    lists = type(column).from_arrays(column.offsets, items, type=list_type)
    joined = pc.binary_join(lists, ",")
    return _with_nulls(pc.binary_join_element_wise("[", joined, "]", ""), column)


def _struct_texts(column: pa.Array, non_finite: str = "string") -> pa.Array:
    t = column.type
    if t.num_fields == 0:
        return _with_nulls(pa.array(["{}"] * len(column), pa.string()), column)
    names = [t.field(i).name for i in range(t.num_fields)]
    fields = [column.field(i) for i in range(t.num_fields)]
    return _with_nulls(_object(names, fields, non_finite=non_finite), column)


def _map_texts(column: pa.Array, non_finite: str = "string") -> pa.Array:
    keys = column.keys if pa.types.is_string(column.type.key_type) else None
    if keys is None:
        raise _Unsupported
    entries = pc.binary_join_element_wise(
        _quoted(keys),
        ":",
        json_texts(column.items, non_finite=non_finite),
        "",
        null_handling="replace",
        null_replacement="null",
    )
    objects = pa.ListArray.from_arrays(column.offsets, entries)
    joined = pc.binary_join(objects, ",")
    return _with_nulls(pc.binary_join_element_wise("{", joined, "}", ""), column)


def _with_nulls(texts: pa.Array, column: pa.Array) -> pa.Array:
    if column.null_count == 0:
        return texts
    return pc.if_else(pc.is_valid(column), texts, pa.scalar(None, pa.string()))


class _Unsupported(Exception):
    """This type takes the per-value path."""


def _vectorised(column: pa.Array, non_finite: str) -> pa.Array:
    t = column.type
    text = _string_like(column)
    if text is not None:
        return _quoted(text)
    if values.is_json_type(t):
        return _raw_json(column)
    if pa.types.is_boolean(t):
        return pc.if_else(column, "true", "false")
    if pa.types.is_integer(t) or pa.types.is_decimal(t):  # a decimal's digits are a JSON number
        return column.cast(pa.string())
    if pa.types.is_floating(t):
        return _float_texts(column, non_finite)
    if pa.types.is_null(t):
        return pa.nulls(len(column), pa.string())
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _list_texts(column, non_finite)
    if pa.types.is_struct(t):
        return _struct_texts(column, non_finite)
    if pa.types.is_map(t):
        return _map_texts(column, non_finite)
    raise _Unsupported


def json_texts(column: pa.Array, *, non_finite: str = "string") -> pa.Array:
    """The compact JSON of each value, as a string array; nulls stay null.

    ``non_finite``: ``"string"`` writes NaN and the infinities as ``"NaN"``, ``"Infinity"``,
    ``"-Infinity"``; ``"null"`` as null (a top-level one is then a null of the result).
    """
    try:
        return _vectorised(column, non_finite)
    except (_Unsupported, pa.ArrowNotImplementedError):
        return values.json_text_per_value(column, non_finite)


def json_objects(
    batch: pa.RecordBatch, names: Sequence[str], closing: str = "}", *, non_finite: str = "string"
) -> pa.Array:
    """One JSON object per row, every name a key (``null`` where the row has no value), then ``closing``."""
    if not names:
        return pa.array(["{" + closing] * batch.num_rows, pa.string())
    return _object(names, batch.columns, closing, non_finite)
