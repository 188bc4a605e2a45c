"""The built-in transforms: ``hash`` (salted SHA-256) and ``drop``.

``hash`` turns each value into the lowercase hex SHA-256 of the salt's UTF-8 bytes followed by the
value's UTF-8 text: ``sha256(salt + value)``, which a warehouse can recompute to join on
(``SHA2(CONCAT(salt, value), 256)``). Text is hashed as it is; other values as their text in the
CSV form (numbers as printed, timestamps ISO 8601, nested values compact JSON). Lists of text keep
their shape, each item hashed. A missing value stays missing (hashing it would make it look like a
value); an empty string is a value and is hashed. The salt keeps anyone without it from hashing
guessed emails or phone numbers to find them in the export.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .hookspecs import hookimpl
from .transforms import TransformContext
from .values import text_column


def _text_list(type_: pa.DataType) -> bool:
    if not (pa.types.is_list(type_) or pa.types.is_large_list(type_)):
        return False
    value = type_.value_type
    return pa.types.is_string(value) or pa.types.is_large_string(value)


def _hashed(text: pa.Array, salt: bytes) -> pa.Array:
    """Salted SHA-256 of each text value, computed once per distinct value."""
    encoded = pc.dictionary_encode(text)
    base = hashlib.sha256(salt)
    digests = []
    for value in encoded.dictionary.to_pylist():
        h = base.copy()
        h.update(value.encode("utf-8"))
        digests.append(h.hexdigest())
    return pc.take(pa.array(digests, pa.string()), encoded.indices)


class HashTransform:
    name = "hash"

    def output_type(self, type_: pa.DataType) -> pa.DataType:
        return pa.list_(pa.string()) if _text_list(type_) else pa.string()

    def apply(self, column: pa.Array, context: TransformContext) -> pa.Array:
        if context.salt is None:  # the config requires one; a plugin calling this directly might not
            raise ValueError("hash needs a salt")
        salt = context.salt.encode("utf-8")
        if _text_list(column.type):
            items = _hashed(column.values.cast(pa.string()), salt)
            mask = column.is_null() if column.null_count else None
            return pa.ListArray.from_arrays(column.offsets, items, mask=mask)
        return _hashed(text_column(column), salt)


class DropTransform:
    name = "drop"

    def output_type(self, type_: pa.DataType) -> None:
        return None

    def apply(self, column: pa.Array, context: TransformContext) -> pa.Array:
        raise AssertionError("a dropped column is never transformed")


@hookimpl
def register_transforms(register: Any) -> None:
    register(HashTransform())
    register(DropTransform())
