"""JSON Lines: one profile object per line, every selected key present (missing values are null).

Lists are arrays, ``device`` and ``subscriptionGroups`` objects, timestamps and durations ISO 8601
text, JSON-text mappings their JSON. NaN and the infinities are ``null`` (engines then type the
column as numbers) unless the ``json_non_finite`` option is ``"string"``.
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
from ..values import NON_FINITE_RULES


class JsonLinesEncoder:
    def __init__(self, layout: OutputLayout, *, non_finite: str = "null") -> None:
        if non_finite not in NON_FINITE_RULES:
            raise ValueError(f"non_finite must be one of {NON_FINITE_RULES}, not {non_finite!r}")
        self._names = list(layout.names)
        self._non_finite = non_finite

    def header(self) -> bytes:
        return b""

    def encode(self, batch: pa.RecordBatch) -> bytes:
        # Whole columns to JSON text with Arrow compute; the lines' bytes are the array's data buffer.
        lines = json_objects(batch, self._names, closing="}\n", non_finite=self._non_finite)
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
        return JsonLinesEncoder(layout, non_finite=self.non_finite(options))

    def non_finite(self, options: Mapping[str, Any]) -> str:
        """How the files write NaN and the infinities: ``"null"`` (the default) or ``"string"``."""
        return str(options.get("json_non_finite") or "null")

    def nulls_non_finite(self, options: Mapping[str, Any]) -> bool:
        """True when non-finite floats become null: the run counts them (``ExportResult.non_finite_as_null``)."""
        return self.non_finite(options) == "null"


@hookimpl
def register_writers(register: Any) -> None:
    register(JsonLinesWriter())
