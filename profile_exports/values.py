"""How values become text, the same way in every text format.

- text stays as it is; booleans are ``true``/``false``; integers and floats as Arrow prints them,
  non-finite floats as ``NaN``, ``Infinity``, ``-Infinity`` (JSON writes them as ``null`` by default:
  ``NON_FINITE_RULES``);
- timestamps are ISO 8601 (``2024-01-02T03:04:05Z``, with ``.ffffff`` when the column holds
  sub-second precision, without ``Z`` when the column has no time zone);
- durations are ISO 8601 durations (``duration_text``): ``PT1H``, ``P1DT2H3M4.5S``, ``-PT1H30M``,
  ``PT0S``;
- lists, structs and maps are compact JSON (maps as JSON objects); JSON text (the ``arrow.json``
  extension type, mappings whose values have different types) is that text;
- decimals are their digits (``1.50``), in JSON a number; integers beyond 64 bits their digits too.

``value_text`` gives the same forms for one Python value (the values of a column of mixed kinds).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from .errors import DataError

_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}
# How JSON writes NaN and the infinities: ``null`` (what engines read as a missing number) or the
# strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"`` (which make the column text for them).
NON_FINITE_RULES = ("null", "string")
JSON_TEXT = pa.json_()


def is_json_type(t: pa.DataType) -> bool:
    """The ``arrow.json`` extension type: values that are JSON text (written raw in JSON)."""
    return isinstance(t, pa.BaseExtensionType) and t.extension_name == "arrow.json"


def json_storage(column: pa.Array) -> pa.Array:
    """The JSON text of an ``arrow.json`` column as a plain string array."""
    storage = column.storage
    return storage if pa.types.is_string(storage.type) else storage.cast(pa.string())


def is_nested(t: pa.DataType) -> bool:
    return pa.types.is_nested(t)


def is_number_or_boolean(t: pa.DataType) -> bool:
    """Numbers and booleans (and all-null columns): text that never holds a quote, comma or markup."""
    return (
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_boolean(t)
        or pa.types.is_decimal(t)
        or pa.types.is_null(t)
    )


def is_text_type(t: pa.DataType) -> bool:
    """Strings and bytes (a dictionary of them too): values that are text, not printed numbers."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t)


def timestamp_text(column: pa.Array) -> pa.Array:
    t = column.type
    # Arrow's cast of a zone-less timestamp prints "YYYY-MM-DD HH:MM:SS[.fff]": ISO 8601 once the
    # space is a "T". Twenty times faster than strftime, same text.
    naive = column.cast(pa.timestamp(t.unit)) if t.tz is not None else column
    text = pc.replace_substring(naive.cast(pa.string()), " ", "T", max_replacements=1)
    return pc.binary_join_element_wise(text, "Z", "") if t.tz is not None else text


_UNIT_DIGITS = {"s": 0, "ms": 3, "us": 6, "ns": 9}


def _duration_parts(count: np.ndarray, digits: int) -> tuple[np.ndarray, ...]:
    """Sign, days, hours, minutes, seconds and the fraction (in units) of durations counted in a unit."""
    negative = count < 0
    # The magnitude as unsigned, so that the most negative int64 has one too.
    magnitude = np.where(negative, (-(count + 1)).astype(np.uint64) + np.uint64(1), count.astype(np.uint64))
    seconds, fraction = np.divmod(magnitude, np.uint64(10**digits))
    days, rest = np.divmod(seconds, np.uint64(86_400))
    hours, rest = np.divmod(rest, np.uint64(3_600))
    minutes, secs = np.divmod(rest, np.uint64(60))
    return negative, days, hours, minutes, secs, fraction


def duration_text(column: pa.Array) -> pa.Array:
    """Durations as ISO 8601 durations, built column-wise; nulls stay null.

    Days of exactly 24 hours, then hours, minutes and seconds, each left out when zero (``PT0S`` for
    no time at all); seconds with the fraction the unit holds, trailing zeros dropped
    (``PT4.5S``, ``PT0.000001S``); a negative duration is the duration of its magnitude with a
    leading ``-`` (``-PT1H30M``), as in XML Schema's ``xs:duration``.
    """
    digits = _UNIT_DIGITS[column.type.unit]
    count = pc.fill_null(column.cast(pa.int64()), 0).to_numpy(zero_copy_only=False)
    negative, days, hours, minutes, secs, fraction = _duration_parts(count, digits)

    def part(values: np.ndarray, letter: str) -> pa.Array:
        text = pc.binary_join_element_wise(pa.array(values).cast(pa.string()), letter, "")
        return pc.if_else(pa.array(values > 0), text, "")

    if digits:
        padded = pc.utf8_lpad(pa.array(fraction).cast(pa.string()), digits, "0")
        point = pc.if_else(pa.array(fraction > 0), pc.binary_join_element_wise(".", pc.utf8_rtrim(padded, "0"), ""), "")
    else:
        point = pa.array([""] * len(count), pa.string())
    with_seconds = pa.array((secs > 0) | (fraction > 0))
    second = pc.if_else(with_seconds, pc.binary_join_element_wise(pa.array(secs).cast(pa.string()), point, "S", ""), "")
    time = pc.binary_join_element_wise(part(hours, "H"), part(minutes, "M"), second, "")
    time = pc.if_else(pc.equal(time, ""), "", pc.binary_join_element_wise("T", time, ""))
    text = pc.binary_join_element_wise(pc.if_else(pa.array(negative), "-P", "P"), part(days, "D"), time, "")
    text = pc.if_else(pa.array(count == 0), "PT0S", text)
    if column.null_count:
        text = pc.if_else(pc.is_valid(column), text, pa.scalar(None, pa.string()))
    return text


def iso_duration(value: timedelta) -> str:
    """One ``timedelta`` as ``duration_text`` writes it."""
    micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    negative = micros < 0
    seconds, fraction = divmod(abs(micros), 1_000_000)
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    time = "".join(f"{n}{letter}" for n, letter in ((hours, "H"), (minutes, "M")) if n)
    if secs or fraction:
        time += f"{secs}" + (f".{fraction:06d}".rstrip("0") if fraction else "") + "S"
    if not (days or time):
        return "PT0S"
    return ("-" if negative else "") + "P" + (f"{days}D" if days else "") + (f"T{time}" if time else "")


class BadValue(DataError):
    """A value no format can write as it is (text with a lone surrogate, bytes that are not UTF-8):
    the record that holds it is a bad record."""


def json_default(value: Any) -> Any:
    """orjson's ``default``: durations as ISO 8601 text, datetimes as ``datetime_text`` (as a timestamp
    column's JSON writes them), decimals as JSON numbers of their digits (NaN and infinite ones as
    null, like floats), anything else unknown as its ``str``."""
    if isinstance(value, timedelta):
        return iso_duration(value)
    if isinstance(value, datetime):
        return datetime_text(value)
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value)) if value.is_finite() else None
    return str(value)


_DUMPS_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_PASSTHROUGH_DATETIME
_INT64 = (-(2**63), 2**64 - 1)  # the integers orjson writes itself (int64 and uint64)


def dumps(value: Any) -> str:
    """Compact JSON of a Python value: non-text keys as text, durations ISO 8601, NaN as null, integers
    of any size as their digits. Raises ``BadValue`` for what JSON cannot hold (a lone surrogate)."""
    try:
        return orjson.dumps(value, option=_DUMPS_OPTIONS, default=json_default).decode()
    except orjson.JSONEncodeError as exc:
        problem: Exception = exc
    if "64-bit" in str(problem):  # orjson stops at 64 bits: wider integers go in as raw JSON numbers
        try:
            return orjson.dumps(_wide_ints_as_numbers(value), option=_DUMPS_OPTIONS, default=json_default).decode()
        except orjson.JSONEncodeError as exc:
            problem = exc
    raise BadValue(f"a value cannot be written as JSON: {problem}") from None


def _wide_ints_as_numbers(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and not _INT64[0] <= value <= _INT64[1]:
        return orjson.Fragment(str(value))
    if isinstance(value, Mapping):
        return {_wide_key(k): _wide_ints_as_numbers(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_wide_ints_as_numbers(v) for v in value]
    return value


def _wide_key(key: Any) -> Any:
    return str(key) if isinstance(key, int) and not isinstance(key, bool) else key


_NON_FINITE_WORDS = {math.inf: "Infinity", -math.inf: "-Infinity"}


def value_text(value: Any) -> str:
    """One Python value as text, in the text forms of the formats (the module's rules): numbers as
    their digits (integers of any size, decimals exactly as given), non-finite floats as words,
    timestamps ISO 8601 as a microsecond column prints them (``Z`` for an aware one, converted to
    UTC; none for a naive one), dates and times ISO 8601, durations ISO 8601, UTF-8 bytes as their
    text, lists and mappings compact JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return dumps(value) if math.isfinite(value) else _NON_FINITE_WORDS.get(value, "NaN")
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return datetime_text(value)
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return iso_duration(value)
    if isinstance(value, bytes):
        return utf8_text(value)
    return dumps(value)


def datetime_text(value: datetime) -> str:
    """``timestamp_text`` of one datetime in a microsecond column: naive as it is, aware in UTC with ``Z``."""
    if value.utcoffset() is None:
        return value.isoformat(timespec="microseconds")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def utf8_text(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as exc:
        sample = value[exc.start : exc.start + 4]
        raise BadValue(f"holds bytes that are not UTF-8 text (byte {exc.start}: {sample!r})") from None


def lone_surrogate(text: str) -> str | None:
    """``U+D800`` for text holding a lone surrogate (which UTF-8 cannot encode), else None."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"U+{ord(text[exc.start]):04X}"
    return None


def json_ready(value: Any) -> Any:
    """A Python value from Arrow with maps turned from lists of pairs into dicts, recursively."""
    if isinstance(value, list):
        if value and isinstance(value[0], tuple) and len(value[0]) == 2:
            return {k: json_ready(v) for k, v in value}
        return [json_ready(v) for v in value]
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    return value


def _has_map(t: pa.DataType) -> bool:
    if pa.types.is_map(t):
        return True
    if pa.types.is_struct(t):
        return any(_has_map(f.type) for f in t)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _has_map(t.value_type)
    return False


def python_values(column: pa.Array, non_finite: str = "string") -> list[Any]:
    """``to_pylist`` with maps as dicts (Arrow gives lists of pairs), timestamps and durations as text,
    JSON text parsed, and non-finite floats as ``NaN``-like strings (or None: ``non_finite="null"``)."""
    if is_json_type(column.type):
        return [None if v is None else orjson.loads(v) for v in json_storage(column).to_pylist()]
    if _has_timestamp(column.type):
        column = _timestamps_to_text(column)
    if pa.types.is_floating(column.type) and not pc.all(pc.fill_null(pc.is_finite(column), True)).as_py():
        if non_finite == "null":
            return [v if v is None or math.isfinite(v) else None for v in column.to_pylist()]
        return [v if v is None or math.isfinite(v) else _NON_FINITE[str(v)] for v in column.to_pylist()]
    if _has_map(column.type):  # Arrow's own conversion: an empty map is {} (json_ready cannot tell it from [])
        return column.to_pylist(maps_as_pydicts="lossy")
    return column.to_pylist()


def _has_timestamp(t: pa.DataType) -> bool:
    """A timestamp or a duration (both become text) in the type."""
    if pa.types.is_timestamp(t) or pa.types.is_duration(t):
        return True
    if pa.types.is_struct(t):
        return any(_has_timestamp(f.type) for f in t)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _has_timestamp(t.value_type)
    return False


def _timestamps_to_text(column: pa.Array) -> pa.Array:
    t = column.type
    if pa.types.is_timestamp(t):
        return timestamp_text(column)
    if pa.types.is_duration(t):
        return duration_text(column)
    if pa.types.is_struct(t):
        children = [_timestamps_to_text(column.field(i)) for i in range(t.num_fields)]
        return pa.StructArray.from_arrays(children, names=[f.name for f in t], mask=pc.is_null(column))
    if pa.types.is_list(t):
        values = _timestamps_to_text(column.flatten())
        return pa.ListArray.from_arrays(column.offsets, values, mask=pc.is_null(column))
    return column


def json_text(column: pa.Array, non_finite: str = "string") -> pa.Array:
    """Each value as compact JSON text (nulls stay null), built column-wise (``json_text.json_texts``)."""
    from .json_text import json_texts  # that module builds on this one

    return json_texts(column, non_finite=non_finite)


def json_text_per_value(column: pa.Array, non_finite: str = "string") -> pa.Array:
    """``json_text`` one value at a time through orjson: the reference the column-wise one is held to."""
    values = python_values(column, non_finite)
    return pa.array([None if v is None else dumps(v) for v in values], pa.string())


def count_non_finite(column: pa.Array) -> int:
    """How many NaN and infinite floats ``column`` holds, at any depth of lists, structs and maps."""
    t = column.type
    if pa.types.is_floating(t):
        valid = len(column) - column.null_count
        return valid - int(pc.sum(pc.is_finite(column)).as_py() or 0) if valid else 0
    if pa.types.is_struct(t):
        return sum(count_non_finite(child) for child in column.flatten())
    if pa.types.is_map(t):
        entries = pa.ListArray.from_arrays(column.offsets, column.items)
        return count_non_finite(entries.flatten())
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return count_non_finite(column.flatten())
    return 0


def text_column(column: pa.Array) -> pa.Array:
    """The column as text per the rules above; nulls stay null."""
    t = column.type
    if pa.types.is_string(t):
        return column
    if pa.types.is_large_string(t) or pa.types.is_dictionary(t):
        return column.cast(pa.string())
    if pa.types.is_null(t):
        return pa.nulls(len(column), pa.string())
    if pa.types.is_timestamp(t):
        return timestamp_text(column)
    if pa.types.is_duration(t):
        return duration_text(column)
    if is_json_type(t):
        return json_storage(column)
    if is_nested(t):
        return json_text(column)
    if pa.types.is_floating(t):
        return float_text(column)
    return column.cast(pa.string())


def float_text(column: pa.Array) -> pa.Array:
    """Floats as Arrow prints them, with ``NaN``, ``Infinity`` and ``-Infinity`` for non-finite ones."""
    text = column.cast(pa.string())
    if pc.all(pc.fill_null(pc.is_finite(column), True)).as_py():
        return text
    text = pc.if_else(pc.is_nan(column), "NaN", text)
    text = pc.if_else(pc.and_(pc.is_inf(column), pc.greater(column, 0)), "Infinity", text)
    return pc.if_else(pc.and_(pc.is_inf(column), pc.less(column, 0)), "-Infinity", text)
