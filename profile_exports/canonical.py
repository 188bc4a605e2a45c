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

Hostile values have one outcome each (docs/output.md, "Values no format holds as they are"): a
value nested more than ``MAX_NESTING`` levels, text with a lone surrogate (in a value, a key, a
property name or an id) and two fields of a record that give one column different values make the
record a bad record naming the field; integers beyond 64 bits, NaN and infinite decimals, naive
and aware datetimes (or dates and datetimes) in one property are kept as text; a property named
like an output column is renamed ``property_<name>``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from itertools import chain
from operator import itemgetter
from typing import Any

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .errors import ConfigError, DataError
from .values import (
    JSON_TEXT,
    BadValue,
    dumps,
    duration_text,
    is_json_type,
    json_storage,
    json_text,
    lone_surrogate,
    timestamp_text,
    value_text,
)

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


# Lists and mappings nest at most this deep in a value (a property's value is level 1; the 60 levels
# of docs/guarantees.md fit). Checked before Arrow sees a value: Arrow's type inference takes memory
# quadratic in the depth (1.5 GB for one value 3,000 levels deep), and Python's recursion ends near 1,000.
MAX_NESTING = 64

# Property names that are output columns of their own: such a property is exported as
# ``property_<name>`` (``RENAMED_PREFIX``), so that it neither replaces nor is dropped for the column.
OUTPUT_COLUMN_NAMES = frozenset(
    {"identity", "Identity", "all_identities", "clevertapId", "clevertapIds", "profile_id", "device"}
    | {"subscriptionGroups", *COMM_PREF_NAMES}
)
RENAMED_PREFIX = "property_"

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
    if target is None:
        if name in CANONICAL_TARGETS:
            return name
        target = name if group_of(name) is not None else ALIASES.get(name, property_column(name))
    return _renamed(target)


def _renamed(column: str) -> str:
    """``properties.property_device`` for ``properties.device``: a property named like an output column."""
    if column.startswith("properties.") and column[11:] in OUTPUT_COLUMN_NAMES:
        return f"properties.{RENAMED_PREFIX}{column[11:]}"
    return column


def _member(group: str, key: Any) -> str:
    """The column of the member ``key`` of a group mapping (a device attribute, a property...)."""
    return _renamed(f"{group}.{key}")


@attrs.frozen
class Rejected:
    index: int  # record number within the partition
    reason: str


@attrs.frozen
class BadRecord:
    """What a source yields in place of a record it could not read (a JSON line nested too deep to
    parse): the canonicalizer rejects it as a bad record with this reason."""

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
    # The column of each field name and of each member of a group mapping, worked out once per name.
    _columns_of: dict[str, str] = attrs.field(init=False, factory=dict)
    _members_of: dict[str, dict[Any, str]] = attrs.field(init=False, factory=dict)

    def __attrs_post_init__(self) -> None:
        self._inverse = validate_mapping(self.mapping)
        self._members_of = {group: {} for group in GROUPS}

    def convert(self, raw: Any) -> tuple[pa.RecordBatch, list[Rejected]]:
        first = self._records_seen
        try:
            if isinstance(raw, pa.RecordBatch):
                batch, rejected = self._from_arrow(raw, first)
                self._records_seen += raw.num_rows
            else:
                exact = getattr(raw, "exact", None)  # a JSON Lines chunk reads a line again, exactly
                records = list(raw)
                batch, rejected = self._from_records(records, first, exact)
                self._records_seen += len(records)
        except ARROW_CONVERSION_ERRORS as exc:
            raise DataError(_conversion_problem(self.where, exc)) from exc
        return batch, rejected

    # -- records (dicts) ---------------------------------------------------------------------

    def _from_records(
        self, records: Sequence[Any], first: int, exact: Any = None
    ) -> tuple[pa.RecordBatch, list[Rejected]]:
        rejected: list[Rejected] = []
        good: list[Any] = []
        numbers: list[int] = []  # the record number of each good record
        for offset, record in enumerate(records):
            reason = self._record_problem(record)
            if reason is None:
                good.append(record)
                numbers.append(first + offset)
                continue
            self._reject_or_raise(first + offset, reason)
            rejected.append(Rejected(first + offset, reason))
        reread: set[int] = set()
        built = self._build(good)
        # Some bad values only show when the columns are typed: their records are taken out and the
        # columns they had values in typed again without them (the usual batch is typed once).
        while True:
            wide = [] if exact is None else [r for r in _wide_float_rows(built) if numbers[r] not in reread]
            if wide:  # JSON numbers that may be integers beyond 64 bits, which orjson reads as floats
                for row in wide:
                    reread.add(numbers[row])
                    good[row] = exact(numbers[row] - first)
                built = self._build(good)
                continue
            if not built.problems:
                break
            for row, reason in sorted(built.problems.items()):
                self._reject_or_raise(numbers[row], reason)
                rejected.append(Rejected(numbers[row], reason))
            kept = [row for row in range(len(good)) if row not in built.problems]
            good, numbers = [good[row] for row in kept], [numbers[row] for row in kept]
            built = self._without(built, kept, good)
        for name, count in built.as_text.items():
            self.values_as_text[name] = self.values_as_text.get(name, 0) + count
        if not built.arrays:
            return pa.RecordBatch.from_arrays([pa.nulls(len(good), pa.string())], names=[PROFILE_ID]), rejected
        batch = pa.RecordBatch.from_arrays(list(built.arrays.values()), names=list(built.arrays))
        return self._normalise(batch, first, rejected)

    def _build(self, good: Sequence[Mapping[Any, Any]]) -> _Built:
        built = _Built()
        built.columns = self._values_by_column(good, built.problems)
        for name in [n for n in built.columns if lone_surrogate(n)]:
            for row in self._rows_with_column(good, name):
                built.problems.setdefault(row, _name_problem(name))
        for name, values in built.columns.items():
            array = self._records_column(name, values, built)
            if array is not None:
                built.arrays[name] = array
        return built

    def _without(self, built: _Built, kept: list[int], good: Sequence[Mapping[Any, Any]]) -> _Built:
        """``built`` without the records of its problems (``kept``: the rows that stay, ``good``: their
        records). A column is filtered where its type cannot depend on those records (they had no
        value in it, or it is text, integers or booleans with no value made text), else typed again."""
        out = _Built()
        removed = list(built.problems)
        keep = np.ones(len(removed) + len(kept), bool)
        keep[removed] = False
        mask = pa.array(keep)
        pick = itemgetter(*kept) if len(kept) > 1 else lambda values: tuple(values[row] for row in kept)
        for name, values in built.columns.items():
            remaining = list(pick(values))
            if all(v is None for v in remaining) and not self._rows_with_column(good, name):
                continue  # only the records taken out had this field
            out.columns[name] = remaining
            array = built.arrays.get(name)
            if array is not None and (
                all(values[row] is None for row in removed)
                or (
                    _one_type_whatever_rows(name, array.type)
                    and not built.as_text.get(name)
                    and any(v is not None for v in remaining)  # all missing: the null type
                )
            ):
                out.arrays[name] = array.filter(mask)
                if name in built.as_text:
                    out.as_text[name] = built.as_text[name]
            elif (array := self._records_column(name, remaining, out)) is not None:
                out.arrays[name] = array
        return self._in_order_seen(out, good)

    def _in_order_seen(self, built: _Built, good: Sequence[Mapping[Any, Any]]) -> _Built:
        """The columns in the order the records name them (a record taken out may have named one first)."""
        order: dict[str, int] = {}
        for record in good:
            for _, column, _ in self._fields_of(record):
                order.setdefault(column, len(order))
            if len(order) >= len(built.columns):
                break
        built.columns = dict(sorted(built.columns.items(), key=lambda item: order[item[0]]))
        built.arrays = {name: built.arrays[name] for name in built.columns if name in built.arrays}
        return built

    def _values_by_column(self, good: Sequence[Mapping[Any, Any]], problems: dict[int, str]) -> dict[str, list[Any]]:
        """Each column's values, row by row. Two fields of a record that give one column different
        values (``profile_id`` and ``clevertapId``, ``Age`` and ``properties.Age``) make it a bad record."""
        n = len(good)
        columns: dict[str, list[Any]] = {}
        clashes: dict[int, str] = {}
        columns_of, members_of = self._columns_of, self._members_of
        # One loop for every value of the batch: kept flat (no call per value) for speed.
        for row, record in enumerate(good):
            for key, value in record.items():
                name = columns_of.get(key) or self._column_of(key)
                if name in _GROUP_NAMES:
                    if value is None:
                        continue
                    members = members_of[name]
                    for sub, sub_value in value.items():
                        column = members.get(sub) or self._member_of(name, sub)
                        values = columns.get(column)
                        if values is None:
                            values = columns[column] = [None] * n
                        if sub_value is not None:
                            if values[row] is not None and not _same(values[row], sub_value):
                                clashes.setdefault(row, column)
                            values[row] = sub_value
                    continue
                values = columns.get(name)
                if values is None:
                    values = columns[name] = [None] * n
                if value is not None:
                    if values[row] is not None and not _same(values[row], value):
                        clashes.setdefault(row, name)
                    values[row] = value
        for row, column in clashes.items():
            problems.setdefault(row, self._clash(good[row], column))
        return columns

    def _column_of(self, key: Any) -> str:
        if len(self._columns_of) > _NAMES_KEPT:  # field names of hostile data need not all be kept
            self._columns_of.clear()
        name = self._columns_of[key] = _target(key, self._inverse)
        return name

    def _member_of(self, group: str, key: Any) -> str:
        members = self._members_of[group]
        if len(members) > _NAMES_KEPT:
            members.clear()
        name = members[key] = _member(group, key)
        return name

    def _fields_of(self, record: Mapping[Any, Any]) -> Iterator[tuple[str, str, Any]]:
        """(field as the record names it, column, value) of every field of a record."""
        for key, value in record.items():
            name = self._columns_of.get(key) or self._column_of(key)
            if name in _GROUP_NAMES:
                members = self._members_of[name]
                for sub, sub_value in (value or {}).items():
                    yield f"{key}.{sub}", members.get(sub) or self._member_of(name, sub), sub_value
            else:
                yield str(key), name, value

    def _rows_with_column(self, good: Sequence[Mapping[Any, Any]], column: str) -> list[int]:
        return [row for row, record in enumerate(good) if any(c == column for _, c, _ in self._fields_of(record))]

    def _clash(self, record: Mapping[Any, Any], column: str) -> str:
        given = [(field, value) for field, c, value in self._fields_of(record) if c == column and value is not None]
        fields = " and ".join(repr(field) for field, _ in given)
        values = " and ".join(_describe(value) for _, value in given)
        return f"has fields {fields} that both give {column!r}, with different values ({values}); keep one of them"

    def _record_problem(self, record: Any) -> str | None:
        if not isinstance(record, Mapping):
            if isinstance(record, BadRecord):
                return record.reason
            return f"is a {type(record).__name__}, not a mapping of fields"
        has_id = False
        for key, value in record.items():
            if not isinstance(key, str):
                return f"has a non-text field name {key!r}"
            target = self._columns_of.get(key) or self._column_of(key)
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
            id_name = next((c for c, t in self._inverse.items() if t == PROFILE_ID), PROFILE_ID)
            return f"has no {id_name!r} (profile_id)"
        return None

    def _records_column(self, name: str, values: list[Any], built: _Built) -> pa.Array | None:
        """The Arrow array of one column's values; None when some of them make their records bad
        (noted in ``built.problems``)."""
        if name not in _TEXT_LISTS and not _CONTAINERS.none_in(set(map(type, values))):
            deep = _too_deep_rows(values)
            for row in deep:
                built.problems.setdefault(row, f"field {name!r} {_TOO_DEEP}")
            if deep:
                return None
        try:
            return self._typed_column(name, values, built.as_text)
        except (BadValue, UnicodeEncodeError) as exc:
            found = {row: p for row, v in enumerate(values) if v is not None and (p := _value_problem(v))}
            if not found:
                raise DataError(f"{self.where}: field {name!r} cannot be exported: {exc}") from None
            for row, problem in found.items():
                built.problems.setdefault(row, f"field {name!r} {problem}")
            return None

    @staticmethod
    def _typed_column(name: str, values: list[Any], as_text: dict[str, int]) -> pa.Array:
        if name in (IDENTITY, PROFILE_IDS):
            return pa.array([[v] if isinstance(v, str | int) else v for v in values], STRING_LIST)
        if name == PROFILE_ID:
            return pa.array([v if isinstance(v, str) or v is None else str(v) for v in values], pa.string())
        if name == SUBSCRIPTION_GROUPS:
            return pa.array(
                [None if v is None else [(str(k), _text_or_none(x)) for k, x in v.items()] for v in values],
                GROUP_MAP,
            )
        array, converted = _python_array(values)
        if converted:  # mixed kinds of values in one field: every value kept, as text
            as_text[name] = as_text.get(name, 0) + converted
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
                        names.append(_member(target, child_field.name))
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
        for name, column in zip(names, arrays, strict=True):
            if _type_nesting(column.type) > MAX_NESTING:
                raise DataError(
                    f"{self.where}: column {name!r} ({column.type}) nests lists and mappings more than "
                    f"{MAX_NESTING} levels deep; flatten it or turn it to JSON text at the source"
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


# Arrow refuses with plain TypeErrors and ValueErrors too (an infinite Decimal; a NaN one beside a
# datetime); OverflowError: integers beyond 64 bits. (Text Arrow cannot encode, a UnicodeEncodeError,
# is no mix: ``_python_array`` lets it through.)
_MIXED: tuple[type[Exception], ...] = (*ARROW_CONVERSION_ERRORS, OverflowError, TypeError, ValueError, _Mixed)


def python_array(values: Sequence[Any], name: str | None = None) -> tuple[pa.Array, int]:
    """The Arrow array of Python values (None: missing), and how many of them became text.

    Arrow infers the type, except for mappings, at any depth, so that each keeps exactly its own
    keys: mappings that all have the same keys are a struct, the others a ``map<string, T>``; a column
    of mappings whose values (at any depth) have different types is JSON text. Values of other kinds
    no one type holds (``31`` and ``"31"``, a list and a string, naive and aware datetimes, a date and
    a datetime, integers beyond 64 bits, NaN decimals) are all written as text.

    Raises ``BadValue`` (naming ``name``) for a value nested more than ``MAX_NESTING`` levels deep or
    holding text with a lone surrogate: no format can write it as it is.
    """
    where = f"column {name!r}: " if name else ""
    if not _CONTAINERS.none_in(set(map(type, values))) and _too_deep_rows(values):
        raise BadValue(f"{where}a value {_TOO_DEEP}")
    try:
        return _python_array(values)
    except (BadValue, UnicodeEncodeError):
        problem = next((p for v in values if v is not None and (p := _value_problem(v))), None)
        if problem is None:
            raise
        raise BadValue(f"{where}a value {problem}") from None


def _python_array(values: Sequence[Any]) -> tuple[pa.Array, int]:
    """``python_array`` of values already checked for their depth."""
    try:
        return _inferred(values), 0
    except UnicodeEncodeError:
        raise
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
        # Arrow's own inference makes structs of dicts, and converts what _one_kind refuses
        return _list_array(values) if _has(array.type, _typed_here) else array
    array = pa.array(values)
    _one_kind(array.type, values)
    return array


def _typed_here(t: pa.DataType) -> bool:
    return pa.types.is_struct(t) or _is_temporal(t) or pa.types.is_floating(t) or pa.types.is_duration(t)


def _one_kind(t: pa.DataType, values: Sequence[Any]) -> None:
    """Raises ``_Mixed`` where Arrow converted values of another kind without a word: ``True`` beside
    floats becomes 1.0, ``0`` beside dates 1970-01-01, ``5`` beside durations 5 microseconds, and the
    datetimes of ``_one_temporal_kind``."""
    if _is_temporal(t):
        _one_temporal_kind(values)
    elif pa.types.is_floating(t):
        if bool in set(map(type, values)):
            raise _Mixed
    elif pa.types.is_duration(t) and any(v is not None and not isinstance(v, timedelta) for v in values):
        raise _Mixed


def _is_temporal(t: pa.DataType) -> bool:
    return pa.types.is_timestamp(t) or pa.types.is_date(t) or pa.types.is_time(t)


def _has(t: pa.DataType, test: Any) -> bool:
    """True when ``t`` or a type inside it (list items, map items) passes ``test``."""
    if test(t):
        return True
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _has(t.value_type, test)
    if pa.types.is_map(t):
        return _has(t.item_type, test)
    return False


def _one_temporal_kind(values: Sequence[Any]) -> None:
    """Raises ``_Mixed`` unless the datetimes, dates and times are of one kind. Arrow would give naive
    and aware datetimes one type (the naive taken as UTC, or the zone dropped), cut a datetime to its
    date beside dates, and drop the zone of a time: each of those is a change no reader could see."""
    types = set(map(type, values))
    types.discard(type(None))
    if types == {datetime}:  # the usual column: only the zones can differ
        if len({v.tzinfo is None for v in values if v is not None}) > 1:
            raise _Mixed
        return
    kinds = {_temporal_kind(v) for v in values if v is not None}
    if len(kinds) > 1 or "aware time" in kinds:
        raise _Mixed


def _temporal_kind(value: Any) -> str:
    if isinstance(value, datetime):
        return "naive" if value.utcoffset() is None else "aware"
    if isinstance(value, date):
        return "date"
    if isinstance(value, time):
        return "time" if value.utcoffset() is None else "aware time"
    return type(value).__name__


# -- values no format holds as they are -----------------------------------------------------------


class _ContainerTypes(dict[type, bool]):
    """Which Python types are lists or mappings (what nests), worked out once per type: a lookup
    per value is cheaper than ``isinstance`` of an abstract class."""

    def __missing__(self, key: type) -> bool:
        nested = self[key] = issubclass(key, list | tuple | Mapping)
        return nested

    def none_in(self, types: set[type]) -> bool:
        return not any(self[t] for t in types)


_CONTAINERS = _ContainerTypes()
_TEXT_LISTS = frozenset({IDENTITY, PROFILE_IDS})  # text or lists of text: checked record by record
_GROUP_NAMES = frozenset(GROUPS)
_NAMES_KEPT = 100_000  # names of columns remembered per canonicalizer (hostile data may hold millions)
_TOO_DEEP = (
    f"nests lists and mappings more than {MAX_NESTING} levels deep; flatten the value or store it as "
    "JSON text at the source"
)


@attrs.define
class _Built:
    """The columns of one batch of records, and the records some of their values make bad."""

    columns: dict[str, list[Any]] = attrs.field(factory=dict)  # each column's values, row by row
    arrays: dict[str, pa.Array] = attrs.field(factory=dict)  # the columns typed (not those of problems)
    problems: dict[int, str] = attrs.field(factory=dict)  # row -> reason
    as_text: dict[str, int] = attrs.field(factory=dict)


def _too_deep_rows(values: Sequence[Any]) -> list[int]:
    """Rows whose value nests lists and mappings more than ``MAX_NESTING`` levels deep, found level by
    level, never by recursion (a value may be thousands of levels deep, or hold itself).

    A first pass only asks whether any value is too deep, a level at a time over all the values
    (the items of lists of text are looked at in C); the rows are sought only when one is. Each level
    holds a container once, so a value that holds itself many times over costs no more than once."""
    nested = _CONTAINERS
    level = [v for v in values if nested[type(v)]]
    for _ in range(MAX_NESTING):
        items = list(chain.from_iterable(map(_members, level)))
        if _CONTAINERS.none_in(set(map(type, items))):
            return []
        level = list({id(item): item for item in items if nested[type(item)]}.values())
    rows = [(row, v) for row, v in enumerate(values) if nested[type(v)]]
    for _ in range(MAX_NESTING):
        if not rows:
            return []
        deeper = {(row, id(item)): (row, item) for row, v in rows for item in _members(v) if nested[type(item)]}
        rows = list(deeper.values())
    return sorted({row for row, _ in rows})


def _members(container: Any) -> Any:
    return container.values() if type(container) is dict or isinstance(container, Mapping) else container


def _value_problem(value: Any) -> str | None:
    """What keeps a value (of a depth already checked) from being written, at any depth, keys
    included: text with a lone surrogate, bytes that are not UTF-8."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            point = lone_surrogate(item)
            if point:
                return f"holds text with a lone surrogate ({point}), which UTF-8 cannot encode; {_REPAIR}"
        elif isinstance(item, bytes):
            try:
                value_text(item)
            except BadValue as exc:
                return f"{exc}; decode them at the source, or store binary data as base64 text"
        elif isinstance(item, Mapping):
            pending += item.keys()
            pending += item.values()
        elif isinstance(item, list | tuple):
            pending += item
    return None


_REPAIR = "repair the text at the source (a lone surrogate is often half of a UTF-16 pair cut in two)"


def _name_problem(name: str) -> str:
    return f"has a field name {name!r} with a lone surrogate ({lone_surrogate(name)}); {_REPAIR}"


def _same(a: Any, b: Any) -> bool:
    """Two values of one column given by two fields of a record are the same value (of the same type)."""
    try:
        return a is b or (type(a) is type(b) and bool(a == b))
    except Exception:  # values whose == is not a truth value (arrays): not known to be the same
        return False


def _wide_float_rows(built: _Built) -> list[int]:
    """Rows holding a float of magnitude 2**63 or more at any depth: what orjson makes of a JSON integer
    beyond 64 bits (the JSON Lines source then reads the line again, exactly)."""
    rows: set[int] = set()
    for name, array in built.arrays.items():
        values = built.columns[name]
        if pa.types.is_floating(array.type):
            numbers = array.to_numpy(zero_copy_only=False)
            with np.errstate(invalid="ignore"):
                rows.update(np.flatnonzero(np.abs(numbers) >= 2.0**63).tolist())
        elif _has(array.type, pa.types.is_floating) or (
            pa.types.is_struct(array.type) or is_json_type(array.type) or built.as_text.get(name)
        ):
            rows.update(row for row, v in enumerate(values) if _holds_wide_float(v))
    return sorted(rows)


def _holds_wide_float(value: Any) -> bool:
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, float):
            if abs(item) >= 2.0**63:
                return True
        elif isinstance(item, Mapping):
            pending += item.values()
        elif isinstance(item, list | tuple):
            pending += item
    return False


def _type_nesting(t: pa.DataType) -> int:
    """How deep lists, structs and maps nest in ``t`` (up to ``MAX_NESTING + 1``: enough to refuse it)."""
    deepest, pending = 0, [(t, 0)]
    while pending and deepest <= MAX_NESTING:
        t, depth = pending.pop()
        if pa.types.is_struct(t):
            pending += [(f.type, depth + 1) for f in t]
            deepest = max(deepest, depth + 1)
        elif pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
            pending.append((t.value_type, depth + 1))
            deepest = max(deepest, depth + 1)
        elif pa.types.is_map(t):
            pending += [(t.key_type, depth + 1), (t.item_type, depth + 1)]
            deepest = max(deepest, depth + 1)
    return deepest


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


def _one_type_whatever_rows(name: str, t: pa.DataType) -> bool:
    """True for a column whose type no subset of its values changes: the core columns of fixed types,
    text, booleans and integers (values of other kinds would have made it text)."""
    return name in (PROFILE_ID, IDENTITY, PROFILE_IDS, SUBSCRIPTION_GROUPS) or t in _ONE_TYPE


_ONE_TYPE = (pa.string(), pa.bool_(), pa.int64())


def _text_or_none(value: Any) -> str | None:
    if value is None or type(value) is str:  # most values: no call
        return value
    return value_text(value)


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
    if pa.types.is_decimal(a) or pa.types.is_decimal(b):
        return _merge_decimals(a, b)
    if pa.types.is_timestamp(a) and pa.types.is_timestamp(b):
        if (a.tz is None) != (b.tz is None):  # naive and aware: no one timeline holds both as given
            return pa.string()
        return pa.timestamp("us", tz=a.tz if a.tz == b.tz else "UTC")
    if _is_text(a) and _is_text(b):
        return pa.string()
    if pa.types.is_list(a) and pa.types.is_list(b):
        return pa.list_(merge_types(a.value_type, b.value_type))
    if _is_mapping(a) and _is_mapping(b):
        return _merge_mappings(a, b)
    return pa.string()


def _merge_decimals(a: pa.DataType, b: pa.DataType) -> pa.DataType:
    """Decimals and integers: the decimal with the integer digits and the scale of both (as Arrow
    types one batch of them), while it fits 76 digits; text otherwise (and with floats: a float
    is not exact, a decimal is)."""
    digits = [_decimal_digits(t) for t in (a, b)]
    if None in digits:
        return pa.string()
    whole = max(d[0] for d in digits if d is not None)
    scale = max(d[1] for d in digits if d is not None)
    if whole + scale <= 38:
        return pa.decimal128(whole + scale, scale)
    if whole + scale <= 76:
        return pa.decimal256(whole + scale, scale)
    return pa.string()


def _decimal_digits(t: pa.DataType) -> tuple[int, int] | None:
    """(digits before the point, digits after it) a type's values need; None: not a decimal or integer."""
    if pa.types.is_decimal(t):
        return t.precision - t.scale, t.scale
    if pa.types.is_integer(t):
        return len(str(2**t.bit_width)), 0
    return None


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
    if pa.types.is_timestamp(t):
        return timestamp_text(column)
    if pa.types.is_boolean(t) or _is_number(t) or pa.types.is_date(t) or pa.types.is_decimal(t):
        if pa.types.is_floating(t):
            return pa.array([_text_or_none(v) for v in column.to_pylist()], pa.string())
        return column.cast(pa.string())
    return pa.array([_text_or_none(v) for v in column.to_pylist(maps_as_pydicts="lossy")], pa.string())
