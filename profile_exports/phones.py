"""Phone numbers: how many are not E.164, and (optionally) rewriting them as E.164.

The reference asks for phones in E.164 (``+15551234567``): anything else fails validation
downstream. Every run counts the phone values that are not E.164 (``ExportResult.phones_not_e164``)
whatever the setting. With ``[properties] phone_format = "e164"`` (extra ``[phones]``, which
installs Google's ``phonenumbers``), each value is parsed, with ``phone_region`` for numbers written
without a country code, and written in E.164; a value that is not a possible number is kept as it
was (and counted). Parsing is done once per distinct value.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .errors import ConfigError, MissingExtraError

E164 = r"^\+[1-9][0-9]{1,14}$"


def not_e164(column: pa.Array) -> int:
    """Phone values (not missing, not empty) that are not E.164."""
    if not len(column) or column.null_count == len(column):
        return 0
    return int(pc.sum(not_e164_rows(column).cast(pa.int64())).as_py() or 0)


def not_e164_rows(column: pa.Array) -> pa.BooleanArray:
    """True where a row's phone value is given (not missing, not empty) and not E.164; no nulls."""
    if not len(column) or column.null_count == len(column):
        return pa.array(np.zeros(len(column), dtype=bool))
    text = column if pa.types.is_string(column.type) else column.cast(pa.string())
    given = pc.and_(pc.is_valid(text), pc.not_equal(text, ""))
    wrong = pc.and_(given, pc.invert(pc.match_substring_regex(text, E164)))
    return pc.fill_null(wrong, False)


def phonenumbers_module() -> Any:
    try:
        import phonenumbers
    except ImportError:
        raise MissingExtraError('properties.phone_format = "e164"', "phones", "phonenumbers") from None
    return phonenumbers


def check_region(region: str | None) -> None:
    """A ``ConfigError`` for a region ``phonenumbers`` does not know."""
    if region is None:
        return
    if region not in phonenumbers_module().SUPPORTED_REGIONS:
        raise ConfigError("properties.phone_region", f"{region!r} is not a region code like 'US', 'GB' or 'IN'")


def to_e164(column: pa.Array, region: str | None) -> pa.Array:
    """Each phone in E.164 where it parses as a possible number; other values as they were."""
    if not len(column) or column.null_count == len(column):
        return column
    phonenumbers = phonenumbers_module()
    text = column if pa.types.is_string(column.type) else column.cast(pa.string())
    encoded = pc.dictionary_encode(text)
    formatted = []
    for value in encoded.dictionary.to_pylist():
        try:
            number = phonenumbers.parse(value, region)
        except phonenumbers.NumberParseException:
            formatted.append(value)
            continue
        if phonenumbers.is_possible_number(number):
            formatted.append(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
        else:
            formatted.append(value)
    return pc.take(pa.array(formatted, pa.string()), encoded.indices)
