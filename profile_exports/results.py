"""Frozen descriptions of runs and what they produced."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from .display import result_html

if TYPE_CHECKING:
    from .layout import OutputLayout


@attrs.frozen(kw_only=True)
class CommittedFile:
    """A file visible under its final key."""

    key: str
    url: str
    bytes: int
    sha256: str
    rows: int = 0
    partition: int = 0
    part: int = 0


def commit_file(file: Any, *, rows: int, part: int) -> CommittedFile:
    """Commit a writer's file and describe it whole (rows, part).

    Writers call this rather than ``file.commit()`` so the run hears of each file the moment it is
    visible (the ``file_committed`` hook); a writer that does not is announced when it closes.
    """
    committed = attrs.evolve(file.commit(), rows=rows, part=part)
    announce = getattr(file, "announce", None)
    if callable(announce):
        announce(committed)
    return committed


@attrs.frozen(kw_only=True)
class PartitionStats:
    instance_id: int
    rows: int
    files: int
    bytes: int
    rejected: int
    seconds: float
    profiles_seen: int = 0  # read from the source; an incremental run writes only the changed ones
    worker: str | None = None  # "host:pid" of the worker process that ran it (None: the driver)
    phones_not_e164: int = 0  # phone values written that are not E.164 (after phone_format = "e164")
    non_finite_as_null: int = 0  # NaN and infinite floats written as null (JSON, json_non_finite = "null")


@attrs.frozen(kw_only=True)
class RejectedRecord:
    """A record the run did not export (``bad_records = "skip"``), with why."""

    partition: int
    record: int
    reason: str


@attrs.frozen(kw_only=True)
class RunInfo:
    """What a run is, as lifecycle hooks see it."""

    export_id: str
    account_id: str
    name: str
    destination: str
    format: str
    started_at: datetime


@attrs.frozen(kw_only=True)
class ExportResult:
    """What a run produced. Returned by ``export()`` and ``Exporter.run()``."""

    export_id: str
    destination: str
    format: str
    columns: tuple[str, ...]
    files: tuple[CommittedFile, ...]
    rows: int
    bytes: int
    started_at: datetime
    duration_seconds: float
    partitions: tuple[PartitionStats, ...]
    rejected: tuple[RejectedRecord, ...] = ()
    rejected_count: int = 0
    values_as_text: Mapping[str, int] = attrs.field(factory=dict)
    profiles_seen: int = 0
    phones_not_e164: int = 0  # phone values that are not E.164: downstream validation would refuse them
    non_finite_as_null: int = 0  # NaN and infinite floats written as null (JSON has no numbers for them)
    manifest: CommittedFile | None = None  # the run's completion marker
    layout: OutputLayout | None = attrs.field(default=None, repr=False, eq=False)  # columns with their types

    @property
    def committed(self) -> tuple[CommittedFile, ...]:
        """Every object the run made visible: its files, then its manifest."""
        return self.files + ((self.manifest,) if self.manifest is not None else ())

    @property
    def urls(self) -> tuple[str, ...]:
        return tuple(f.url for f in self.files)

    def summary(self) -> str:
        mb = self.bytes / 1_000_000
        lines = [
            f"export {self.export_id}: {self.rows} profiles in {len(self.files)} file(s), "
            f"{mb:.2f} MB, {self.duration_seconds:.2f}s -> {self.destination}"
        ]
        lines += [f"  {f.url}  ({f.rows} rows, {f.bytes} bytes)" for f in self.files]
        if self.rejected_count:
            lines.append(f"  {self.rejected_count} record(s) rejected; first: {self.rejected[0].reason}")
        if self.phones_not_e164:
            lines.append(
                f"  {self.phones_not_e164} phone value(s) not in E.164 (+15551234567); "
                '[properties] phone_format = "e164" rewrites those it can parse'
            )
        if self.non_finite_as_null:
            lines.append(
                f"  {self.non_finite_as_null} non-finite float(s) (NaN, Infinity, -Infinity) written as null; "
                '[destination] json_non_finite = "string" writes them as the strings "NaN", "Infinity", "-Infinity"'
            )
        return "\n".join(lines)

    __str__ = summary

    def _repr_html_(self) -> str:  # Jupyter shows this instead of the repr
        return result_html(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # IPython in a terminal
        printer.text(self.summary())
