"""JSON Lines: one profile object per line, every selected key present (missing values are null).

Lists are arrays, ``device`` and ``subscriptionGroups`` objects, timestamps ISO 8601 text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from ..hookspecs import hookimpl
from ..json_text import json_objects
from ..layout import OutputLayout
from ..textfile import TextWriter


class JsonLinesEncoder:
    def __init__(self, layout: OutputLayout) -> None:
        self._names = list(layout.names)

    def header(self) -> bytes:
        return b""

    def encode(self, batch: pa.RecordBatch) -> bytes:
        # Whole columns to JSON text with Arrow compute; the lines' bytes are the array's data buffer.
        lines = json_objects(batch, self._names, closing="}\n")
        if not len(lines):
            return b""
        _, offsets, data = lines.buffers()
        bounds = np.frombuffer(offsets, dtype=np.int32, count=len(lines) + 1, offset=4 * lines.offset)
        return data[int(bounds[0]) : int(bounds[-1])].to_pybytes()

    def footer(self) -> bytes:
        return b""


class JsonLinesWriter(TextWriter):
    name = "json"
    content_type = "application/x-ndjson"
    suffix = "json"

    def encoder(self, layout: OutputLayout, options: Mapping[str, Any]) -> JsonLinesEncoder:
        return JsonLinesEncoder(layout)


@hookimpl
def register_writers(register: Any) -> None:
    register(JsonLinesWriter())
