"""XML: ``<root>`` with one ``<Profile>`` per row, grouped as in the reference sample.

::

    <?xml version="1.0" encoding="UTF-8"?>
    <root>
    <Profile><identity>…</identity><profileIdentities><entry><key>clevertapId</key><value>…</value></entry>…</profileIdentities><device>…</device><commPrefs>…</commPrefs><profileProps>…</profileProps></Profile>
    …
    </root>

one line per profile (no indentation: it would only add bytes).

- ``<identity>`` holds the identity column; the four groups ``profileIdentities``, ``device``,
  ``commPrefs``, ``profileProps`` are always present (empty when no column of the group is selected)
  and hold one ``<entry><key/><value/></entry>`` per output column of the group, in output order,
  keyed by the output name; ``device`` holds one entry per device attribute.
- Values are text by the rules every text format shares (``values.text_column``): lists and maps
  are compact JSON text, the same as in CSV. (The reference shows lists unquoted, ``[a,b]``, which
  is ambiguous as soon as a value holds a comma.) JSON escapes control characters, so those inside
  lists and maps survive as ``\u0001`` and so on.
- A missing value is an empty ``<value/>`` (and a missing identity an empty ``<identity/>``). Like
  the reference, XML does not tell a missing value from an empty string: both read back as "".
- XML 1.0 cannot carry every character. Rather than fail, the writer replaces NUL (U+0000) with
  ``-`` and every other character outside the XML 1.0 ``Char`` production (U+0001 to U+0008, U+000B,
  U+000C, U+000E to U+001F, U+FFFE, U+FFFF) with ``?``; keys get the same treatment. (Lone surrogates
  cannot occur: Arrow strings are valid UTF-8.) Tab, line feed and carriage return are kept; a
  carriage return is written as ``&#13;`` so that parsers do not normalise it to a line feed.
  ``&``, ``<`` and ``>`` are escaped.
- The schema of the files is ``profile-export.xsd`` next to this module (``XSD_PATH``).

Speed: no element objects. Each batch is turned into XML text column by column with Arrow compute
(escape, wrap in constant markup, concatenate one string per profile), then copied out once.
Every file is a complete document: the writer emits the XML declaration and ``<root>`` at the start
of each file and ``</root>`` at its end. A batch whose text would not fit one Arrow string array
(2 GiB) is encoded in halves.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeAlias

import attrs
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import DataError
from ..hookspecs import hookimpl
from ..layout import (
    COMM_PREFS_GROUP,
    DEVICE_GROUP,
    IDENTIFIERS_GROUP,
    IDENTITY_GROUP,
    PROPS_GROUP,
    OutputLayout,
)
from ..textfile import TextWriter
from ..values import is_number_or_boolean, text_column

XSD_PATH = Path(__file__).with_name("profile-export.xsd")

_HEADER = b'<?xml version="1.0" encoding="UTF-8"?>\n<root>\n'
_FOOTER = b"</root>\n"
_ENTRY_GROUPS = (IDENTIFIERS_GROUP, DEVICE_GROUP, COMM_PREFS_GROUP, PROPS_GROUP)

# Characters outside XML 1.0's Char production, NUL excepted (it becomes "-"). RE2 syntax for Arrow.
_INVALID_RE2 = r"[\x01-\x08\x0B\x0C\x0E-\x1F\x{FFFE}\x{FFFF}]"
_INVALID_PY = re.compile("[\x01-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_ESCAPES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("\r", "&#13;"))
# UTF-8 bytes that may belong to a character the escaping changes: controls other than tab and line
# feed, "&", "<", ">", and 0xEF, the lead byte of U+F000-U+FFFF (U+FFFE and U+FFFF among them).
_SPECIAL_BYTES = frozenset([*range(0x00, 0x09), *range(0x0B, 0x20), *b"&<>", 0xEF])
_ORDINARY_BYTES = bytes(b for b in range(256) if b not in _SPECIAL_BYTES)

# Arrow strings have 32-bit offsets: no array may hold more bytes than this. Arrow itself does not
# always check (pyarrow 26's replace_substring silently wraps its offsets around), so the encoder
# checks sizes before each step that could cross the limit and splits the batch when one would.
_MAX_ARRAY_BYTES = 2**31 - 2
_ENTITY_GROWTH = 4  # bytes an escape adds at most, per special byte ("&" -> "&amp;", CR -> "&#13;")

Part: TypeAlias = str | pa.Array  # a constant for every row, or one string per row


class _TooLarge(Exception):
    """A step would make an Arrow string array larger than its 32-bit offsets can address."""


def xml_text(text: str) -> str:
    """``text`` as XML 1.0 character data: invalid characters replaced, markup characters escaped."""
    text = _INVALID_PY.sub("?", text.replace("\x00", "-"))
    for char, entity in _ESCAPES:
        text = text.replace(char, entity)
    return text


def _text_is_plain(t: pa.DataType) -> bool:
    """True for types whose text (numbers, booleans, dates and times) never needs escaping."""
    return is_number_or_boolean(t) or pa.types.is_temporal(t)


def _data_range(text: pa.Array) -> tuple[pa.Buffer | None, int, int]:
    """The data buffer of a string array and the byte range its values occupy in it."""
    _, offsets, data = text.buffers()
    if data is None or len(text) == 0:
        return None, 0, 0
    bounds = memoryview(offsets).cast("i")
    return data, bounds[text.offset], bounds[text.offset + len(text)]


def _byte_size(text: pa.Array) -> int:
    _, start, end = _data_range(text)
    return end - start


def _special_bytes(text: pa.Array) -> int:
    """How many bytes of the string array's values may belong to a character the escaping changes."""
    data, start, end = _data_range(text)
    # bytes.translate deletes every ordinary byte at C speed: what is left are the special bytes.
    return 0 if data is None else len(data[start:end].to_pybytes().translate(None, _ORDINARY_BYTES))


def xml_text_column(column: pa.Array) -> pa.Array:
    """``column`` as XML character data: a string array, nulls kept."""
    text = text_column(column)
    if isinstance(text, pa.ChunkedArray):  # more text than one array holds
        raise _TooLarge
    if text.type != pa.string():
        text = text.cast(pa.string())
    if _text_is_plain(column.type):
        return text
    special = _special_bytes(text)
    if not special:
        return text
    if _byte_size(text) + _ENTITY_GROWTH * special > _MAX_ARRAY_BYTES:
        raise _TooLarge
    text = pc.replace_substring(text, "\x00", "-")
    text = pc.replace_substring_regex(text, _INVALID_RE2, "?")
    for char, entity in _ESCAPES:
        text = pc.replace_substring(text, char, entity)
    return text


def _element(name: str, text: pa.Array, prefix: str = "", suffix: str = "") -> list[Part]:
    """``prefix<name>text</name>suffix`` per row, with ``<name/>`` where the value is missing."""
    if text.null_count == 0:  # the final join concatenates: no copy here
        return [f"{prefix}<{name}>", text, f"</{name}>{suffix}"]
    if text.null_count == len(text):
        return [f"{prefix}<{name}/>{suffix}"]
    markup = len(f"{prefix}<{name}></{name}>{suffix}".encode())
    if _byte_size(text) + markup * len(text) > _MAX_ARRAY_BYTES:
        raise _TooLarge
    element = pc.binary_join_element_wise(f"{prefix}<{name}>", text, f"</{name}>{suffix}", "")
    return [pc.fill_null(element, f"{prefix}<{name}/>{suffix}")]


@attrs.frozen
class _Entry:
    group: str
    key: str  # escaped
    column: int  # index in the batch
    field: int | None  # index of the device attribute in the struct column


def _entries(layout: OutputLayout) -> list[_Entry]:
    entries = []
    for group in _ENTRY_GROUPS:
        for i, column in enumerate(layout.columns):
            if column.group != group:
                continue
            if group == DEVICE_GROUP and pa.types.is_struct(column.type):
                entries += [_Entry(group, xml_text(f.name), i, j) for j, f in enumerate(column.type)]
            else:
                entries.append(_Entry(group, xml_text(column.name), i, None))
    return entries


class XmlEncoder:
    def __init__(self, layout: OutputLayout) -> None:
        self._layout = layout
        names = [c.name for c in layout.columns if c.group == IDENTITY_GROUP]
        self._identity = layout.names.index(names[0]) if names else None
        self._entries = _entries(layout)

    def header(self) -> bytes:
        return _HEADER

    def footer(self) -> bytes:
        return _FOOTER

    def encode(self, batch: pa.RecordBatch) -> bytes:
        if batch.num_rows == 0:
            return b""
        try:
            return self._encode(batch)
        except (_TooLarge, pa.ArrowCapacityError) as exc:
            if batch.num_rows == 1:
                raise DataError("a profile is too large for the XML format: more than 2 GiB of text") from exc
        half = batch.num_rows // 2
        return self.encode(batch.slice(0, half)) + self.encode(batch.slice(half))

    def _encode(self, batch: pa.RecordBatch) -> bytes:
        parts: list[Part] = ["<Profile>"]
        if self._identity is None:
            parts.append("<identity/>")
        else:
            parts += _element("identity", xml_text_column(batch.column(self._identity)))
        for group in _ENTRY_GROUPS:
            entries = [e for e in self._entries if e.group == group]
            if not entries:
                parts.append(f"<{group}/>")
                continue
            parts.append(f"<{group}>")
            for e in entries:
                values = batch.column(e.column)
                if e.field is not None:
                    # struct_field, unlike StructArray.field, keeps the nulls of a missing device.
                    values = pc.struct_field(values, [e.field])
                parts += _element("value", xml_text_column(values), f"<entry><key>{e.key}</key>", "</entry>")
            parts.append(f"</{group}>")
        parts.append("</Profile>\n")
        return _concatenate(_merge_constants(parts), batch.num_rows)


def _merge_constants(parts: list[Part]) -> list[Part]:
    merged: list[Part] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        else:
            merged.append(part)
    return merged


def _concatenate(parts: list[Part], num_rows: int) -> bytes:
    """The rows (each the concatenation of ``parts``) one after the other, as UTF-8 bytes."""
    if all(isinstance(p, str) for p in parts):
        return "".join(str(p) for p in parts).encode("utf-8") * num_rows
    size = sum(len(p.encode("utf-8")) * num_rows if isinstance(p, str) else _byte_size(p) for p in parts)
    if size > _MAX_ARRAY_BYTES:
        raise _TooLarge
    rows = pc.binary_join_element_wise(*parts, "")
    # The rows sit back to back in the array's data buffer: copy that range out once.
    data, start, end = _data_range(rows)
    return data[start:end].to_pybytes() if data is not None else b""


class XmlWriter(TextWriter):
    name = "xml"
    content_type = "application/xml"
    suffix = "xml"

    def encoder(self, layout: OutputLayout, options: Mapping[str, Any]) -> XmlEncoder:
        return XmlEncoder(layout)


@hookimpl
def register_writers(register: Any) -> None:
    register(XmlWriter())
