"""The canonical profile shape, and turning whatever a source yields into it.

Sources yield flat tables (a ``users`` table), the nested canonical shape (``device``,
``comm_prefs`` and ``properties`` as structs) or lists of dicts. All of them become one *flat*
canonical record batch: the core fields below under their own names, and every device attribute,
communication preference and user property as its own column under a prefix
(``device.token``, ``comm_prefs.MSG-email``, ``properties.Age``). Flat columns keep every later
step (type unification, projection, spooling) a plain Arrow column operation.

Python values (dicts, JSON Lines, object columns of DataFrames) are typed here (``python_array``), not
by Arrow's inference: Arrow makes a struct of the union of all keys from dicts, so ``{"a": 1}`` and
``{}`` would come out as ``{"a": 1, "b": null}`` and ``{"a": null, "b": null}``. A mapping keeps exactly
its own keys: mappings whose values share a type are an Arrow ``map<string, T>``, the others JSON text
(the ``arrow.json`` extension type). Structs declared by an Arrow or Parquet source stay structs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Any

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .errors import ConfigError, DataError
from .values import JSON_TEXT, dumps, duration_text, is_json_type, iso_duration, json_storage, json_text

PROFILE_ID = "profile_id"
PROFILE_IDS = "profile_ids"
IDENTITY = "identity"
EMAIL = "email"
PHONE = "phone"
SUBSCRIPTION_GROUPS = "subscription_groups"
UPDATED_AT = "updated_at"
DEVICE = "device"
COMM_PREFS = "comm_prefs"
PROPERTIES = "properties"

COMM_PREF_NAMES = ("MSG-push", "MSG-push-all", "MSG-email", "MSG-sms", "MSG-whatsapp")
GROUPS = (DEVICE, COMM_PREFS, PROPERTIES)
GROUP_PREFIXES = tuple(f"{g}." for g in GROUPS)

STRING_LIST = pa.list_(pa.string())
GROUP_MAP = pa.map_(pa.string(), pa.string())

CORE_TYPES: dict[str, pa.DataType] = {
    PROFILE_ID: pa.string(),
    PROFILE_IDS: STRING_LIST,
    IDENTITY: STRING_LIST,
    EMAIL: pa.string(),
    PHONE: pa.string(),
    SUBSCRIPTION_GROUPS: GROUP_MAP,
    UPDATED_AT: pa.timestamp("us", tz="UTC"),
}
CANONICAL_TARGETS = (*CORE_TYPES, *GROUPS)

# Names a flat table may use for canonical fields without a mapping (our own output read back in).
ALIASES = {
    "Identity": IDENTITY,
    "clevertapId": PROFILE_ID,
    "clevertapIds": PROFILE_IDS,
    "subscriptionGroups": SUBSCRIPTION_GROUPS,
    **{name: f"{COMM_PREFS}.{name}" for name in COMM_PREF_NAMES},
}


# Arrow's errors for values it cannot convert or cast (not its I/O or memory errors).
ARROW_CONVERSION_ERRORS: tuple[type[Exception], ...] = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError)
_CONVERSION_ADVICE = "Give the column one type at the source (cast it, or turn its values to text), or leave it out."


def property_column(name: str) -> str:
    return f"{PROPERTIES}.{name}"


def group_of(column: str) -> tuple[str, str] | None:
    """``("properties", "Age")`` for ``properties.Age``; None for a core column."""
    for group in GROUPS:
        if column.startswith(group) and column[len(group) : len(group) + 1] == ".":
            return group, column[len(group) + 1 :]
    return None


def validate_mapping(mapping: Mapping[str, str], field: str = "source.mapping") -> dict[str, str]:
    """Check a ``{canonical target: source column}`` mapping and invert it."""
    inverse: dict[str, str] = {}
    for target, column in mapping.items():
        if not isinstance(column, str) or not column:
            raise ConfigError(f"{field}.{target}", "must be the name of a column of the source")
        if target not in CANONICAL_TARGETS and group_of(target) is None:
            raise ConfigError(
                f"{field}.{target}",
                f"unknown canonical field; use one of {', '.join(CANONICAL_TARGETS)}, "
                "or 'device.<attr>', 'comm_prefs.<name>', 'properties.<name>'",
            )
        if column in inverse:
            raise ConfigError(f"{field}.{target}", f"column {column!r} is already mapped to {inverse[column]!r}")
        inverse[column] = target
    return inverse


def _target(name: str, inverse: Mapping[str, str]) -> str:
    target = inverse.get(name)
    if target is not None:
        return target
    if name in CANONICAL_TARGETS or group_of(name) is not None:
        return name
    return ALIASES.get(name, property_column(name))


@attrs.frozen
class Rejected:
    index: int  # record number within the partition
    reason: str


@attrs.define
class Canonicalizer:
    """Turns raw source batches of one partition into flat canonical batches.

    Keeps the running record number so errors and rejections name the record in the partition.
    """

    mapping: Mapping[str, str] = attrs.field(factory=dict)
    skip_bad_records: bool = False
    where: str = "source"
    values_as_text: dict[str, int] = attrs.field(factory=dict)
    _inverse: dict[str, str] = attrs.field(init=False)
    _records_seen: int = attrs.field(init=False, default=0)

    def __attrs_post_init__(self) -> None:
        self._inverse = validate_mapping(self.mapping)

    def convert(self, raw: Any) -> tuple[pa.RecordBatch, list[Rejected]]:
        first = self._records_seen
        try:
            if isinstance(raw, pa.RecordBatch):
                batch, rejected = self._from_arrow(raw, first)
                self._records_seen += raw.num_rows
            else:
                records = list(raw)
                batch, rejected = self._from_records(records, first)
                self._records_seen += len(records)
        except ARROW_CONVERSION_ERRORS as exc:
            raise DataError(_conversion_problem(self.where, exc)) from exc
        return batch, rejected

    # -- records (dicts) ---------------------------------------------------------------------

    def _from_records(self, records: Sequence[Any], first: int) -> tuple[pa.RecordBatch, list[Rejected]]:
        rejected: list[Rejected] = []
        good: list[Mapping[str, Any]] = []
        for offset, record in enumerate(records):
            reason = self._record_problem(record)
            if reason is None:
                good.append(record)
                continue
            self._reject_or_raise(first + offset, reason)
            rejected.append(Rejected(first + offset, reason))

        n = len(good)
        columns: dict[str, list[Any]] = {}

        def put(name: str, row: int, value: Any) -> None:
            values = columns.get(name)
            if values is None:
                values = columns[name] = [None] * n
            values[row] = value

        inverse = self._inverse
        for row, record in enumerate(good):
            for key, value in record.items():
                target = _target(key, inverse)
                if target in GROUPS:
                    if value is not None:
                        for sub, sub_value in value.items():
                            put(f"{target}.{sub}", row, sub_value)
                else:
                    put(target, row, value)

        names, arrays = [], []
        for name, values in columns.items():
            names.append(name)
            arrays.append(self._records_column(name, values))
        if not names:
            return pa.RecordBatch.from_arrays([pa.nulls(n, pa.string())], names=[PROFILE_ID]), rejected
        return self._normalise(pa.RecordBatch.from_arrays(arrays, names=names), first, rejected)

    def _record_problem(self, record: Any) -> str | None:
        if not isinstance(record, Mapping):
            return f"is a {type(record).__name__}, not a mapping of fields"
        inverse = self._inverse
        has_id = False
        for key, value in record.items():
            if not isinstance(key, str):
                return f"has a non-text field name {key!r}"
            target = _target(key, inverse)
            if target == PROFILE_ID:
                if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
                    return f"field {key!r} (profile_id) must be a non-empty string, got {_describe(value)}"
                has_id = True
            elif target in GROUPS:
                if value is not None and not isinstance(value, Mapping):
                    return f"field {key!r} ({target}) must be a mapping, got {_describe(value)}"
            elif target in (IDENTITY, PROFILE_IDS):
                if not _is_text_or_text_list(value):
                    return f"field {key!r} ({target}) must be a string or a list of strings, got {_describe(value)}"
            elif target == SUBSCRIPTION_GROUPS and value is not None and not isinstance(value, Mapping):
                return f"field {key!r} (subscription_groups) must be a mapping, got {_describe(value)}"
        if not has_id:
            id_name = next((c for c, t in inverse.items() if t == PROFILE_ID), PROFILE_ID)
            return f"has no {id_name!r} (profile_id)"
        return None

    def _records_column(self, name: str, values: list[Any]) -> pa.Array:
        if name in (IDENTITY, PROFILE_IDS):
            return pa.array([[v] if isinstance(v, str | int) else v for v in values], STRING_LIST)
        if name == PROFILE_ID:
            return pa.array([v if isinstance(v, str) or v is None else str(v) for v in values], pa.string())
        if name == SUBSCRIPTION_GROUPS:
            return pa.array(
                [None if v is None else [(str(k), _text_or_none(x)) for k, x in v.items()] for v in values],
                GROUP_MAP,
            )
        array, converted = python_array(values)
        if converted:  # mixed kinds of values in one field: every value kept, as text
            self.values_as_text[name] = self.values_as_text.get(name, 0) + converted
        return array

    # -- Arrow ---------------------------------------------------------------------------------

    def _from_arrow(self, batch: pa.RecordBatch, first: int) -> tuple[pa.RecordBatch, list[Rejected]]:
        names: list[str] = []
        arrays: list[pa.Array] = []
        for name, column in zip(batch.schema.names, batch.columns, strict=True):
            target = _target(name, self._inverse)
            if target in GROUPS:
                if pa.types.is_struct(column.type):
                    for child_field, child in zip(column.type, column.flatten(), strict=True):
                        names.append(f"{target}.{child_field.name}")
                        arrays.append(child)
                elif pa.types.is_null(column.type):
                    continue
                else:
                    raise DataError(
                        f"{self.where}: column {name!r} ({target}) must be a struct of fields, "
                        f"not {column.type}; map its parts one by one, e.g. '{target}.<name>'"
                    )
            else:
                names.append(target)
                arrays.append(column)
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise DataError(
                f"{self.where}: more than one column becomes {sorted(duplicates)}; "
                "rename or unmap one of them in source.mapping"
            )
        return self._normalise(pa.RecordBatch.from_arrays(arrays, names=names), first, [])

    # -- both ----------------------------------------------------------------------------------

    def _normalise(
        self, batch: pa.RecordBatch, first: int, rejected: list[Rejected]
    ) -> tuple[pa.RecordBatch, list[Rejected]]:
        """Give core fields their canonical types and drop (or refuse) records with no profile id."""
        names = batch.schema.names
        if PROFILE_ID not in names:
            id_name = next((c for c, t in self._inverse.items() if t == PROFILE_ID), None)
            hint = (
                f"the mapped column {id_name!r} is missing"
                if id_name
                else 'map your id column with source.mapping, e.g. mapping = { profile_id = "user_id" }'
            )
            raise DataError(f"{self.where}: no profile_id column; {hint}")
        arrays = []
        not_text: dict[int, str] = {}  # row -> the first field whose bytes are not UTF-8
        for name, column in zip(names, batch.columns, strict=True):
            wanted = CORE_TYPES.get(name)
            if wanted is not None and column.type != wanted:
                column = _to_core_type(name, column, wanted, self.where)
            elif _is_binary(column.type):
                column = _utf8_text(name, column, not_text)
            arrays.append(column)
        batch = pa.RecordBatch.from_arrays(arrays, names=names)
        ids = batch.column(PROFILE_ID)
        bad = pc.or_kleene(pc.is_null(ids), pc.equal(ids, "")).fill_null(True)
        if not_text:
            flags = np.zeros(batch.num_rows, bool)
            flags[list(not_text)] = True
            bad = pc.or_(bad, pa.array(flags))
        if pc.any(bad).as_py():
            offsets = pc.indices_nonzero(bad).to_pylist()
            # Record numbers count the records the source yielded, rejected ones included.
            kept_before = _positions_of_kept(first, [r.index for r in rejected], batch.num_rows)
            for offset in offsets:
                index = kept_before[offset]
                reason = not_text.get(offset) or "has no profile_id (missing or empty)"
                self._reject_or_raise(index, reason)
                rejected.append(Rejected(index, reason))
            batch = batch.filter(pc.invert(bad))
        return batch, rejected

    def _reject_or_raise(self, index: int, reason: str) -> None:
        if not self.skip_bad_records:
            raise DataError(
                f"{self.where}: record {index} {reason}. Fix the record, map the right column with "
                'source.mapping, or set source.bad_records = "skip" to count and report such records.'
            )


def _is_binary(type_: pa.DataType) -> bool:
    return pa.types.is_binary(type_) or pa.types.is_large_binary(type_) or pa.types.is_fixed_size_binary(type_)


def _utf8_text(name: str, column: pa.Array, not_text: dict[int, str]) -> pa.Array:
    """Bytes values as the text they encode in UTF-8: every format writes text. A value that is not
    UTF-8 is noted in ``not_text`` (its record is a bad record) and becomes null here."""
    try:
        return column.cast(pa.string())
    except pa.ArrowInvalid:
        pass
    values = column.to_pylist()
    for row, value in enumerate(values):
        if value is None:
            continue
        try:
            value.decode("utf-8")
        except UnicodeDecodeError as exc:
            values[row] = None
            sample = value[exc.start : exc.start + 4]
            not_text.setdefault(
                row,
                f"field {name!r} holds bytes that are not UTF-8 text (byte {exc.start}: {sample!r}); "
                "decode them at the source, or store binary data as base64 text",
            )
    return pa.array([None if v is None else v.decode("utf-8") for v in values], pa.string())


def _positions_of_kept(first: int, rejected: list[int], kept: int) -> list[int]:
    """Record numbers of the records that survived earlier rejection, in order."""
    skip = set(rejected)
    positions: list[int] = []
    index = first
    while len(positions) < kept:
        if index not in skip:
            positions.append(index)
        index += 1
    return positions


def _to_core_type(name: str, column: pa.Array, wanted: pa.DataType, where: str) -> pa.Array:
    if pa.types.is_null(column.type):
        return pa.nulls(len(column), wanted)
    if wanted == STRING_LIST:
        if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
            return column.cast(STRING_LIST)
        values = column.cast(pa.string())
        valid = pc.is_valid(values).to_numpy(zero_copy_only=False)
        offsets = np.zeros(len(values) + 1, dtype=np.int32)
        np.cumsum(valid, out=offsets[1:])
        return pa.ListArray.from_arrays(pa.array(offsets), values.drop_null(), mask=pa.array(~valid))
    if wanted == GROUP_MAP and pa.types.is_struct(column.type):
        rows = column.to_pylist()
        return pa.array(
            [None if r is None else [(k, _text_or_none(v)) for k, v in r.items() if v is not None] for r in rows],
            GROUP_MAP,
        )
    try:
        return column.cast(wanted)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise DataError(f"{where}: column {name!r} cannot be read as {wanted}: {exc}") from None


# -- Python values to Arrow ----------------------------------------------------------------------


class _Mixed(Exception):
    """Values of kinds that one Arrow type cannot hold (a mapping and a number, ...)."""


_MIXED: tuple[type[Exception], ...] = (*ARROW_CONVERSION_ERRORS, OverflowError, _Mixed)


def python_array(values: Sequence[Any]) -> tuple[pa.Array, int]:
    """The Arrow array of Python values (None: missing), and how many of them became text.

    Arrow infers the type, except for mappings, at any depth, so that each keeps exactly its own
    keys: mappings that all have the same keys are a struct, the others a ``map<string, T>``; a column
    of mappings whose values (at any depth) have different types is JSON text. Values of other kinds
    no one type holds (``31`` and ``"31"``, a list and a string) are all written as text.
    """
    try:
        return _inferred(values), 0
    except _MIXED:
        if all(v is None or isinstance(v, Mapping) for v in values):
            return json_array(values), 0  # mappings whose values have different types: JSON text
        converted = sum(1 for v in values if v is not None and not isinstance(v, str))
        return pa.array([_text_or_none(v) for v in values], pa.string()), converted


def _inferred(values: Sequence[Any]) -> pa.Array:
    first = next((v for v in values if v is not None), None)
    if isinstance(first, Mapping):
        return _mapping_array(values)
    if isinstance(first, list | tuple):
        try:
            array = pa.array(values)
        except _MIXED:
            return _list_array(values)  # mappings of different shapes in lists, or mixed values
        return _list_array(values) if _has_struct(array.type) else array
    return pa.array(values)


def _has_struct(t: pa.DataType) -> bool:
    if pa.types.is_struct(t):
        return True
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _has_struct(t.value_type)
    if pa.types.is_map(t):
        return _has_struct(t.item_type)
    return False


def _mask(missing: list[bool]) -> pa.Array | None:
    return pa.array(missing, pa.bool_()) if any(missing) else None


def _list_array(values: Sequence[Any]) -> pa.Array:
    offsets, missing = [0], []
    items: list[Any] = []
    for value in values:
        if value is not None and not isinstance(value, list | tuple):
            raise _Mixed
        items += value or ()
        offsets.append(len(items))
        missing.append(value is None)
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), _inferred(items), mask=_mask(missing))


def _mapping_array(values: Sequence[Any]) -> pa.Array:
    """A struct when every mapping has the same keys (no value gains one), else a map; raises
    ``_Mixed`` when values have different types (the column is then JSON text: ``python_array``)."""
    present = [v for v in values if v is not None]
    if any(not isinstance(v, Mapping) for v in present):
        raise _Mixed
    names = list(present[0]) if present else []
    if names and all(isinstance(k, str) for k in names) and all(v.keys() == present[0].keys() for v in present):
        children = [_inferred([None if v is None else v[name] for v in values]) for name in names]
        return pa.StructArray.from_arrays(children, names=names, mask=_mask([v is None for v in values]))
    offsets, keys, items, missing = [0], [], [], []
    for value in values:
        if value is not None:
            if not isinstance(value, Mapping):
                raise _Mixed
            for key, item in value.items():
                keys.append(key if isinstance(key, str) else _key_text(key))
                items.append(item)
        offsets.append(len(keys))
        missing.append(value is None)
    return pa.MapArray.from_arrays(
        pa.array(offsets, pa.int32()), pa.array(keys, pa.string()), _inferred(items), mask=_mask(missing)
    )


def _key_text(key: Any) -> str:
    """A mapping key that is not text, as JSON writes it (``1`` -> ``"1"``, ``True`` -> ``"true"``)."""
    if key is None or isinstance(key, bool):
        return "null" if key is None else "true" if key else "false"
    return str(key)


def json_array(values: Sequence[Any]) -> pa.Array:
    """Python values as compact JSON text (the ``arrow.json`` type); None stays missing."""
    storage = pa.array([None if v is None else dumps(v) for v in values], pa.string())
    return pa.ExtensionArray.from_storage(JSON_TEXT, storage)


def read_source(source: Any, partition: int, where: str) -> Iterator[Any]:
    """``source.read(partition)``, with Arrow's conversion errors turned into a ``DataError``."""
    batches = iter(source.read(partition))
    while True:
        try:
            raw = next(batches)
        except StopIteration:
            return
        except ARROW_CONVERSION_ERRORS as exc:
            raise DataError(_conversion_problem(where, exc)) from exc
        yield raw


def _conversion_problem(where: str, exc: Exception) -> str:
    return f"{where}: the data cannot be converted to Arrow ({exc}). {_CONVERSION_ADVICE}"


def _is_text_or_text_list(value: Any) -> bool:
    if value is None or isinstance(value, str):
        return True
    if isinstance(value, list | tuple):
        return all(isinstance(v, str) or v is None for v in value)
    return False


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:40]}{'...' if len(text) > 40 else ''}"


def _text_or_none(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, timedelta):
        return iso_duration(value)
    return dumps(value)


# -- one schema for a whole export ----------------------------------------------------------------


def merge_types(a: pa.DataType, b: pa.DataType) -> pa.DataType:
    """The type that holds the values of both; text when nothing narrower does (see docs/types)."""
    if a == b:
        return a
    if pa.types.is_null(a):
        return b
    if pa.types.is_null(b):
        return a
    if pa.types.is_integer(a) and pa.types.is_integer(b):
        return pa.int64()
    if _is_number(a) and _is_number(b):
        return pa.float64()
    if pa.types.is_timestamp(a) and pa.types.is_timestamp(b):
        return pa.timestamp("us", tz=a.tz if a.tz == b.tz else "UTC")
    if _is_text(a) and _is_text(b):
        return pa.string()
    if pa.types.is_list(a) and pa.types.is_list(b):
        return pa.list_(merge_types(a.value_type, b.value_type))
    if _is_mapping(a) and _is_mapping(b):
        return _merge_mappings(a, b)
    return pa.string()


def _merge_mappings(a: pa.DataType, b: pa.DataType) -> pa.DataType:
    """Structs, maps and JSON text, by the rules ``python_array`` types one batch of mappings with, so
    that the type does not depend on where batches start: structs of the same keys stay a struct (a
    union of different keys would give every value the others' keys); other structs and maps are a
    map whose values merge without turning any to text; anything else is JSON text."""
    if is_json_type(a) or is_json_type(b):
        return JSON_TEXT
    if pa.types.is_struct(a) and pa.types.is_struct(b) and sorted(a.names) == sorted(b.names):
        others = {f.name: f.type for f in b}
        fields = [(f.name, _exact_merge(f.type, others[f.name])) for f in a]
        if any(t is None for _, t in fields):
            return JSON_TEXT
        return pa.struct(fields)
    item: pa.DataType | None = pa.null()
    for t in (a, b):
        if pa.types.is_map(t) and not _is_text(t.key_type):
            return JSON_TEXT
        for value_type in [f.type for f in t] if pa.types.is_struct(t) else [t.item_type]:
            item = None if item is None else _exact_merge(item, value_type)
    return JSON_TEXT if item is None else pa.map_(pa.string(), item)


def _is_mapping(t: pa.DataType) -> bool:
    return pa.types.is_map(t) or pa.types.is_struct(t) or is_json_type(t)


def _exact_merge(a: pa.DataType, b: pa.DataType) -> pa.DataType | None:
    """``merge_types`` where it keeps every value as it is; None where it would turn some to text."""
    if a == b or pa.types.is_null(b):
        return a
    if pa.types.is_null(a):
        return b
    if pa.types.is_list(a) and pa.types.is_list(b):
        value = _exact_merge(a.value_type, b.value_type)
        return None if value is None else pa.list_(value)
    merged = merge_types(a, b)
    if _is_text(merged) and not (_is_text(a) and _is_text(b)):
        return None
    if is_json_type(merged) and not (is_json_type(a) or is_json_type(b)):
        return None  # as in one batch: mappings inside that need JSON make the whole value JSON
    return merged


def _is_number(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t)


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def merge_schemas(a: pa.Schema | None, b: pa.Schema) -> pa.Schema:
    """Union of columns (first-seen order) with merged types."""
    if a is None:
        return b
    fields = {f.name: f.type for f in a}
    for f in b:
        fields[f.name] = merge_types(fields[f.name], f.type) if f.name in fields else f.type
    return pa.schema(list(fields.items()))


def conform(batch: pa.RecordBatch, schema: pa.Schema, values_as_text: dict[str, int]) -> pa.RecordBatch:
    """Give ``batch`` exactly ``schema``: missing columns as nulls, values cast to merged types.

    A value that the merged type cannot hold exactly has already made that type text, so the casts
    here only widen; values turned to text are counted in ``values_as_text``.
    """
    n = batch.num_rows
    arrays = []
    for f in schema:
        index = batch.schema.get_field_index(f.name)
        if index < 0:
            arrays.append(pa.nulls(n, f.type))
            continue
        column = batch.column(index)
        if column.type != f.type:
            column = _widen(f.name, column, f.type, values_as_text)
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _widen(name: str, column: pa.Array, wanted: pa.DataType, values_as_text: dict[str, int]) -> pa.Array:
    if pa.types.is_null(column.type):
        return pa.nulls(len(column), wanted)
    if is_json_type(wanted) and not is_json_type(column.type):
        return as_json(column)
    if pa.types.is_string(wanted) and not _is_text(column.type):
        values_as_text[name] = values_as_text.get(name, 0) + (len(column) - column.null_count)
        return as_text(column)
    if pa.types.is_struct(wanted) and pa.types.is_struct(column.type):
        children = []
        for f in wanted:
            i = column.type.get_field_index(f.name)
            child = pa.nulls(len(column), f.type) if i < 0 else column.field(i)
            if child.type != f.type:
                child = _widen(f"{name}.{f.name}", child, f.type, values_as_text)
            children.append(child)
        return pa.StructArray.from_arrays(children, fields=list(wanted), mask=pc.is_null(column))
    if pa.types.is_map(wanted) and pa.types.is_struct(column.type):
        return _struct_to_map(name, column, wanted, values_as_text)
    try:
        return column.cast(wanted)
    except ARROW_CONVERSION_ERRORS as exc:
        problem = exc
    # Casts Arrow has no kernel for, inside lists and maps (a list of structs to a list of maps, ...)
    if pa.types.is_list(wanted) and pa.types.is_list(column.type):
        values = _widen(name, column.values, wanted.value_type, values_as_text)
        return pa.ListArray.from_arrays(column.offsets, values, type=wanted, mask=_null_mask(column))
    if pa.types.is_map(wanted) and pa.types.is_map(column.type) and column.type.key_type == wanted.key_type:
        items = _widen(name, column.items, wanted.item_type, values_as_text)
        return pa.MapArray.from_arrays(column.offsets, column.keys, items, type=wanted, mask=_null_mask(column))
    raise DataError(_cast_problem(name, column, wanted, problem)) from problem


def _null_mask(column: pa.Array) -> pa.Array | None:
    return pc.is_null(column) if column.null_count else None


def _struct_to_map(name: str, column: pa.Array, wanted: pa.DataType, values_as_text: dict[str, int]) -> pa.Array:
    """Each struct as a map of its fields (every field a key, its value null or not)."""
    n, names = len(column), column.type.names
    children = [column.field(i) for i in range(len(names))]
    children = [
        c if c.type == wanted.item_type else _widen(name, c, wanted.item_type, values_as_text) for c in children
    ]
    valid = pc.is_valid(column).to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(valid)
    offsets = np.zeros(n + 1, np.int32)
    np.cumsum(valid * len(names), out=offsets[1:])
    keys = pa.array(np.tile(np.array(names, dtype=object), len(rows)), pa.string())
    order = (np.arange(len(names))[None, :] * n + rows[:, None]).ravel()
    items = pa.concat_arrays(children).take(pa.array(order)) if names else pa.nulls(0, wanted.item_type)
    return pa.MapArray.from_arrays(pa.array(offsets), keys, items, type=wanted, mask=pa.array(~valid))


def _cast_problem(name: str, column: pa.Array, wanted: pa.DataType, exc: Exception) -> str:
    valid = column.drop_null() if len(column) > column.null_count else column
    sample = repr(valid[0].as_py())[:60] if len(valid) else "(none)"
    return (
        f"column {name!r} ({column.type}) cannot be read as {wanted}, the type of its other values "
        f"({exc}); a value: {sample}. {_CONVERSION_ADVICE}"
    )


def cast_column(name: str, column: pa.Array, wanted: pa.DataType) -> pa.Array:
    """``column`` as ``wanted`` by the rules of ``conform`` (JSON text, text), without counting."""
    if column.type == wanted:
        return column
    return _widen(name, column, wanted, {})


def as_json(column: pa.Array) -> pa.Array:
    """Each value as its compact JSON text (the ``arrow.json`` type); non-finite floats as null."""
    if is_json_type(column.type):
        return column
    return pa.ExtensionArray.from_storage(JSON_TEXT, json_text(column, non_finite="null"))


def as_text(column: pa.Array) -> pa.Array:
    """Values as text: scalars the way Arrow prints them, lists and structs as compact JSON."""
    t = column.type
    if _is_text(t):
        return column.cast(pa.string())
    if is_json_type(t):
        return json_storage(column)
    if pa.types.is_duration(t):
        return duration_text(column)
    if pa.types.is_boolean(t) or _is_number(t) or pa.types.is_timestamp(t) or pa.types.is_date(t):
        if pa.types.is_floating(t):
            return pa.array([_text_or_none(v) for v in column.to_pylist()], pa.string())
        return column.cast(pa.string())
    return pa.array([_text_or_none(v) for v in column.to_pylist(maps_as_pydicts="lossy")], pa.string())
