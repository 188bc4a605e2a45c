"""The output columns of an export, and the projector that builds them from canonical batches.

Column order is fixed: identifiers, device, communication preferences, then user properties in the
configured order under their configured names. Every selected column is in every batch, even when
all its values are missing.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import attrs
import pyarrow as pa
import pyarrow.compute as pc

from .canonical import (
    COMM_PREFS,
    DEVICE,
    EMAIL,
    GROUP_MAP,
    PHONE,
    PROPERTIES,
    SUBSCRIPTION_GROUPS,
    cast_column,
    group_of,
    merge_types,
    property_column,
)
from .config import RESERVED_PROPERTY_NAMES, SUBSCRIPTION_GROUPS_NAME, ExportConfig
from .identity import resolve_identifiers
from .values import is_text_type

# Groups of the reference's nested formats (XML elements, Parquet structs).
IDENTITY_GROUP = "identity"
IDENTIFIERS_GROUP = "profileIdentities"
DEVICE_GROUP = "device"
COMM_PREFS_GROUP = "commPrefs"
PROPS_GROUP = "profileProps"
GROUP_ORDER = (IDENTITY_GROUP, IDENTIFIERS_GROUP, DEVICE_GROUP, COMM_PREFS_GROUP, PROPS_GROUP)

# Email and Phone are account identities and system properties at once: as properties they come
# from the profile's own fields when the data has no property of that name.
_CORE_PROPERTIES = {"Email": EMAIL, "Phone": PHONE}


class DuplicateColumnWarning(UserWarning):
    """Two properties end up with one output name; the later one in the order is exported."""


@attrs.frozen
class OutputColumn:
    name: str  # the column name in files (after rename)
    group: str  # one of GROUP_ORDER
    source: str  # the canonical column it comes from ("" for computed identifier columns)
    type: pa.DataType


@attrs.frozen
class OutputLayout:
    """The exact columns of every file of a run."""

    columns: tuple[OutputColumn, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([(c.name, c.type) for c in self.columns])

    def group(self, group: str) -> tuple[OutputColumn, ...]:
        return tuple(c for c in self.columns if c.group == group)


def _property_sources(config: ExportConfig, schema: pa.Schema) -> list[tuple[str, str]]:
    """(property name, canonical column) pairs of the selected user properties, in selection order."""
    in_data: dict[str, str] = {}
    for name in schema.names:
        grouped = group_of(name)
        if grouped and grouped[0] == PROPERTIES and grouped[1] not in RESERVED_PROPERTY_NAMES:
            in_data[grouped[1]] = name
    for prop, core in _CORE_PROPERTIES.items():
        if prop not in in_data and core in schema.names:
            in_data[prop] = core

    user = config.properties.user
    if user == "all":
        core_first = [p for p in _CORE_PROPERTIES if p in in_data]
        return [(p, in_data[p]) for p in core_first] + [(p, c) for p, c in in_data.items() if p not in _CORE_PROPERTIES]
    if user == "system":
        return [(p, in_data[p]) for p in config.properties.system if p in in_data]
    return [(p, in_data.get(p, property_column(p))) for p in user]


def _ordered(names: list[str], order: Sequence[str], rename: dict[str, str]) -> list[str]:
    """``order`` first (by original or new name), the rest keep their places."""
    first: list[str] = []
    for wanted in order:
        for name in names:
            if (name == wanted or rename.get(name) == wanted) and name not in first:
                first.append(name)
                break
    return first + [n for n in names if n not in first]


def build_layout(config: ExportConfig, schema: pa.Schema) -> OutputLayout:
    """Output columns of an export over data with the (merged, canonical) ``schema``."""
    ids = config.identifiers
    identity_type = pa.string() if ids.values == "fallback" else pa.list_(pa.string())
    columns = [OutputColumn("identity", IDENTITY_GROUP, "", identity_type)]
    if ids.all_identities:
        columns.append(OutputColumn("all_identities", IDENTIFIERS_GROUP, "", pa.list_(pa.string())))
    if ids.clevertap_id:
        columns.append(OutputColumn("clevertapId", IDENTIFIERS_GROUP, "", pa.string()))
    if ids.clevertap_ids:
        columns.append(OutputColumn("clevertapIds", IDENTIFIERS_GROUP, "", pa.list_(pa.string())))

    def type_of(name: str) -> pa.DataType:
        index = schema.get_field_index(name)
        return pa.string() if index < 0 or pa.types.is_null(schema.field(index).type) else schema.field(index).type

    device_fields = [(attr, type_of(f"{DEVICE}.{attr}")) for attr in config.properties.device]
    if device_fields:
        columns.append(OutputColumn("device", DEVICE_GROUP, DEVICE, pa.struct(device_fields)))
    for pref in config.properties.comm_prefs:
        if pref == SUBSCRIPTION_GROUPS_NAME:
            columns.append(OutputColumn(pref, COMM_PREFS_GROUP, SUBSCRIPTION_GROUPS, GROUP_MAP))
        else:
            source = f"{COMM_PREFS}.{pref}"
            columns.append(OutputColumn(pref, COMM_PREFS_GROUP, source, type_of(source)))

    rename = dict(config.properties.rename)
    sources = dict(_property_sources(config, schema))
    chosen: dict[str, OutputColumn] = {}
    for prop in _ordered(list(sources), config.properties.order, rename):
        out_name = rename.get(prop, prop)
        if out_name in chosen:
            warnings.warn(
                f"properties: {chosen[out_name].source!r} and {sources[prop]!r} are both exported as "
                f"{out_name!r}; only the later one ({sources[prop]!r}) is kept. Rename one of them.",
                DuplicateColumnWarning,
                stacklevel=2,
            )
            del chosen[out_name]
        chosen[out_name] = OutputColumn(out_name, PROPS_GROUP, sources[prop], type_of(sources[prop]))
    taken = {c.name for c in columns}
    columns += [c for c in chosen.values() if c.name not in taken]
    return OutputLayout(tuple(columns))


def project(batch: pa.RecordBatch, layout: OutputLayout, config: ExportConfig) -> pa.RecordBatch:
    """One output batch (layout's schema) from one conformed canonical batch."""
    n = batch.num_rows
    identifiers = resolve_identifiers(batch, config.identifiers)
    arrays: list[pa.Array] = []
    for column in layout.columns:
        if column.group in (IDENTITY_GROUP, IDENTIFIERS_GROUP):
            arrays.append(identifiers[column.name])
        elif column.source == DEVICE:
            children = [_column(batch, f"{DEVICE}.{f.name}", f.type, n) for f in column.type]
            arrays.append(pa.StructArray.from_arrays(children, fields=list(column.type)))
        else:
            arrays.append(_with_core_fallback(batch, column, _column(batch, column.source, column.type, n)))
    return pa.RecordBatch.from_arrays(arrays, schema=layout.schema)


_CORE_OF_PROPERTY = {property_column(name): core for name, core in _CORE_PROPERTIES.items()}


def _with_core_fallback(batch: pa.RecordBatch, column: OutputColumn, values: pa.Array) -> pa.Array:
    """An Email or Phone property column, with the profile's own field where the property is missing.

    Data can hold both shapes (some profiles with an ``Email`` property, others with the ``email``
    field): the column then shows each profile's value, as the Email and Phone identifiers do.
    """
    core = _CORE_OF_PROPERTY.get(column.source)
    if core is None or not values.null_count or core not in batch.schema.names or not is_text_type(column.type):
        return values
    return pc.coalesce(values, _column(batch, core, column.type, batch.num_rows))


def _column(batch: pa.RecordBatch, name: str, type_: pa.DataType, n: int) -> pa.Array:
    index = batch.schema.get_field_index(name)
    if index < 0:
        return pa.nulls(n, type_)
    column = batch.column(index)
    # cast_column: a column whose stored type became JSON text or text (evolve_layout) as well
    return column if column.type == type_ else cast_column(name, column, type_)


# -- the stored column list of an export (schema policy across runs) ---------------------------------

_GROUP_KEY = b"profile_exports.group"
_SOURCE_KEY = b"profile_exports.source"


def layout_to_bytes(layout: OutputLayout) -> bytes:
    """The layout as a serialized Arrow schema: names, exact types, groups and sources."""
    fields = [
        pa.field(c.name, c.type, metadata={_GROUP_KEY: c.group.encode(), _SOURCE_KEY: c.source.encode()})
        for c in layout.columns
    ]
    return bytes(pa.schema(fields).serialize().to_pybytes())


def layout_from_bytes(data: bytes) -> OutputLayout:
    schema = pa.ipc.read_schema(pa.py_buffer(data))
    return OutputLayout(
        tuple(
            OutputColumn(
                f.name, (f.metadata or {})[_GROUP_KEY].decode(), (f.metadata or {})[_SOURCE_KEY].decode(), f.type
            )
            for f in schema
        )
    )


def evolve_layout(stored: OutputLayout, current: OutputLayout, *, lock: bool) -> OutputLayout:
    """The columns of a later run of an export whose earlier runs had ``stored``.

    Stored columns keep their places (a property gone from the data keeps its column, empty); with
    ``lock`` nothing is added, otherwise columns new in ``current`` are appended at the end. A column
    whose values changed type takes the type that holds both (text for incompatible kinds).
    """
    now = {c.name: c for c in current.columns}
    kept = []
    for column in stored.columns:
        fresh = now.get(column.name)
        if fresh is not None and fresh.type != column.type and column.group not in (IDENTITY_GROUP, IDENTIFIERS_GROUP):
            column = attrs.evolve(column, type=_merged(column.type, fresh.type))
        kept.append(column)
    if not lock:
        names = {c.name for c in stored.columns}
        kept += [c for c in current.columns if c.name not in names]
    return OutputLayout(tuple(kept))


def _merged(a: pa.DataType, b: pa.DataType) -> pa.DataType:
    if pa.types.is_struct(a) and pa.types.is_struct(b):  # device: its fields are fixed by the config
        children = {f.name: f.type for f in b}
        return pa.struct([(f.name, _merged(f.type, children.get(f.name, f.type))) for f in a])
    return merge_types(a, b)
