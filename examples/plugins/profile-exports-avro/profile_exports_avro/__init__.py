"""An Avro writer for profile-exports: one record per profile, in object container files.

The whole plugin is this module. ``register_writers`` is the hook profile-exports calls (found
through the ``profile_exports`` entry point in ``pyproject.toml``); ``AvroWriter`` describes the
format, and ``AvroBatchWriter`` turns the projected Arrow batches of one partition into files no
bigger than the size cap.

How a file is cut at the cap: each chunk of rows is encoded as a complete Avro block first (with
the file's sync marker), so its size is known before it is written. A block that would push the
file over the cap goes to the next file; a block that alone would not fit is split in half.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Mapping
from typing import Any

import fastavro
import pyarrow as pa

from profile_exports.hookspecs import hookimpl
from profile_exports.layout import OutputLayout
from profile_exports.results import CommittedFile, commit_file
from profile_exports.values import json_text, text_column

__version__ = "0.1.0"

CHUNK_ROWS = 4096  # rows per Avro block (and per size check)
_NOT_AVRO_NAME = re.compile(r"[^A-Za-z0-9_]")


def avro_names(names: tuple[str, ...]) -> list[str]:
    """Avro field names for the export's columns: ``[A-Za-z_][A-Za-z0-9_]*``, unique."""
    out: list[str] = []
    for name in names:
        base = _NOT_AVRO_NAME.sub("_", name) or "_"
        if base[0].isdigit():
            base = "_" + base
        candidate, n = base, 2
        while candidate in out:
            candidate, n = f"{base}_{n}", n + 1
        out.append(candidate)
    return out


def avro_type(arrow_type: pa.DataType) -> Any:
    """The Avro type of a column's values (before ``null`` is added to make it optional)."""
    if pa.types.is_dictionary(arrow_type):
        return avro_type(arrow_type.value_type)
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    if pa.types.is_integer(arrow_type) and not pa.types.is_uint64(arrow_type):
        return "long"
    if pa.types.is_floating(arrow_type):
        return "double"
    if pa.types.is_timestamp(arrow_type):
        return {"type": "long", "logicalType": "timestamp-micros"}
    if pa.types.is_date32(arrow_type):
        return {"type": "int", "logicalType": "date"}
    return "string"  # text, and lists, mappings and groups as JSON text


def avro_column(column: pa.Array) -> pa.Array:
    """A column with values fastavro writes as ``avro_type`` says."""
    t = column.type
    if pa.types.is_dictionary(t):
        return avro_column(column.cast(t.value_type))
    if pa.types.is_nested(t):
        return json_text(column)
    if avro_type(t) == "string":
        return text_column(column)
    return column


def avro_schema(layout: OutputLayout) -> dict[str, Any]:
    fields = [
        {"name": avro_name, "type": ["null", avro_type(column.type)], "default": None, "sourceName": column.name}
        for avro_name, column in zip(avro_names(layout.names), layout.columns, strict=True)
    ]
    return {"type": "record", "name": "Profile", "namespace": "profile_exports", "fields": fields}


class AvroBatchWriter:
    def __init__(
        self, layout: OutputLayout, codec: str, max_file_bytes: int, new_file: Any, options: Mapping[str, Any]
    ) -> None:
        self._names = avro_names(layout.names)
        self._schema = fastavro.parse_schema(avro_schema(layout))
        self._codec = codec
        self._cap = max_file_bytes
        self._new_file = new_file
        self._marker = os.urandom(16)
        self._header = self._encode([])  # a file's bytes before its first block
        self._file: Any = None
        self._rows = 0
        self._part = 0
        self._committed: list[CommittedFile] = []

    def _encode(self, records: list[dict[str, Any]]) -> bytes:
        out = io.BytesIO()
        # One block for all the records (sync_interval above any chunk), with this writer's marker.
        fastavro.writer(out, self._schema, records, codec=self._codec, sync_marker=self._marker, sync_interval=1 << 40)
        return out.getvalue()

    def _block(self, rows: pa.RecordBatch) -> bytes:
        columns = [avro_column(c) for c in rows.columns]
        records = pa.RecordBatch.from_arrays(columns, names=self._names).to_pylist()
        return self._encode(records)[len(self._header) :]

    def write(self, batch: pa.RecordBatch) -> None:
        for start in range(0, batch.num_rows, CHUNK_ROWS):
            self._place(batch.slice(start, CHUNK_ROWS))

    def _place(self, rows: pa.RecordBatch) -> None:
        block = self._block(rows)
        if self._file is not None and self._rows and self._file.bytes_written + len(block) > self._cap:
            self._finish_file()
        if len(self._header) + len(block) > self._cap and rows.num_rows > 1:
            half = rows.num_rows // 2  # alone it would not fit in a file: smaller blocks
            self._place(rows.slice(0, half))
            self._place(rows.slice(half))
            return
        self._start_file_if_needed()
        self._file.write(block)
        self._rows += rows.num_rows

    def _start_file_if_needed(self) -> None:
        if self._file is None:
            self._file = self._new_file(self._part)
            self._file.write(self._header)

    def _finish_file(self) -> None:
        self._committed.append(commit_file(self._file, rows=self._rows, part=self._part))
        self._file, self._rows, self._part = None, 0, self._part + 1

    def close(self) -> list[CommittedFile]:
        if self._file is None and not self._committed:
            self._start_file_if_needed()  # an export of no profiles is one file with the schema
        if self._file is not None:
            self._finish_file()
        return self._committed

    def abort(self) -> None:
        if self._file is not None:
            self._file.abort()
            self._file = None


class AvroWriter:
    name = "avro"
    compressions = ("deflate", "null")  # Avro codecs; the default first
    content_type = "application/avro"

    def extension(self, compression: str) -> str:
        return "avro"  # the codec is recorded inside the file

    def content_encoding(self, compression: str) -> str | None:
        return None

    def open(
        self,
        *,
        layout: OutputLayout,
        compression: str,
        max_file_bytes: int,
        new_file: Any,
        options: Mapping[str, Any],
    ) -> AvroBatchWriter:
        return AvroBatchWriter(layout, compression, max_file_bytes, new_file, options)


@hookimpl
def register_writers(register: Any) -> None:
    register(AvroWriter())
