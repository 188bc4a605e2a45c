"""Identifier columns: ``identity``, ``all_identities``, ``clevertapId``, ``clevertapIds``.

Each selected identifier becomes a list of (row, value) pairs; "fallback" keeps each row's first
pair in priority order, "all" keeps every pair grouped by row. Empty strings count as missing.
Everything is numpy/Arrow over whole columns; no Python loop per profile.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..canonical import EMAIL, IDENTITY, PHONE, PROFILE_ID, PROFILE_IDS, STRING_LIST, property_column
from ..config import ACCOUNT_IDENTITIES, IdentifierConfig
from ..values import text_column

IDENTIFIER_COLUMNS = ("identity", "all_identities", "clevertapId", "clevertapIds")
_CORE_SOURCE = {"Identity": IDENTITY, "Email": EMAIL, "Phone": PHONE}


def _identifier_column(batch: pa.RecordBatch, name: str) -> pa.Array | None:
    """The column an identifier is read from.

    Email and Phone are account identities and properties at once: the profile's own field first,
    the property of that name where the field is missing (a flat table's ``Email`` column).
    Any other name is a property, or a core field of that name (``email``).
    """
    names = batch.schema.names
    if name == "Identity":
        return batch.column(IDENTITY) if IDENTITY in names else None
    candidates = [_CORE_SOURCE[name], property_column(name)] if name in _CORE_SOURCE else [property_column(name), name]
    found = [batch.column(c) for c in candidates if c in names]
    if not found:
        return None
    column = text_column(found[0])
    for other in found[1:]:
        # An empty value is a missing one (as between identifiers): the next source stands in for it.
        present = pc.if_else(pc.equal(column, ""), pa.scalar(None, column.type), column)
        column = pc.coalesce(present, text_column(other))
    return column


def _pairs(batch: pa.RecordBatch, name: str) -> tuple[np.ndarray, pa.Array]:
    """Row numbers and non-missing text values of one identifier."""
    column = _identifier_column(batch, name)
    if column is None:
        return np.empty(0, np.int64), pa.array([], pa.string())
    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        # list_flatten skips null lists even when they own child slots; lengths of 0 match that.
        lengths = pc.fill_null(pc.list_value_length(column), 0).to_numpy(zero_copy_only=False)
        rows = np.repeat(np.arange(len(column), dtype=np.int64), lengths)
        values = text_column(pc.list_flatten(column))
    else:
        rows = np.arange(len(column), dtype=np.int64)
        values = text_column(column)
    keep = pc.fill_null(pc.not_equal(values, ""), False)
    keep_np = keep.to_numpy(zero_copy_only=False)
    return rows[keep_np], values.filter(keep)


def _first_of(batch: pa.RecordBatch, name: str) -> pa.Array | None:
    """Each row's first non-missing text value of one identifier (null where it has none)."""
    column = _identifier_column(batch, name)
    if column is None:
        return None
    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        rows, values = _pairs(batch, name)
        # Pairs come in row order, so a row's first pair is where the row number changes.
        starts = np.flatnonzero(np.diff(rows, prepend=-1) != 0)
        take = np.full(len(column), -1, dtype=np.int64)
        take[rows[starts]] = starts
        return values.take(pa.array(take, mask=take < 0))
    values = text_column(column)
    return pc.if_else(pc.equal(values, ""), pa.scalar(None, values.type), values)


def _fallback(batch: pa.RecordBatch, names: tuple[str, ...]) -> pa.Array:
    """The first identifier a row has, in priority order: a coalesce, not a sort of every pair."""
    found = [column for column in (_first_of(batch, name) for name in names) if column is not None]
    if not found:
        return pa.nulls(batch.num_rows, pa.string())
    return found[0] if len(found) == 1 else pc.coalesce(*found)


def _combined(batch: pa.RecordBatch, names: tuple[str, ...]) -> tuple[np.ndarray, pa.Array]:
    rows, values = zip(*(_pairs(batch, n) for n in names), strict=True)
    return np.concatenate(rows), pa.concat_arrays(list(values))


def _all_per_row(n: int, rows: np.ndarray, values: pa.Array) -> pa.Array:
    order = np.argsort(rows, kind="stable")  # stable: priority order survives within a row
    counts = np.bincount(rows, minlength=n)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    return pa.ListArray.from_arrays(
        pa.array(offsets), values.take(pa.array(order)), type=STRING_LIST, mask=pa.array(counts == 0)
    )


def resolve_identifiers(batch: pa.RecordBatch, settings: IdentifierConfig) -> dict[str, pa.Array]:
    """The identifier output columns for ``batch`` (a conformed canonical batch), in output order."""
    n = batch.num_rows
    out: dict[str, pa.Array] = {}
    if settings.values == "fallback":
        out["identity"] = _fallback(batch, settings.resolved)
    else:
        out["identity"] = _all_per_row(n, *_combined(batch, settings.resolved))
    if settings.all_identities:
        out["all_identities"] = _all_per_row(n, *_combined(batch, ACCOUNT_IDENTITIES))
    ids = batch.column(PROFILE_ID)
    if settings.clevertap_id:
        out["clevertapId"] = ids
    if settings.clevertap_ids:
        index = batch.schema.get_field_index(PROFILE_IDS)
        own = pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32)), ids)
        if index < 0:
            out["clevertapIds"] = own
        else:
            history = batch.column(index)
            out["clevertapIds"] = pc.if_else(pc.is_null(history), own, history)
    return out
