"""Independent readers for every format, and decoding their values back to typed Python values.

CSV is read with the stdlib ``csv`` module, JSON with ``json``, XML with ``lxml``, Parquet with
``pyarrow.parquet``; gzip with the stdlib. Text values are decoded by the column's Arrow type (taken
from a flat Parquet export of the same data), so every format can be compared value by value.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from lxml import etree

from profile_exports.spreadsheet import original_text


def raw_bytes(path: str | Path) -> bytes:
    data = Path(path).read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


csv.field_size_limit(1 << 30)  # exported cells may be megabytes long


def read_csv_file(path: str | Path) -> list[dict[str, Any]]:
    """Rows as {column: text}, with the apostrophes spreadsheet safety added taken off again (the
    documented reader rule; ``tests/test_spreadsheet.py`` reads the cells as written)."""
    reader = csv.reader(io.StringIO(raw_bytes(path).decode("utf-8"), newline=""))
    header = [original_text(n) for n in next(reader)]
    return [dict(zip(header, map(original_text, row), strict=True)) for row in reader]


def read_json_file(path: str | Path) -> list[dict[str, Any]]:
    # split on "\n" only: str.splitlines() also splits on U+2028, U+0085, ... inside values
    return [json.loads(line) for line in raw_bytes(path).decode("utf-8").split("\n") if line]


def read_xml_file(path: str | Path) -> list[dict[str, Any]]:
    """Rows as {column: text}; device attributes come back as a dict of texts."""
    root = etree.fromstring(raw_bytes(path), etree.XMLParser(huge_tree=True))  # text nodes over 10 MB
    rows = []
    for profile in root.iterchildren("Profile"):
        row: dict[str, Any] = {"identity": profile.findtext("identity") or ""}
        for group in ("profileIdentities", "device", "commPrefs", "profileProps"):
            entries = {e.findtext("key"): e.findtext("value") or "" for e in profile.find(group)}
            if group == "device":
                if entries:
                    row["device"] = entries
            else:
                row.update(entries)
        rows.append(row)
    return rows


def read_parquet_file(path: str | Path) -> list[dict[str, Any]]:
    return [_plain(r) for r in pq.read_table(path).to_pylist()]


READERS = {"csv": read_csv_file, "json": read_json_file, "xml": read_xml_file, "parquet": read_parquet_file}


def read_rows(result: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for f in result.files:
        rows += READERS[result.format](f.url)
    return rows


def _plain(value: Any) -> Any:
    """Arrow's Python values with maps (lists of pairs) as dicts."""
    if isinstance(value, list):
        if value and all(isinstance(v, tuple) and len(v) == 2 for v in value):
            return {k: _plain(v) for k, v in value}
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def decode(value: Any, type_: pa.DataType, *, text: bool) -> Any:
    """A value read from a file back to Python by its column type.

    ``text``: the value came from CSV or XML (everything is text there, and a missing value is an
    empty string), or from JSON nested inside text.
    """
    if value is None:
        return None
    if text and value == "" and not pa.types.is_string(type_):
        return None
    if pa.types.is_string(type_) or pa.types.is_large_string(type_):
        return value
    if pa.types.is_boolean(type_):
        return value == "true" if isinstance(value, str) else value
    if pa.types.is_integer(type_):
        return int(value)
    if pa.types.is_floating(type_):
        return NON_FINITE[value] if isinstance(value, str) and value in NON_FINITE else float(value)
    if pa.types.is_timestamp(type_):
        if isinstance(value, datetime):
            return value
        parsed = datetime.fromisoformat(value)
        return parsed
    if pa.types.is_date(type_):
        return value if isinstance(value, date) else date.fromisoformat(value)
    if pa.types.is_list(type_) or pa.types.is_large_list(type_):
        items = json.loads(value) if isinstance(value, str) else value
        return [decode(v, type_.value_type, text=False) for v in items]
    if pa.types.is_map(type_):
        items = json.loads(value) if isinstance(value, str) else value
        return {k: decode(v, type_.item_type, text=False) for k, v in items.items()}
    if pa.types.is_struct(type_):
        items = json.loads(value) if isinstance(value, str) else value
        return {f.name: decode(items.get(f.name), f.type, text=text and not isinstance(value, str)) for f in type_}
    raise AssertionError(f"no decoder for {type_}")


def decode_rows(rows: list[dict[str, Any]], schema: pa.Schema, fmt: str) -> list[dict[str, Any]]:
    text = fmt in ("csv", "xml")
    out = []
    for row in rows:
        assert list(row) == schema.names, (fmt, list(row), schema.names)
        decoded = {}
        for f in schema:
            value = row[f.name]
            if fmt == "parquet":
                decoded[f.name] = value
            elif text and f.name == "device" and isinstance(value, dict):
                decoded[f.name] = {k: decode(v, f.type.field(k).type, text=True) for k, v in value.items()}
            else:
                decoded[f.name] = decode(value, f.type, text=text)
        out.append(decoded)
    return out


def unnest(row: dict[str, Any]) -> dict[str, Any]:
    """A nested-layout Parquet row as the flat row it groups."""
    flat = {"identity": row["identity"]}
    flat.update(row.get("profileIdentities") or {})
    if "device" in row:
        flat["device"] = row["device"]
    flat.update(row.get("commPrefs") or {})
    flat.update(row.get("profileProps") or {})
    return flat


def same(a: Any, b: Any, *, blank_is_null: bool = False) -> bool:
    """Equality with NaN equal to NaN; optionally a missing value equal to an empty string."""
    if blank_is_null and a in (None, "") and b in (None, ""):
        return True
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k], blank_is_null=blank_is_null) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y, blank_is_null=blank_is_null) for x, y in zip(a, b, strict=True))
    return a == b
