"""The run: source -> canonical -> identity + projection -> writer -> sink (DESIGN section 7).

1. Check the configuration against the plugins, open the sink and prove write access.
2. Settle the columns: from the source's schema when it declares one, otherwise by a first pass
   over the data (a one-shot source is spooled to local Arrow IPC files on the way, so memory
   stays bounded by the batch size).
3. Stream each partition through the stages; each file is committed at its final name when done.
   An incremental run passes every projected batch through a change filter first.
4. Write the run manifest, the completion marker, last. (The export center commits the export's
   state only after this returns.)
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .canonical import (
    COMM_PREFS,
    DEVICE,
    PHONE,
    PROFILE_IDS,
    PROPERTIES,
    SUBSCRIPTION_GROUPS,
    UPDATED_AT,
    Canonicalizer,
    Rejected,
    conform,
    group_of,
    merge_schemas,
    property_column,
    read_source,
)
from .config import SUBSCRIPTION_GROUPS_NAME, ExportConfig
from .display import PART_PLACEHOLDER, preview_html
from .errors import ConfigError, ExportStopped
from .executors import (
    DaskExecutor,
    Executor,
    PartitionOutcome,
    PartitionTask,
    ProcessExecutor,
    portable_plugins,
)
from .interfaces import ChangeFilter
from .layout import OutputLayout, build_layout, evolve_layout, project
from .manifest import Manifest, manifest_key
from .naming import PART_DIGITS, FileNamer
from .phones import check_region, not_e164_rows, to_e164
from .plugins import Components, ExportsPluginManager, load_components
from .progress import Progress
from .results import CommittedFile, ExportResult, PartitionStats, RejectedRecord, RunInfo
from .secrets import expand_env
from .transforms import ColumnTransforms, plan_transforms
from .urls import redact_url
from .values import count_non_finite, is_text_type, python_values

_PHONE_PROPERTY = property_column("Phone")
MAX_REJECTIONS_KEPT = 100  # the result lists this many rejected records; the count covers all
_MAX_SECONDS_AHEAD = 60  # a run looks this many seconds ahead for names no earlier run has used
# The type of a file compressed as a whole, stored without Content-Encoding (``Exporter._object_types``).
_ENCODING_TYPES = {"gzip": "application/gzip", "zstd": "application/zstd", "br": "application/x-brotli"}


@attrs.frozen(kw_only=True)
class Preview:
    """What a run would write, computed without writing anything."""

    destination: str
    folder: str
    # The files a run surely writes: the first one (more parts follow only when a file would pass
    # max_file_mb). Older versions listed parts 00000 and 00001 whether or not a second would exist.
    file_names: tuple[str, ...]
    columns: tuple[str, ...]
    rows: tuple[dict[str, Any], ...]
    # Every file's name, its part number (00000, 00001, ...) written ``{part:05d}`` (PART_PLACEHOLDER):
    # ``file_pattern.format(part=1)`` is the second file's name (unless the name has other braces).
    file_pattern: str | None = None

    @property
    def first_file(self) -> str:
        """The name of the run's first file (of the first partition)."""
        return self.file_names[0] if self.file_names else ""

    def to_text(self) -> str:
        lines = [f"destination: {self.destination}", f"folder:      {self.folder or '(root)'}"]
        lines.append(f"first file:  {self.first_file}")
        if self.file_pattern is not None:
            lines.append(f"file names:  {self.file_pattern}  (part 00000, 00001, ...)")
        lines.append("columns:     " + ", ".join(self.columns))
        lines.append("rows:")
        lines += [f"  {row}" for row in self.rows]
        return "\n".join(lines)

    __str__ = to_text

    def _repr_html_(self) -> str:  # Jupyter shows this instead of the repr
        return preview_html(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # IPython in a terminal
        printer.text(self.to_text())


@attrs.frozen(kw_only=True)
class RunContext:
    """How a managed export's run differs from a one-off run (set by the export center)."""

    export_id: str | None = None  # the registry's id (else config.export_id, else the start time)
    run: int | None = None  # the run's number in the registry
    mode: str = "full"  # "full" | "incremental" (recorded in the manifest)
    base_run: int | None = None  # the run whose state ``changes`` compares against
    columns: OutputLayout | None = None  # the export's stored columns, evolved by the schema policy
    changes: ChangeFilter | None = None  # incremental: which rows to write
    should_stop: Callable[[], bool] | None = None  # polled between batches
    manifest: bool = True


@attrs.define
class _Plan:
    """The settled shape of a run: canonical schema, output layout, and where batches come from."""

    schema: pa.Schema
    layout: OutputLayout
    spool: Path | None = None
    rejected: list[RejectedRecord] = attrs.field(factory=list)
    rejected_count: int = 0
    values_as_text: dict[str, int] = attrs.field(factory=dict)


class Exporter:
    """Runs one export configuration. Build once, ``run()`` as often as needed.

    :param plugins: extra plugin objects (modules or instances with hook implementations).
    :param strict_plugins: raise instead of skipping a third-party plugin that fails to load.
    :param progress: force the terminal progress line on or off (default: on for a terminal).
    :param dask_client: with ``execution.executor = "dask"``, a ``distributed.Client`` to run on
        (default: one for ``execution.dask_address``, else a ``LocalCluster`` started for the run).
    """

    def __init__(
        self,
        config: ExportConfig,
        *,
        plugins: Sequence[Any] = (),
        strict_plugins: bool = False,
        load_entry_points: bool = True,
        progress: bool | None = None,
        dask_client: Any = None,
    ) -> None:
        self.config = config
        self._plugins = tuple(plugins)
        self._strict_plugins = strict_plugins
        self._load_entry_points = load_entry_points
        self._dask_client = dask_client
        self.plugin_manager: ExportsPluginManager
        self.components: Components
        self.plugin_manager, self.components = load_components(
            strict=strict_plugins, load_entry_points=load_entry_points, plugins=plugins
        )
        destination = config.destination
        self.writer = self.components.writer(destination.format)
        self.compression = destination.compression or self.writer.compressions[0]
        if self.compression not in self.writer.compressions:
            raise ConfigError(
                "destination.compression",
                f"{destination.format} files support {', '.join(self.writer.compressions)}; got {self.compression!r}",
            )
        self._source_factory = self.components.source(config.source.kind)
        self._sink_factory = self.components.sink_for(destination.url)
        if config.properties.phone_format == "e164":
            check_region(config.properties.phone_region)  # and that phonenumbers is installed
        for field, name, _ in config.transforms.steps():  # an unknown transform fails now, not mid-run
            self.components.transform(name, field)
        self._progress = progress

    @property
    def extension(self) -> str:
        return str(self.writer.extension(self.compression))

    def _open_source(self) -> Any:
        options = expand_env(self.config.source.options, "source")
        source = self._source_factory(options, batch_size=self.config.source.batch_size)
        skip = getattr(source, "skip_columns", None)
        if callable(skip):  # an optional source capability: do not read what no column uses
            skip(self._unused_columns())
        return source

    def _unused_columns(self) -> frozenset[str]:
        """Source columns (names as the source spells them) that no output column of this export uses."""
        config = self.config
        unused = {UPDATED_AT}
        if not config.identifiers.clevertap_ids:
            unused.add(PROFILE_IDS)
        if SUBSCRIPTION_GROUPS_NAME not in config.properties.comm_prefs:
            unused.add(SUBSCRIPTION_GROUPS)
        if not config.properties.device:
            unused.add(DEVICE)
        if not [p for p in config.properties.comm_prefs if p != SUBSCRIPTION_GROUPS_NAME]:
            unused.add(COMM_PREFS)
        mapping = dict(config.source.mapping)
        return frozenset(mapping.get(name, name) for name in unused)

    def open_sink(self) -> Any:
        """The destination's sink (``"${NAME}"`` storage options read from the environment)."""
        destination = self.config.destination
        options = expand_env(destination.storage_options, "destination.storage_options")
        return self._sink_factory(destination.url, options, max_retries=destination.max_retries)

    def _canonicalizer(self, partition: int, source: Any) -> Canonicalizer:
        return Canonicalizer(
            mapping=self.config.source.mapping,
            skip_bad_records=self.config.source.bad_records == "skip",
            where=f"{source.describe()}, partition {partition}",
        )

    # -- preview ---------------------------------------------------------------------------------

    def preview(self, rows: int = 5, *, now: datetime | None = None) -> Preview:
        """Folder, first file names, columns and first ``rows`` output rows; writes nothing.

        For sources without a declared schema, columns come from the rows read for the preview.
        """
        started = _aware(now)
        namer = FileNamer(self.config, self.config.export_id or str(int(started.timestamp())), started)
        source = self._open_source()
        partition = source.partitions()[0]
        canonicalizer = self._canonicalizer(partition, source)
        batches: list[pa.RecordBatch] = []
        schema = _declared_schema(source, canonicalizer)
        taken = 0
        for raw in read_source(source, partition, canonicalizer.where):
            batch, _ = canonicalizer.convert(raw)
            batches.append(batch.slice(0, rows - taken))
            taken += batches[-1].num_rows
            if schema is None or taken >= rows:
                schema = merge_schemas(schema, batch.schema)
            if taken >= rows:
                break
        schema = schema if schema is not None else pa.schema([("profile_id", pa.string())])
        layout = build_layout(self.config, schema)
        transforms = self._transforms(layout)
        out_layout = transforms.layout if transforms is not None else layout
        out_rows: list[dict[str, Any]] = []
        for batch in batches:
            conformed, _ = self._phones(conform(batch, schema, {}))
            projected = project(conformed, layout, self.config)
            if transforms is not None:
                projected = transforms.apply(projected)
            columns = [python_values(c) for c in projected.columns]
            out_rows += [dict(zip(out_layout.names, values, strict=True)) for values in zip(*columns, strict=True)]
        first = namer.file_name(partition, 0, self.extension)
        part_zero = f"{0:0{PART_DIGITS}d}.{self.extension}"  # how every file name ends
        return Preview(
            destination=redact_url(self.config.destination.url),
            folder=namer.folder(partition),
            file_names=(first,),
            file_pattern=first.removesuffix(part_zero) + PART_PLACEHOLDER + part_zero[PART_DIGITS:],
            columns=out_layout.names,
            rows=tuple(out_rows),
        )

    # -- run -----------------------------------------------------------------------------------

    def run(self, *, now: datetime | None = None, context: RunContext | None = None) -> ExportResult:
        """Export once. Files are committed one by one, then the run manifest is written last."""
        started = _aware(now)
        clock = time.perf_counter()
        config = self.config
        context = context or RunContext()
        hook = self.plugin_manager.hook
        try:
            sink = self.open_sink()
        except BaseException as exc:  # an unset "${NAME}", a missing extra: the run failed all the same
            failed = self._run_info(context, started, redact_url(config.destination.url))
            hook.export_failed(run=failed, error=exc)
            raise
        if now is None:
            started = self._unused_second(sink, context, started)
        info = self._run_info(context, started, sink.display_url)
        export_id = info.export_id
        namer = FileNamer(config, export_id, started)
        progress = Progress(self._progress)
        plan: _Plan | None = None
        try:
            sink.check_access()
            sweep = getattr(sink, "sweep_leftovers", None)
            if callable(sweep):  # temporary files of this export's killed runs (local disk; logged)
                sweep(namer)
            source = self._open_source()
            hook.export_started(run=info)
            plan = self._plan(source)
            if context.columns is not None:
                lock = config.properties.user == "all" and config.properties.schema == "lock"
                plan.layout = evolve_layout(context.columns, plan.layout, lock=lock)
            transforms = self._transforms(plan.layout)  # checked before any file is written
            files: list[CommittedFile] = []
            stats: list[PartitionStats] = []
            values_as_text = dict(plan.values_as_text)

            def announce(committed: CommittedFile) -> None:
                hook.file_committed(run=info, file=committed)

            partitions = list(source.partitions())
            executor = self._executor(partitions, plan, context)
            if executor is None:
                for partition in partitions:
                    part_files, part_stats = self._run_partition(
                        source, partition, plan, sink, namer, values_as_text, progress, context, announce=announce
                    )
                    files += part_files
                    stats.append(part_stats)
                    if context.changes is not None:
                        context.changes.finish_partition(partition)
            else:
                tasks = self._tasks(export_id, started, partitions, plan, context, executor)
                try:
                    outcomes = executor.run(tasks, context.should_stop, poll_seconds=0.2)
                finally:
                    executor.close()
                for outcome in outcomes:  # in partition order
                    files += outcome.files
                    stats.append(outcome.stats)
                    _add_counts(values_as_text, outcome.values_as_text)
                    room = MAX_REJECTIONS_KEPT - len(plan.rejected)
                    plan.rejected += outcome.rejected[:room]
                    plan.rejected_count += outcome.rejected_count
                    progress.update(rows=outcome.stats.profiles_seen, files=len(outcome.files))
                    for committed in outcome.files:
                        announce(committed)
            # A source may have turned mixed values to text itself (the SQL source does, per batch).
            _add_counts(values_as_text, dict(getattr(source, "values_as_text", None) or {}))
            result = ExportResult(
                export_id=export_id,
                destination=sink.display_url,
                format=config.destination.format,
                columns=transforms.layout.names if transforms is not None else plan.layout.names,
                files=tuple(files),
                rows=sum(s.rows for s in stats),
                bytes=sum(f.bytes for f in files),
                started_at=started,
                duration_seconds=time.perf_counter() - clock,
                partitions=tuple(stats),
                rejected=tuple(plan.rejected[:MAX_REJECTIONS_KEPT]),
                rejected_count=plan.rejected_count,
                values_as_text={_display_name(k): v for k, v in values_as_text.items()},
                profiles_seen=sum(s.profiles_seen for s in stats),
                phones_not_e164=sum(s.phones_not_e164 for s in stats),
                non_finite_as_null=sum(s.non_finite_as_null for s in stats),
                layout=plan.layout,  # before transforms: what later runs' columns build on
            )
            if context.manifest:
                result = attrs.evolve(result, manifest=self._write_manifest(sink, namer, result, context))
        except BaseException as exc:
            hook.export_failed(run=info, error=exc)
            raise
        finally:
            progress.close()
            if plan is not None and plan.spool is not None:
                shutil.rmtree(plan.spool, ignore_errors=True)
            sink.close()
        hook.export_finished(run=info, result=result)
        return result

    # -- partitions elsewhere ------------------------------------------------------------------

    def _executor(self, partitions: Sequence[int], plan: _Plan, context: RunContext) -> Executor | None:
        """Where the partitions run; None: one after another in this process."""
        execution = self.config.execution
        kind = execution.executor
        process_local = self.config.destination.url.startswith("memory:") or bool(
            getattr(context.changes, "process_local", False)
        )
        if kind == "auto":
            kind = "processes" if len(partitions) > 1 and plan.spool is None and not process_local else "serial"
        if kind == "serial":
            return None
        if plan.spool is not None:
            raise ConfigError(
                "execution.executor",
                f"{kind} needs a source it can read again in other processes; this one is read once: use "
                'executor = "serial", or a file source',
            )
        if process_local:
            raise ConfigError(
                "execution.executor",
                f"{kind} workers cannot reach a memory:// destination or state (it lives in one process): use "
                'executor = "serial"',
            )
        if kind == "processes":
            return ProcessExecutor(execution.workers)
        return DaskExecutor(execution.dask_address, client=self._dask_client)

    def _tasks(
        self,
        export_id: str,
        started: datetime,
        partitions: Sequence[int],
        plan: _Plan,
        context: RunContext,
        executor: Executor,
    ) -> list[PartitionTask]:
        """One task per partition; the settings, plugins and environment are gathered once for all."""
        if not partitions:
            return []
        first = PartitionTask(
            config=self.config.to_mapping(),
            plugins=portable_plugins(self._plugins),
            load_entry_points=self._load_entry_points,
            strict_plugins=self._strict_plugins,
            export_id=export_id,
            started=started,
            partition=partitions[0],
            schema=plan.schema,
            layout=plan.layout,
            changes=context.changes,
            stop=executor.stop_signal() if context.should_stop is not None else None,
            environment=dict(os.environ) if isinstance(executor, ProcessExecutor) else None,
        )
        return [attrs.evolve(first, partition=partition) for partition in partitions]

    def run_partition(self, task: PartitionTask) -> PartitionOutcome:
        """Export one partition for a driver elsewhere (in a worker process or a Dask task)."""
        source = self._open_source()
        sink = self.open_sink()
        plan = _Plan(task.schema, task.layout)
        values_as_text: dict[str, int] = {}
        context = RunContext(changes=task.changes, should_stop=task.should_stop())
        try:
            files, stats = self._run_partition(
                source,
                task.partition,
                plan,
                sink,
                FileNamer(self.config, task.export_id, task.started),
                values_as_text,
                Progress(False),
                context,
                announce=lambda committed: None,  # the driver announces the partition's files
            )
            if task.changes is not None:
                task.changes.finish_partition(task.partition)
                task.changes.close()
        finally:
            sink.close()
        return PartitionOutcome(
            files=tuple(files),
            stats=attrs.evolve(stats, worker=f"{socket.gethostname()}:{os.getpid()}"),
            values_as_text=values_as_text,
            rejected=tuple(plan.rejected),
            rejected_count=plan.rejected_count,
        )

    def _export_id(self, context: RunContext, started: datetime) -> str:
        return context.export_id or self.config.export_id or str(int(started.timestamp()))

    def _run_info(self, context: RunContext, started: datetime, destination: str) -> RunInfo:
        config = self.config
        return RunInfo(
            export_id=self._export_id(context, started),
            account_id=config.account_id,
            name=config.name,
            destination=destination,
            format=config.destination.format,
            started_at=started,
        )

    def _unused_second(self, sink: Any, context: RunContext, started: datetime) -> datetime:
        """``started``, or the first later second whose run names are free at the destination.

        File and manifest names hold the run's start in whole seconds, so two runs started in the
        same second (``export()`` twice in a loop) would write the same keys and the second would
        replace the first. When the caller did not fix the time, the run takes the next free second.
        """
        for _ in range(_MAX_SECONDS_AHEAD):
            namer = FileNamer(self.config, self._export_id(context, started), started)
            try:
                taken = sink.exists(manifest_key(self.config.account_id, namer.export_id, namer.timestamp))
            except Exception:  # the access check reports an unreachable destination properly
                return started
            if not taken:
                return started
            started += timedelta(seconds=1)
        return started

    def _object_types(self) -> tuple[str, str | None]:
        """The Content-Type and Content-Encoding of this run's files.

        A gzip stream stored with ``Content-Encoding: gzip`` is decompressed by HTTP clients and by the
        GCS and Azure SDKs' default downloads, which then hand back bytes that are not the file the
        manifest lists (nor its sha256). So a compressed file is stored as what it is, a gzip file,
        unless ``destination.transcoding`` asks for the encoding.
        """
        encoding = self.writer.content_encoding(self.compression)
        if encoding is None or self.config.destination.transcoding:
            return self.writer.content_type, encoding
        return _ENCODING_TYPES.get(encoding, "application/octet-stream"), None

    def _write_manifest(self, sink: Any, namer: FileNamer, result: ExportResult, context: RunContext) -> CommittedFile:
        key = manifest_key(self.config.account_id, result.export_id, namer.timestamp)
        manifest = Manifest(
            export_id=result.export_id,
            account_id=self.config.account_id,
            name=self.config.name,
            run=context.run,
            mode=context.mode,
            base_run=context.base_run,
            started_at=result.started_at,
            completed_at=datetime.now(UTC),
            destination=result.destination,
            format=result.format,
            columns=result.columns,
            files=result.files,
            rows=result.rows,
            profiles_seen=result.profiles_seen,
        )
        handle = sink.open(key, content_type="application/json", content_encoding=None)
        try:
            handle.write(manifest.to_json())
            return handle.commit()
        except BaseException:
            handle.abort()
            raise

    def _plan(self, source: Any) -> _Plan:
        declared = _declared_schema(source, self._canonicalizer(0, source))
        if declared is not None:
            return _Plan(declared, build_layout(self.config, declared))
        # No declared schema: read everything once to settle the columns and their types.
        plan = _Plan(pa.schema([]), OutputLayout(()))
        schema: pa.Schema | None = None
        if not source.reiterable:
            plan.spool = Path(tempfile.mkdtemp(prefix="profile-exports-spool-"))
        for partition in source.partitions():
            canonicalizer = self._canonicalizer(partition, source)
            for number, raw in enumerate(read_source(source, partition, canonicalizer.where)):
                batch, rejected = canonicalizer.convert(raw)
                schema = merge_schemas(schema, batch.schema)
                if plan.spool is not None:
                    self._note_rejected(plan, partition, rejected)
                    _spool_write(plan.spool, partition, number, batch)
            if plan.spool is not None:
                _add_counts(plan.values_as_text, canonicalizer.values_as_text)
        plan.schema = schema if schema is not None else pa.schema([("profile_id", pa.string())])
        plan.layout = build_layout(self.config, plan.schema)
        return plan

    def _note_rejected(self, plan: _Plan, partition: int, rejected: list[Rejected]) -> None:
        plan.rejected_count += len(rejected)
        room = MAX_REJECTIONS_KEPT - len(plan.rejected)
        plan.rejected += [RejectedRecord(partition=partition, record=r.index, reason=r.reason) for r in rejected[:room]]

    def _canonical_batches(
        self, source: Any, partition: int, plan: _Plan
    ) -> Iterator[tuple[pa.RecordBatch, dict[str, int]]]:
        if plan.spool is not None:
            for batch in _spool_read(plan.spool, partition):
                yield batch, {}
            return
        canonicalizer = self._canonicalizer(partition, source)
        for raw in read_source(source, partition, canonicalizer.where):
            batch, rejected = canonicalizer.convert(raw)
            self._note_rejected(plan, partition, rejected)
            yield batch, canonicalizer.values_as_text
            canonicalizer.values_as_text = {}

    def _phones(self, batch: pa.RecordBatch) -> tuple[pa.RecordBatch, pa.Array | None]:
        """The batch with its phones in E.164 (``phone_format = "e164"``), and per row how many of its
        phones are not E.164 (None: the batch has no phone column).

        Phones are the profile's ``phone`` field and a text ``Phone`` property (a flat table's
        ``Phone`` column), which the ``Phone`` identifier and column fall back to.
        """
        wrong: pa.Array | None = None
        for name in (PHONE, _PHONE_PROPERTY):
            at = batch.schema.get_field_index(name)
            if at < 0 or not is_text_type(batch.schema.field(at).type):
                continue
            phones = batch.column(at)
            if self.config.properties.phone_format == "e164":
                phones = to_e164(phones, self.config.properties.phone_region)
                batch = batch.set_column(at, batch.schema.field(at).with_type(phones.type), phones)
            flags = not_e164_rows(phones).cast(pa.int8())
            wrong = flags if wrong is None else pc.add(wrong, flags)
        return batch, wrong

    def _transforms(self, layout: OutputLayout) -> ColumnTransforms | None:
        """The ``[transforms]`` of this export on ``layout`` (the salt read from the environment)."""
        config = self.config.transforms
        salt = config.salt
        if salt is not None:
            salt = expand_env({"salt": salt}, "transforms")["salt"]
        return plan_transforms(layout, config, self.components.transform, salt)

    def _run_partition(
        self,
        source: Any,
        partition: int,
        plan: _Plan,
        sink: Any,
        namer: FileNamer,
        values_as_text: dict[str, int],
        progress: Progress,
        context: RunContext,
        announce: Callable[[CommittedFile], None],
    ) -> tuple[list[CommittedFile], PartitionStats]:
        clock = time.perf_counter()
        rejected_before = plan.rejected_count
        content_type, content_encoding = self._object_types()

        opened: list[_Announced] = []

        def new_file(part: int) -> Any:
            progress.update(files=1)
            handle = sink.open(
                namer.key(partition, part, self.extension),
                content_type=content_type,
                content_encoding=content_encoding,
            )
            opened.append(_Announced(handle, partition, announce))
            return opened[-1]

        transforms = self._transforms(plan.layout)
        writer = self.writer.open(
            layout=transforms.layout if transforms is not None else plan.layout,
            compression=self.compression,
            max_file_bytes=self.config.destination.max_file_bytes,
            new_file=new_file,
            options={
                "parquet_layout": self.config.destination.parquet_layout,
                "spreadsheet_safe": self.config.destination.spreadsheet_safe,
                "json_non_finite": self.config.destination.json_non_finite,
            },
        )
        rows = seen = wrong_phones = 0
        config_non_finite = self.config.destination.json_non_finite
        # A format that writes NaN and the infinities as null (JSON by default): the rows written count them.
        nulls_non_finite = getattr(self.writer, "nulls_non_finite", None)
        counter = None
        if callable(nulls_non_finite) and nulls_non_finite({"json_non_finite": config_non_finite}):
            writer = counter = _NonFiniteCounter(writer)
        stopped = False
        changes = context.changes
        selected = _Selected(writer, self.config.source.batch_size) if changes is not None else None
        try:
            for batch, text_counts in self._canonical_batches(source, partition, plan):
                _add_counts(values_as_text, text_counts)
                conformed = conform(batch, plan.schema, values_as_text)
                conformed, wrong = self._phones(conformed)  # counted below over the rows written
                projected = project(conformed, plan.layout, self.config)
                if transforms is not None:
                    projected = transforms.apply(projected)
                seen += projected.num_rows
                if changes is not None and selected is not None:
                    selected.submit(changes, partition, conformed.column("profile_id"), projected, wrong)
                else:
                    writer.write(projected)
                    rows += projected.num_rows
                    wrong_phones += _total(wrong)
                progress.update(rows=batch.num_rows)
                if context.should_stop is not None and context.should_stop():
                    stopped = True  # finish the file in progress (close commits it), then end the run
                    break
            if selected is not None:
                rows += selected.finish()
                wrong_phones += selected.phones_not_e164
            files = writer.close()
        except BaseException:
            if selected is not None:
                selected.cancel()
            writer.abort()
            raise
        if stopped:
            raise ExportStopped(
                f"stop requested: partition {partition} ended after {rows} rows; the file in progress was "
                "finished, no manifest was written and the export's state was not advanced"
            )
        files = [attrs.evolve(f, partition=partition) for f in files]
        told = {handle.key for handle in opened if handle.announced}
        for committed in files:  # files of a writer that commits without commit_file
            if committed.key not in told:
                announce(committed)
        return files, PartitionStats(
            instance_id=partition,
            rows=rows,
            files=len(files),
            bytes=sum(f.bytes for f in files),
            rejected=plan.rejected_count - rejected_before,
            profiles_seen=seen,
            phones_not_e164=wrong_phones,
            non_finite_as_null=counter.count if counter is not None else 0,
            seconds=time.perf_counter() - clock,
        )


class _Selected:
    """The rows an incremental run writes, selected one batch behind, in a worker thread.

    Fingerprinting a batch (numpy, which releases the GIL) overlaps with reading and projecting the
    next one. One worker keeps the change filter's calls in order. Few rows survive the filter, so
    they are gathered up to a batch before writing: a write costs the same per column whatever its
    rows. Phones not in E.164 are counted over the selected rows only (``phones_not_e164``).
    """

    def __init__(self, writer: Any, batch_rows: int) -> None:
        self._writer = writer
        self._batch_rows = batch_rows
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="profile-exports-select")
        self._pending: Future[tuple[pa.RecordBatch, int]] | None = None
        self._held: list[pa.RecordBatch] = []
        self._held_rows = 0
        self.rows = 0
        self.phones_not_e164 = 0

    def submit(
        self, changes: ChangeFilter, partition: int, keys: pa.Array, batch: pa.RecordBatch, wrong: pa.Array | None
    ) -> None:
        """Select the rows of ``batch`` to write; ``wrong``: per row, its phones that are not E.164."""
        future = self._pool.submit(_select, changes, partition, keys, batch, wrong)
        self._take()
        self._pending = future

    def _take(self) -> None:
        if self._pending is None:
            return
        kept, wrong = self._pending.result()
        self._pending = None
        self.phones_not_e164 += wrong
        self._held.append(kept)
        self._held_rows += kept.num_rows
        self.rows += kept.num_rows
        if self._held_rows >= self._batch_rows:
            self._flush()

    def _flush(self) -> None:
        if self._held:
            self._writer.write(pa.concat_batches(self._held))
            self._held, self._held_rows = [], 0

    def finish(self) -> int:
        """Write what is left; the number of rows selected in all."""
        try:
            self._take()
            self._flush()
        finally:
            self._pool.shutdown(wait=True)
        return self.rows

    def cancel(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _select(
    changes: ChangeFilter, partition: int, keys: pa.Array, batch: pa.RecordBatch, wrong: pa.Array | None
) -> tuple[pa.RecordBatch, int]:
    """The rows of ``batch`` the change filter selects, and how many phones not in E.164 they hold.

    With a filter that gives its selection as a mask (``changed``, as ``IncrementalChanges`` does)
    the count is exact. A filter with ``select`` only returns rows, not which ones: its count is
    exact when it keeps all rows of a batch or none, else it counts the whole batch (at most).
    """
    changed = getattr(changes, "changed", None)
    if not callable(changed):
        kept = changes.select(partition, keys, batch)
        return kept, _total(wrong) if kept.num_rows else 0
    write = np.asarray(changed(partition, keys, batch), dtype=bool)
    if write.all():
        return batch, _total(wrong)
    if not write.any():
        return batch.slice(0, 0), 0
    mask = pa.array(write)
    return batch.filter(mask), _total(wrong.filter(mask) if wrong is not None else None)


def _total(wrong: pa.Array | None) -> int:
    """The sum of per-row counts (None: nothing to count)."""
    return 0 if wrong is None else int(pc.sum(wrong).as_py() or 0)


class _NonFiniteCounter:
    """A batch writer that counts the NaN and infinite floats of the rows it is given."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.count = 0

    def write(self, batch: pa.RecordBatch) -> None:
        self.count += sum(count_non_finite(column) for column in batch.columns)
        self._inner.write(batch)

    def __getattr__(self, name: str) -> Any:  # close, abort and the rest: the writer's own
        return getattr(self._inner, name)


class _Announced:
    """A sink file that tells the ``file_committed`` hook the moment it is committed (``commit_file``)."""

    def __init__(self, inner: Any, partition: int, announce: Callable[[CommittedFile], None]) -> None:
        self._inner = inner
        self._partition = partition
        self._announce = announce
        self.announced = False
        self.key = inner.key

    @property
    def bytes_written(self) -> int:
        return int(self._inner.bytes_written)

    def write(self, data: bytes | memoryview) -> None:
        self._inner.write(data)

    def commit(self) -> CommittedFile:
        return self._inner.commit()

    def abort(self) -> None:
        self._inner.abort()

    def announce(self, committed: CommittedFile) -> None:
        self.announced = True
        self._announce(attrs.evolve(committed, partition=self._partition))


def _display_name(column: str) -> str:
    """``Age`` for the canonical ``properties.Age``; other columns keep their canonical name."""
    grouped = group_of(column)
    return grouped[1] if grouped is not None and grouped[0] == PROPERTIES else column


def _add_counts(into: dict[str, int], counts: Mapping[str, int]) -> None:
    for name, count in counts.items():
        into[name] = into.get(name, 0) + count


def _aware(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


def _declared_schema(source: Any, canonicalizer: Canonicalizer) -> pa.Schema | None:
    """The canonical schema implied by the source's declared schema, without reading data."""
    raw_schema = source.schema()
    if raw_schema is None:
        return None
    empty = pa.RecordBatch.from_pylist([], schema=raw_schema)
    canonicalizer.skip_bad_records = True
    batch, _ = canonicalizer.convert(empty)
    return batch.schema


def _spool_write(folder: Path, partition: int, number: int, batch: pa.RecordBatch) -> None:
    path = folder / f"{partition}-{number:09d}.arrow"
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)


def _spool_read(folder: Path, partition: int) -> Iterator[pa.RecordBatch]:
    for path in sorted(folder.glob(f"{partition}-*.arrow")):
        with pa.OSFile(str(path), "rb") as source:
            yield from pa.ipc.open_stream(source)
        path.unlink()
