"""JSON Lines: one profile object per line, every selected key present (missing values are null).

Lists are arrays, ``device`` and ``subscriptionGroups`` objects, timestamps ISO 8601 text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
import pyarrow as pa

from ..hookspecs import hookimpl
from ..layout import OutputLayout
from ..textfile import TextWriter
from ..values import python_values


class JsonLinesEncoder:
    def __init__(self, layout: OutputLayout) -> None:
        self._names = list(layout.names)

    def header(self) -> bytes:
        return b""

    def encode(self, batch: pa.RecordBatch) -> bytes:
        columns = [python_values(c) for c in batch.columns]
        names = self._names
        dumps = orjson.dumps
        lines = [dumps(dict(zip(names, row, strict=True))) for row in zip(*columns, strict=True)]
        lines.append(b"")
        return b"\n".join(lines)

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
