"""The export center: managed exports that run once or on a schedule, in full or incrementally.

``ExportCenter`` ties the registry (SQLite), the fingerprint state (Parquet under a state
directory) and the exporter together, with the run protocol of DESIGN section 7:

1. claim the export (its lock; the run is recorded as Running);
2. run it: files committed one by one, an incremental run writing only new and changed profiles
   while it records every profile's fingerprint in the run's own state folder;
3. the exporter writes the manifest last;
4. only then, in one registry transaction, the run is recorded as Done and its state (fingerprints
   and columns) becomes the export's committed state.

A run that dies before step 4 changes nothing the next run relies on: it compares against the same
committed state, so every change since then is exported again.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs

from .config import ExportConfig
from .display import run_outcome_html, run_outcome_text
from .errors import ConfigError, ExportStopped, ProfileExportsError
from .exporter import Exporter, RunContext
from .layout import layout_from_bytes, layout_to_bytes
from .registry import (
    DONE,
    FAILED,
    SCHEDULE,
    STOPPED,
    Claim,
    ExportBusy,
    ExportNotDue,
    ExportRecord,
    Registry,
    RunRecord,
)
from .results import ExportResult
from .secrets import Credentials, restore, withhold
from .state import FingerprintStore, IncrementalChanges
from .urls import protocol_of, redact_url

log = logging.getLogger("profile_exports.center")

HOME_VARIABLE = "PROFILE_EXPORTS_HOME"
SINK_KINDS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "az": "azure", "abfs": "azure", "abfss": "azure"}
STOP_POLL_SECONDS = 1.0


def default_home() -> Path:
    """``$PROFILE_EXPORTS_HOME``, else ``~/.profile-exports``."""
    return Path(os.environ.get(HOME_VARIABLE) or Path.home() / ".profile-exports")


@attrs.frozen(kw_only=True)
class RunOutcome:
    """A run as the registry recorded it, and what it wrote (None when it wrote no complete run)."""

    record: RunRecord
    result: ExportResult | None

    def __str__(self) -> str:
        return run_outcome_text(self)

    def _repr_html_(self) -> str:  # Jupyter shows this instead of the repr
        return run_outcome_html(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # IPython in a terminal
        printer.text(run_outcome_text(self))


class ExportCenter:
    """Create, list, run and stop managed exports.

    :param home: registry folder (default ``$PROFILE_EXPORTS_HOME`` or ``~/.profile-exports``).
    :param state: where fingerprint state lives, any fsspec URL (default ``<home>/state``).
    :param credentials: ``credentials(export_id, withheld_paths) -> {path: value}`` supplies values
        that were withheld from the registry because they looked like credentials.
    :param stop_poll_seconds: how often a running export checks whether it was stopped.
    """

    def __init__(
        self,
        home: str | os.PathLike[str] | None = None,
        *,
        state: str | None = None,
        state_options: Mapping[str, Any] | None = None,
        plugins: Sequence[Any] = (),
        strict_plugins: bool = False,
        load_entry_points: bool = True,
        credentials: Credentials | None = None,
        progress: bool | None = False,
        stop_poll_seconds: float = STOP_POLL_SECONDS,
    ) -> None:
        self.home = Path(home) if home is not None else default_home()
        self.registry = Registry(self.home)
        self.state = FingerprintStore(state or str(self.home / "state"), state_options)
        self._plugins = tuple(plugins)
        self._strict = strict_plugins
        self._entry_points = load_entry_points
        self._credentials = credentials
        self._progress = progress
        self._stop_poll = stop_poll_seconds  # how often a run looks for a stop request

    def _exporter(self, config: ExportConfig) -> Exporter:
        return Exporter(
            config,
            plugins=self._plugins,
            strict_plugins=self._strict,
            load_entry_points=self._entry_points,
            progress=self._progress,
        )

    # -- managing ------------------------------------------------------------------------------------

    def create(
        self, config: ExportConfig | Mapping[str, Any] | str | os.PathLike[str], *, now: datetime | None = None
    ) -> ExportRecord:
        """Validate, preflight (source opens, destination writable) and register an export.

        The export is immutable from here on; to change one, stop it and create another. It is due
        at once: ``run_due`` (or ``exports run``) runs it.
        """
        if isinstance(config, str | os.PathLike):
            config = ExportConfig.from_file(Path(config))
        elif not isinstance(config, ExportConfig):
            config = ExportConfig.from_mapping(config)
        settings = config.to_mapping()
        try:
            json.dumps(settings)
        except (TypeError, ValueError):
            raise ConfigError(
                "source",
                "a managed export reads its source again at every run, so its settings must be plain values "
                "(paths, URLs, numbers), not in-memory data; use export() for a one-off run of in-memory data",
            ) from None
        exporter = self._exporter(config)
        exporter._open_source().partitions()
        sink = exporter.open_sink()
        try:
            sink.check_access()
        finally:
            sink.close()
        safe, withheld = withhold(settings)
        return self.registry.add(
            export_id=config.export_id,
            name=config.name,
            account_id=config.account_id,
            sink=SINK_KINDS.get(protocol_of(config.destination.url), protocol_of(config.destination.url)),
            format=config.destination.format,
            destination=redact_url(config.destination.url),
            frequency=config.schedule.frequency,
            every_hours=config.schedule.every_hours,
            mode=config.schedule.mode,
            settings=safe,
            withheld=withheld,
            now=_aware(now),
        )

    def list(self, **filters: str | None) -> builtins.list[ExportRecord]:
        """Filter by ``sink``, ``data_type``, ``status``, ``frequency``; ``search`` by id or name."""
        return self.registry.list(**filters)

    def get(self, export_id: str) -> ExportRecord:
        return self.registry.get(export_id)

    def runs(self, export_id: str) -> builtins.list[RunRecord]:
        return self.registry.runs(export_id)

    def stop(self, export_id: str) -> ExportRecord:
        return self.registry.stop(export_id)

    def config_of(self, record: ExportRecord) -> ExportConfig:
        values: Mapping[str, Any] = {}
        if record.withheld:
            values = self._credentials(record.id, record.withheld) if self._credentials else {}
        return ExportConfig.from_mapping(restore(record.settings, record.withheld, values, record.id))

    # -- running -------------------------------------------------------------------------------------

    def run(self, export_id: str, *, now: datetime | None = None, trigger: str = "manual") -> RunOutcome:
        """Run an export now, whatever its schedule. Raises what the run raised, after recording it.

        ``trigger="schedule"`` runs it only if it is still due when claimed (else ``ExportNotDue``).
        The run starts at ``now``, or at the first later second no earlier run of the export holds.
        """
        started = _aware(now)
        record = self.registry.get(export_id)
        claim = self.registry.claim(export_id, mode=record.mode, trigger=trigger, now=started)
        record = claim.export
        incremental = record.mode == "incremental"
        base_run = record.committed_run if incremental else None
        changes = IncrementalChanges(self.state, export_id, claim.run, base_run) if incremental else None
        outcome_status, error, result = FAILED, None, None
        try:
            mode = self._run_mode(claim, changes)  # "full" too when the base run's state is missing or damaged
            base_run = changes.base_run if changes is not None else None
            config = self.config_of(record)
            context = RunContext(
                export_id=export_id,
                run=claim.run,
                mode=mode,  # as the registry records it: "full" until there is a base run
                base_run=base_run,
                columns=layout_from_bytes(record.columns) if record.columns else None,
                changes=changes,
                should_stop=self._stop_poller(export_id),
            )
            # the registry's start, never taken by another run of the export: the run's names are its own
            result = self._exporter(config).run(now=claim.started_at, context=context)
            outcome_status = DONE
        except ExportStopped as exc:
            outcome_status, error = STOPPED, str(exc)
            raise
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, ProfileExportsError) else str(exc)
            raise
        finally:
            # Every step runs whatever failed before it, and none hides the run's own error: a full disk
            # fails the run, then the state's close and maybe the registry too.
            failing = outcome_status != DONE  # the run's error is on its way up
            cleanup_error = _close_state(changes, failing)
            if cleanup_error is not None and not failing:  # its state is incomplete: it cannot count
                outcome_status, error = FAILED, str(cleanup_error)
            ended = datetime.now(UTC)
            committed = outcome_status == DONE and result is not None
            if not committed:
                self.state.discard(export_id, claim.run)  # frees the space a partial state file took
            with _reported_if(failing, f"recording run {claim.run} of export {export_id} as {outcome_status}"):
                claim.finish(
                    status=outcome_status,
                    now=ended,
                    next_run_at=_next_run(record, started),
                    rows=result.rows if result else None,
                    files=len(result.files) if result else None,
                    bytes=result.bytes if result else None,
                    profiles_seen=result.profiles_seen if result else None,
                    manifest=result.manifest.url if result and result.manifest else None,
                    error=error,
                    commit_state=(
                        (claim.run, layout_to_bytes(result.layout)) if result is not None and result.layout else None
                    )
                    if committed
                    else None,
                )
            if committed and incremental:
                self.state.prune(export_id, keep=claim.run)
            if cleanup_error is not None and not failing:
                raise cleanup_error
        runs = self.registry.runs(export_id)
        return RunOutcome(record=next(r for r in runs if r.run == claim.run), result=result)

    def run_due(
        self, *, now: datetime | None = None, should_continue: Callable[[], bool] | None = None
    ) -> builtins.list[RunOutcome]:
        """Run every export whose time has come, one after another; a failing one does not stop the rest.

        An export running elsewhere is skipped. Returns the runs made (failed ones included).
        """
        outcomes = []
        for record in self.registry.due(_aware(now)):
            if should_continue is not None and not should_continue():
                break
            try:
                outcomes.append(self.run(record.id, now=now, trigger=SCHEDULE))
            except ExportBusy:
                log.info("export %s is running elsewhere; skipped", record.id)
            except ExportNotDue:
                log.info("export %s was run elsewhere since it was listed; skipped", record.id)
            except Exception as exc:  # recorded as Failed by run(); one export never stops the others
                if isinstance(exc, ProfileExportsError | OSError):
                    log.error("export %s failed: %s", record.id, exc)
                else:
                    log.exception("export %s failed unexpectedly", record.id)
                failed = [r for r in self.registry.runs(record.id) if r.status in (FAILED, STOPPED)]
                if failed:
                    outcomes.append(RunOutcome(record=failed[-1], result=None))
        return outcomes

    def next_due(self) -> datetime | None:
        """When the next export is due (None: none is scheduled)."""
        times = [
            r.next_run_at for r in self.registry.list() if r.next_run_at is not None and r.status not in (STOPPED,)
        ]
        return min(times) if times else None

    def _run_mode(self, claim: Claim, changes: IncrementalChanges | None) -> str:
        """The run's mode: "full", recorded with why, when the base run's state is missing or damaged."""
        problem = changes.check_base() if changes is not None else None
        if problem is None:
            return claim.mode
        note = (
            f"{problem}: this run compared against nothing and exported every profile (a full run); "
            "the state it records makes the next run incremental again"
        )
        log.info("export %s run %s: %s", claim.export_id, claim.run, note)
        self.registry.note_run(claim.export_id, claim.run, mode="full", note=note)
        return "full"

    def _stop_poller(self, export_id: str) -> Callable[[], bool]:
        last = [-float("inf"), False]

        def should_stop() -> bool:
            clock = time.monotonic()
            if clock - float(last[0]) >= self._stop_poll:
                last[0], last[1] = clock, self.registry.stop_requested(export_id)
            return bool(last[1])

        return should_stop


def _close_state(changes: IncrementalChanges | None, failing: bool) -> Exception | None:
    """Close the run's fingerprint files; the error doing so, if any (a failing run's files are let go)."""
    if changes is None:
        return None
    if failing:
        changes.abort()  # its state is discarded: finishing the file could only fail again
        return None
    try:
        changes.close()
    except Exception as exc:
        return exc
    return None


@contextlib.contextmanager
def _reported_if(failing: bool, what: str) -> Iterator[None]:
    """While a run's error is on its way up, a cleanup step's error is logged, never raised over it."""
    try:
        yield
    except Exception as exc:
        if not failing:
            raise
        log.error("%s failed too (the run's own error follows): %s", what, exc)


def _next_run(record: ExportRecord, started: datetime) -> datetime | None:
    """The next slot of a recurring export; None for a one-time export."""
    if record.frequency != "recurring":
        return None
    every = timedelta(hours=record.every_hours)
    slot = record.next_run_at or started
    if slot > started:  # run by hand before its time: the schedule stays
        return slot
    while slot <= started:
        slot += every
    return slot


def _aware(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)
