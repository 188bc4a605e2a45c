"""Column transforms: PII controls applied to every output batch before it is written or fingerprinted.

``[transforms]`` names output columns (as exported, after renames): ``hash`` replaces each value
with its salted SHA-256, ``drop`` leaves the column out, and ``apply = { <name> = [columns] }``
runs a plugin's transform (``register_transforms`` hook). The layout of the files (column names,
order and types) is the layout after the transforms, in every format; incremental exports
fingerprint the transformed rows, so a value that changes only where it was dropped is no change.

A named column that the export does not have is a ``ConfigError``: a misspelt column in a PII
setting must not let the real column out unhashed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import attrs
import pyarrow as pa

from .config import TransformsConfig
from .errors import ConfigError, PluginError
from .layout import OutputColumn, OutputLayout

__all__ = ["ColumnTransforms", "Transform", "TransformContext", "plan_transforms"]


@attrs.frozen
class TransformContext:
    """What a transform is told about the column it transforms."""

    column: str
    salt: str | None = attrs.field(default=None, repr=False)
    options: Mapping[str, Any] = attrs.field(factory=dict, repr=False)


class Transform(Protocol):
    name: str

    def output_type(self, type_: pa.DataType) -> pa.DataType | None:
        """The type of the transformed column; None leaves the column out."""
        ...

    def apply(self, column: pa.Array, context: TransformContext) -> pa.Array: ...


@attrs.frozen
class _Step:
    index: int  # of the column in the projected batch
    transform: Any  # None: the column as projected
    context: TransformContext | None
    type: pa.DataType


@attrs.frozen
class ColumnTransforms:
    """The layout the transforms give, and how they turn a projected batch into it."""

    layout: OutputLayout
    steps: tuple[_Step, ...]

    def apply(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        arrays = []
        for step in self.steps:
            column = batch.column(step.index)
            if step.transform is not None and step.context is not None:
                column = step.transform.apply(column, step.context)
                if column.type != step.type or len(column) != batch.num_rows:
                    raise PluginError(
                        f"transform {step.transform.name!r} returned {len(column)} values of type {column.type} "
                        f"for column {step.context.column!r}; expected {batch.num_rows} of type {step.type}"
                    )
            arrays.append(column)
        return pa.RecordBatch.from_arrays(arrays, schema=self.layout.schema)


def plan_transforms(
    layout: OutputLayout, config: TransformsConfig, lookup: Any, salt: str | None
) -> ColumnTransforms | None:
    """The transforms of an export's layout (None when it has none).

    :param lookup: ``lookup(name, field)`` gives the registered transform (``Components.transform``).
    :param salt: the salt, read from the environment if the setting refers to it.
    """
    steps = config.steps()
    if not steps:
        return None
    chosen: dict[str, tuple[Any, TransformContext]] = {}
    for field, name, target in steps:
        if target not in layout.names:
            raise ConfigError(
                field,
                f"the export has no column {target!r} (columns are named as exported, after renames: "
                f"{', '.join(layout.names)})",
            )
        transform = lookup(name, field)
        chosen[target] = (transform, TransformContext(target, salt, dict(config.options.get(name) or {})))
    columns: list[OutputColumn] = []
    plan: list[_Step] = []
    for index, column in enumerate(layout.columns):
        if column.name not in chosen:
            columns.append(column)
            plan.append(_Step(index, None, None, column.type))
            continue
        transform, context = chosen[column.name]
        type_ = transform.output_type(column.type)
        if type_ is None:
            continue
        columns.append(attrs.evolve(column, type=type_))
        plan.append(_Step(index, transform, context, type_))
    if not columns:
        raise ConfigError("transforms.drop", "drops every column of the export; keep at least one")
    return ColumnTransforms(OutputLayout(tuple(columns)), tuple(plan))
