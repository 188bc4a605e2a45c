"""The export registry: exports, their status and run history, in one SQLite file.

Statuses follow the reference product: an export is Pending until its run starts, Running while
it runs, then Done (one-time) or Pending again (recurring, waiting for its next slot); Failed when
its last run failed; Stopped when stopped by hand, after which it never runs again.

One export never runs twice at once, even from two processes: a run holds an exclusive ``flock``
on ``locks/<export-id>.lock`` beside the database for its whole life and claims the export's row
in a write transaction. The operating system drops the ``flock`` when the process dies however it
dies, so a row claimed by a dead process is recognised (the lock file can be locked again) and its
run is recorded as Failed the next time anyone looks.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import shutil
import socket
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs

from .errors import ConfigError, ProfileExportsError, StateDamaged, StateUnwritable

try:  # the registry's cross-process lock; every POSIX system has flock
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

PENDING, RUNNING, STOPPED, DONE, FAILED = "Pending", "Running", "Stopped", "Done", "Failed"
STATUSES = (PENDING, RUNNING, STOPPED, DONE, FAILED)
SCHEDULE = "schedule"  # the trigger of runs made because they were due (run_due, the scheduler)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS exports (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    account_id TEXT NOT NULL,
    sink TEXT NOT NULL,
    data_type TEXT NOT NULL,
    format TEXT NOT NULL,
    destination TEXT NOT NULL,
    frequency TEXT NOT NULL,
    every_hours INTEGER NOT NULL,
    mode TEXT NOT NULL,
    settings TEXT NOT NULL,
    withheld TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    next_run_at TEXT,
    stop_requested INTEGER NOT NULL DEFAULT 0,
    columns BLOB,
    committed_run INTEGER,
    lock_token TEXT,
    lock_pid INTEGER,
    lock_host TEXT
);
CREATE TABLE IF NOT EXISTS runs (
    export_id TEXT NOT NULL REFERENCES exports(id),
    run INTEGER NOT NULL,
    status TEXT NOT NULL,
    mode TEXT NOT NULL,
    trigger TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    rows INTEGER,
    files INTEGER,
    bytes INTEGER,
    profiles_seen INTEGER,
    manifest TEXT,
    error TEXT,
    note TEXT,
    PRIMARY KEY (export_id, run)
);
"""


_VERSION = 2  # PRAGMA user_version: the upgrades of Registry._upgrade applied


class ExportNotFound(ConfigError):
    def __init__(self, export_id: str) -> None:
        super().__init__(
            "export_id", f"no export {export_id!r} in the registry; `profile-exports exports list` shows them"
        )


class ExportBusy(ProfileExportsError):
    """The export is running in another process (or thread) right now."""


class RegistryLocked(ProfileExportsError):
    """Another process held the registry database locked for longer than ``BUSY_TIMEOUT_SECONDS``."""


# How long a registry operation waits for another process's write to finish before giving up.
BUSY_TIMEOUT_SECONDS = 30.0
_HOME_VARIABLE = "PROFILE_EXPORTS_HOME"  # as center.HOME_VARIABLE (which imports this module)
_LOW_SPACE_BYTES = 1 << 20  # below this, a disk error writing the registry is a full disk


class ExportNotRunnable(ProfileExportsError):
    """The export's status forbids a run (it was stopped)."""


class ExportNotDue(ProfileExportsError):
    """A scheduled run found the export no longer due when it claimed it (another process ran it)."""


@attrs.frozen(kw_only=True)
class RunRecord:
    export_id: str
    run: int
    status: str
    mode: str
    trigger: str  # "schedule" | "manual"
    started_at: datetime
    ended_at: datetime | None
    rows: int | None
    files: int | None
    bytes: int | None
    profiles_seen: int | None
    manifest: str | None
    error: str | None
    note: str | None = None  # why the run differs from what its export asks for (a full run of an incremental one)

    def to_dict(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in attrs.asdict(self).items()}


@attrs.frozen(kw_only=True)
class ExportRecord:
    id: str
    name: str
    account_id: str
    sink: str
    data_type: str
    format: str
    destination: str  # redacted
    frequency: str
    every_hours: int
    mode: str
    status: str
    created_at: datetime
    next_run_at: datetime | None
    settings: dict[str, Any] = attrs.field(repr=False)  # credentials withheld
    withheld: tuple[str, ...] = ()
    committed_run: int | None = None
    columns: bytes | None = attrs.field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self, filter=lambda a, v: a.name not in ("columns",))
        data["withheld"] = list(self.withheld)
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in data.items()}


def _free_bytes(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _iso(value: datetime | None) -> str | None:
    """UTC in one fixed format, so SQL compares times as text correctly."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00") if value is not None else None


class Registry:
    """Exports and runs in ``<home>/registry.sqlite3``; locks in ``<home>/locks/``."""

    def __init__(self, home: str | os.PathLike[str]) -> None:
        self.home = Path(home)
        self.path = self.home / "registry.sqlite3"
        self.read_only = self._prepare_home()
        if not self.path.exists():
            self._create()
        version = self._check()
        if version < _VERSION and not self.read_only:
            self._upgrade()

    def _prepare_home(self) -> bool:
        """Make the home and its lock folder; True when the home can only be read."""
        try:
            self.home.mkdir(parents=True, exist_ok=True)
            if os.access(self.home, os.W_OK):  # false for a read-only mount, root included
                (self.home / "locks").mkdir(exist_ok=True)
                return not os.access(self.path, os.W_OK) if self.path.exists() else False
        except OSError as exc:
            raise StateUnwritable(
                f"cannot create the export center's home {self.home}: {exc.strerror}; choose a writable "
                f"folder with --home or ${_HOME_VARIABLE}",
                path=str(self.home),
            ) from exc
        if not self.path.exists():
            raise StateUnwritable(
                f"cannot create the registry {self.path}: the folder {self.home} is read-only; make it writable, "
                f"or choose another folder with --home or ${_HOME_VARIABLE}",
                path=str(self.path),
            )
        return True

    def _create(self) -> None:
        """A new registry, with its tables, put in place whole.

        The file at the final name always holds the schema, so a registry of 0 bytes (or without the
        tables) is damage, never a new registry: it is built under a temporary name, then linked to
        the final name, which fails if another process created the registry meanwhile.
        """
        temporary = self.home / f".registry.sqlite3.{uuid.uuid4().hex}.new"
        try:
            db = sqlite3.connect(temporary, isolation_level=None)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(_SCHEMA)
            finally:
                db.close()
            try:
                os.link(temporary, self.path)
            except FileExistsError:
                pass  # another process created it: theirs is as good
            except OSError:  # a file system without hard links
                if not self.path.exists():
                    os.replace(temporary, self.path)
        except sqlite3.DatabaseError as exc:
            raise self._explain(exc) from exc
        finally:
            with contextlib.suppress(OSError):
                temporary.unlink()

    def _check(self) -> int:
        """The schema version of an existing registry; ``StateDamaged`` if it is not a whole registry."""
        with self._connect() as db:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if not {"exports", "runs"} <= tables:
            raise self._damaged("it has no export tables")
        return version

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        timeout = BUSY_TIMEOUT_SECONDS
        try:
            db = self._open(timeout)
        except sqlite3.DatabaseError as exc:
            raise self._explain(exc) from exc
        db.row_factory = sqlite3.Row
        try:
            if not self.read_only:
                db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
            yield db
        except sqlite3.DatabaseError as exc:
            explained = self._explain(exc)
            if explained is exc:
                raise
            raise explained from exc
        finally:
            db.close()

    def _open(self, timeout: float) -> sqlite3.Connection:
        """A connection that never creates the file: a registry deleted meanwhile is an error, not a new one.

        In a read-only home SQLite cannot make the ``-shm`` file WAL readers need, so the registry is
        read as immutable (nothing can write it there either); only when a ``-wal`` file holds changes
        not yet in the database is it read through the WAL, which then needs its ``-shm`` file. A
        registry file that is read-only in a writable home is read the ordinary way.
        """
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            raise self._damaged("deleted while this program was using it") from None
        if size == 0:  # checked first: SQLite would take it for a new database and write one over it
            raise self._damaged("")
        mode = "rw"
        if self.read_only:
            wal = self.path.with_name(self.path.name + "-wal")
            readable_as_is = (wal.exists() and wal.stat().st_size) or os.access(self.home, os.W_OK)
            mode = "ro" if readable_as_is else "ro&immutable=1"
        uri = f"{self.path.absolute().as_uri()}?mode={mode}"
        return sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None)

    def _explain(self, exc: sqlite3.DatabaseError) -> Exception:
        """The error a failed registry operation means for the user; ``exc`` itself when it is none of these."""
        text = str(exc).lower()
        if "locked" in text or "busy" in text:
            return RegistryLocked(
                f"the registry {self.path} is locked by another process (waited {BUSY_TIMEOUT_SECONDS:g} s): "
                "another scheduler or a tool holding the database open; nothing was changed, so run again once "
                "it is done, or find that process (e.g. fuser on the file)"
            )
        if any(s in text for s in ("not a database", "malformed", "no such table")):
            return self._damaged(f"SQLite says: {exc}")
        if "unable to open" in text and not self.path.exists():
            return self._damaged("deleted while this program was using it")
        if "readonly" in text or "read-only" in text or "unable to open" in text:
            return StateUnwritable(
                f"cannot write the registry {self.path} (SQLite says: {exc}); the folder {self.home} must be "
                "writable to create, run or stop exports (`exports list`, `show` and `runs` work read-only)",
                path=str(self.path),
            )
        if "disk is full" in text or "disk i/o error" in text:
            return StateUnwritable(self._disk_trouble(exc), path=str(self.path))
        return exc

    def _disk_trouble(self, exc: sqlite3.DatabaseError) -> str:
        free = _free_bytes(self.home)
        if free is not None and free < _LOW_SPACE_BYTES:
            why = f"the disk holding {self.home} is full ({free // 1024} KB free)"
            what = "free space there and run again"
        else:
            why = f"the disk holding {self.home} reported an error (SQLite says: {exc})"
            what = "check that disk (dmesg, fsck) and run again"
        return f"cannot use the registry {self.path}: {why}; nothing was recorded, so {what}"

    def _damaged(self, reason: str) -> StateDamaged:
        if not self.path.exists():
            return StateDamaged(
                f"the registry {self.path} is gone ({reason}); restore it from a backup, or start again: the next "
                "command creates an empty registry (the exports it held are forgotten; their files and manifests "
                "stay at their destinations)",
                path=str(self.path),
            )
        if self.path.stat().st_size == 0:
            reason = (
                "it is empty (0 bytes), and a registry is never empty once created: it was truncated "
                "(a full disk, a crash, a copy cut short)"
            )
        return StateDamaged(
            f"the registry {self.path} is damaged: {reason}. Restore it from a backup; or move it aside "
            "to start an empty registry (the exports it held are forgotten; their files and manifests stay "
            "at their destinations, and their state under the state directory is no longer used)",
            path=str(self.path),
        )

    def _upgrade(self) -> None:
        """Bring a registry written by an older version to ``_VERSION`` (once)."""
        with self._write() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version >= _VERSION:
                return  # another process did it meanwhile
            if version < 1:
                # Version 1: the runs of an incremental export before its first Done run were recorded as
                # "incremental"; they were full runs (nothing to compare against), as their manifests say.
                db.execute(
                    "UPDATE runs SET mode = 'full' WHERE mode = 'incremental' AND NOT EXISTS ("
                    "SELECT 1 FROM runs AS earlier WHERE earlier.export_id = runs.export_id "
                    "AND earlier.run < runs.run AND earlier.status = ?)",
                    (DONE,),
                )
            if "note" not in {r["name"] for r in db.execute("PRAGMA table_info(runs)")}:
                # Version 2: a run says why it is not what its export asks for (a full run of an incremental
                # export whose state was missing or damaged); a new registry has the column already.
                db.execute("ALTER TABLE runs ADD COLUMN note TEXT")
            db.execute(f"PRAGMA user_version = {_VERSION}")

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken up front, so read-then-write decisions cannot interleave."""
        if self.read_only:
            raise StateUnwritable(
                f"cannot change the registry {self.path}: the folder {self.home} is read-only; `exports list`, "
                "`show` and `runs` work, but creating, running or stopping exports needs it writable "
                f"(remount it read-write, or copy the home elsewhere and point --home or ${_HOME_VARIABLE} to it)",
                path=str(self.path),
            )
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                # SQLite may have rolled back already (a full disk): the first error is the one to report
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # -- exports -----------------------------------------------------------------------------------

    def add(
        self,
        *,
        export_id: str | None,
        name: str,
        account_id: str,
        sink: str,
        format: str,
        destination: str,
        frequency: str,
        every_hours: int,
        mode: str,
        settings: dict[str, Any],
        withheld: Sequence[str],
        now: datetime,
    ) -> ExportRecord:
        with self._write() as db:
            if export_id is None:
                taken = {r[0] for r in db.execute("SELECT id FROM exports")}
                number = int(now.timestamp())
                while str(number) in taken:
                    number += 1
                export_id = str(number)
            elif db.execute("SELECT 1 FROM exports WHERE id = ?", (export_id,)).fetchone():
                raise ConfigError(
                    "export_id", f"export {export_id} already exists; leave export_id out to get a new one"
                )
            settings = {**settings, "export_id": export_id}
            db.execute(
                "INSERT INTO exports (id, name, account_id, sink, data_type, format, destination, frequency, "
                "every_hours, mode, settings, withheld, status, created_at, next_run_at) "
                "VALUES (?, ?, ?, ?, 'profile', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    export_id,
                    name,
                    account_id,
                    sink,
                    format,
                    destination,
                    frequency,
                    every_hours,
                    mode,
                    json.dumps(settings),
                    json.dumps(list(withheld)),
                    PENDING,
                    _iso(now),
                    _iso(now),  # a one-time export runs at once; a recurring one's first run is now too
                ),
            )
        return self.get(export_id)

    def get(self, export_id: str) -> ExportRecord:
        self.reap()
        with self._connect() as db:
            row = db.execute("SELECT * FROM exports WHERE id = ?", (export_id,)).fetchone()
        if row is None:
            raise ExportNotFound(export_id)
        return _export(row)

    def list(
        self,
        *,
        sink: str | None = None,
        data_type: str | None = None,
        status: str | None = None,
        frequency: str | None = None,
        search: str | None = None,
    ) -> builtins.list[ExportRecord]:
        """Exports, oldest first, filtered; ``search`` matches the id exactly or part of the name."""
        self.reap()
        clauses, values = [], []
        for column, value in (("sink", sink), ("data_type", data_type), ("status", status), ("frequency", frequency)):
            if value is not None:
                clauses.append(f"lower({column}) = lower(?)")
                values.append(value)
        if search:
            clauses.append("(id = ? OR lower(name) LIKE lower(?))")
            values += [search, f"%{search}%"]
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._connect() as db:
            rows = db.execute(f"SELECT * FROM exports {where} ORDER BY created_at, id", values).fetchall()
        return [_export(r) for r in rows]

    def runs(self, export_id: str) -> builtins.list[RunRecord]:
        self.get(export_id)
        with self._connect() as db:
            rows = db.execute("SELECT * FROM runs WHERE export_id = ? ORDER BY run", (export_id,)).fetchall()
        return [_run(r) for r in rows]

    def due(self, now: datetime) -> builtins.list[ExportRecord]:
        self.reap()
        with self._connect() as db:
            rows = db.execute(
                "SELECT * FROM exports WHERE status IN (?, ?) AND next_run_at IS NOT NULL AND next_run_at <= ? "
                "ORDER BY next_run_at, id",
                (PENDING, FAILED, _iso(now)),
            ).fetchall()
        return [_export(r) for r in rows]

    def stop(self, export_id: str) -> ExportRecord:
        """Stopped for good; a run in progress sees the request and ends after its current file."""
        self.get(export_id)
        with self._write() as db:
            db.execute(
                "UPDATE exports SET status = ?, next_run_at = NULL, "
                "stop_requested = CASE WHEN lock_token IS NULL THEN 0 ELSE 1 END WHERE id = ?",
                (STOPPED, export_id),
            )
        return self.get(export_id)

    def stop_requested(self, export_id: str) -> bool:
        with self._connect() as db:
            row = db.execute("SELECT stop_requested, status FROM exports WHERE id = ?", (export_id,)).fetchone()
        return bool(row and (row["stop_requested"] or row["status"] == STOPPED))

    def note_run(self, export_id: str, run: int, *, mode: str, note: str) -> None:
        """Record that a run has another mode than claimed, and why (shown by ``runs`` and the CLI)."""
        with self._write() as db:
            db.execute(
                "UPDATE runs SET mode = ?, note = ? WHERE export_id = ? AND run = ?", (mode, note, export_id, run)
            )

    # -- runs ----------------------------------------------------------------------------------------

    def claim(self, export_id: str, *, mode: str, trigger: str, now: datetime) -> Claim:
        """Start a run: take the export's lock and record the run as Running.

        The run is recorded with the mode it has (``Claim.mode``): an incremental export's run is
        ``full`` while the export has no committed run to compare against (its first run, or every
        run until one is done).

        A scheduled run (``trigger="schedule"``) is refused with ``ExportNotDue`` unless the export
        is still due, checked in the claiming transaction: another process may have run it since
        this one listed it. A manual run runs whatever the schedule, a Done one-time export too.

        The run's start (``Claim.started_at``) is ``now``, or the first later second that no earlier
        run of the export holds: run names carry the start in whole seconds, so two runs never share
        names, whoever picked the time and wherever the clock stood.
        """
        lock = _FileLock(self.home / "locks" / f"{export_id}.lock")
        if not lock.acquire():
            raise ExportBusy(f"export {export_id} is running in another process; wait for it or stop it")
        try:
            self.reap()
            token = uuid.uuid4().hex
            with self._write() as db:
                row = db.execute("SELECT * FROM exports WHERE id = ?", (export_id,)).fetchone()
                if row is None:
                    raise ExportNotFound(export_id)
                if row["status"] == STOPPED:
                    raise ExportNotRunnable(f"export {export_id} was stopped and never runs again; create a new one")
                if row["lock_token"] is not None:  # we hold the lock, so its last holder died mid-run
                    _record_dead_run(db, row)
                    row = db.execute("SELECT * FROM exports WHERE id = ?", (export_id,)).fetchone()
                due = trigger != SCHEDULE or _is_due(row, now)
                if due:
                    run, started = _number_run(db, export_id, now)
                    mode = run_mode(mode, row["committed_run"])
                    db.execute(
                        "UPDATE exports SET status = ?, lock_token = ?, lock_pid = ?, lock_host = ?, "
                        "stop_requested = 0 WHERE id = ?",
                        (RUNNING, token, os.getpid(), socket.gethostname(), export_id),
                    )
                    db.execute(
                        "INSERT INTO runs (export_id, run, status, mode, trigger, started_at) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (export_id, run, RUNNING, mode, trigger, _iso(started)),
                    )
            if not due:  # raised after the commit, which keeps a dead holder's run recorded
                raise ExportNotDue(
                    f"export {export_id} is not due any more (status {row['status']}, next run "
                    f"{row['next_run_at'] or 'none'}), so a scheduled run was refused (another run-due or scheduler "
                    "may have run it since it was listed); nothing was run. `exports run ID` runs it by hand"
                )
            return Claim(self, lock, export_id, run, token, _export(row), mode, started_at=started)
        except BaseException:
            lock.release()
            raise

    def reap(self) -> None:
        """Record runs whose process died (killed, crashed, power lost) as Failed."""
        if self.read_only:
            return  # nothing can be recorded: such a run shows as Running until the home is writable
        with self._connect() as db:
            held = db.execute("SELECT id, lock_pid, lock_host FROM exports WHERE lock_token IS NOT NULL").fetchall()
        for row in held:
            lock = _FileLock(self.home / "locks" / f"{row['id']}.lock")
            if not lock.acquire():
                continue  # its process is alive and running it
            try:
                with self._write() as db:
                    still = db.execute("SELECT * FROM exports WHERE id = ?", (row["id"],)).fetchone()
                    if still is not None and still["lock_token"] is not None:
                        _record_dead_run(db, still)
            finally:
                lock.release()


def _is_due(row: sqlite3.Row, now: datetime) -> bool:
    """The test ``due`` lists exports by, for one export row."""
    slot = row["next_run_at"]
    return bool(row["status"] in (PENDING, FAILED) and slot is not None and slot <= _iso(now))


def _number_run(db: sqlite3.Connection, export_id: str, now: datetime) -> tuple[int, datetime]:
    """The next run number, and the run's start: ``now`` moved past the seconds earlier runs hold.

    Every claimed run is in the table, killed ones too, so a run never takes the names of any earlier
    run: not when runs start within one second, nor when the clock stepped back onto an earlier
    run's second. Runs started faster than one a second get consecutive seconds.
    """
    (last,) = db.execute("SELECT COALESCE(MAX(run), 0) FROM runs WHERE export_id = ?", (export_id,)).fetchone()
    floor = now.replace(microsecond=0)
    held = {
        int(datetime.fromisoformat(value).timestamp())
        for (value,) in db.execute(
            "SELECT started_at FROM runs WHERE export_id = ? AND started_at >= ?", (export_id, _iso(floor))
        )
    }
    started = now
    while int(started.timestamp()) in held:
        started += timedelta(seconds=1)
    return int(last) + 1, started


def run_mode(export_mode: str, committed_run: int | None) -> str:
    """The mode a run of an export has: incremental only with a committed run to compare against."""
    return "full" if export_mode == "incremental" and committed_run is None else export_mode


def _record_dead_run(db: sqlite3.Connection, row: sqlite3.Row) -> None:
    error = (
        f"the run's process (pid {row['lock_pid']} on {row['lock_host']}) ended without finishing "
        "(killed or crashed); no part of it counts as a complete run, and the next run exports every change "
        "since the last committed run"
    )
    db.execute(
        "UPDATE runs SET status = ?, ended_at = ?, error = ? WHERE export_id = ? AND status = ?",
        (FAILED, _iso(datetime.now(UTC)), error, row["id"], RUNNING),
    )
    status = STOPPED if row["status"] == STOPPED else FAILED
    db.execute(
        "UPDATE exports SET status = ?, lock_token = NULL, lock_pid = NULL, lock_host = NULL, "
        "stop_requested = 0 WHERE id = ?",
        (status, row["id"]),
    )


class Claim:
    """A run in progress: holds the export's lock until ``finish``."""

    def __init__(
        self,
        registry: Registry,
        lock: _FileLock,
        export_id: str,
        run: int,
        token: str,
        export: ExportRecord,
        mode: str | None = None,
        *,
        started_at: datetime | None = None,
    ) -> None:
        self.registry = registry
        self.lock = lock
        self.export_id = export_id
        self.run = run
        self.token = token
        self.export = export
        self.mode = mode or export.mode  # the run's mode: "full" for an incremental export's first run
        # the start the run is recorded with and names its files and manifest by (see Registry.claim)
        self.started_at = started_at or datetime.now(UTC)

    def finish(
        self,
        *,
        status: str,
        now: datetime,
        next_run_at: datetime | None,
        rows: int | None = None,
        files: int | None = None,
        bytes: int | None = None,
        profiles_seen: int | None = None,
        manifest: str | None = None,
        error: str | None = None,
        commit_state: tuple[int, bytes] | None = None,
    ) -> None:
        """Record the run's end and, in the same transaction, the export's new state (run and columns)."""
        try:
            with self.registry._write() as db:
                row = db.execute("SELECT status, lock_token FROM exports WHERE id = ?", (self.export_id,)).fetchone()
                if row is None or row["lock_token"] != self.token:
                    return  # reaped meanwhile (cannot happen while the lock is held, but never clobber)
                db.execute(
                    "UPDATE runs SET status = ?, ended_at = ?, rows = ?, files = ?, bytes = ?, profiles_seen = ?, "
                    "manifest = ?, error = ? WHERE export_id = ? AND run = ?",
                    (status, _iso(now), rows, files, bytes, profiles_seen, manifest, error, self.export_id, self.run),
                )
                if row["status"] == STOPPED:  # stopped while running: stays stopped
                    export_status, next_run_at = STOPPED, None
                elif status == DONE:
                    export_status = DONE if next_run_at is None else PENDING
                else:
                    export_status = FAILED
                db.execute(
                    "UPDATE exports SET status = ?, next_run_at = ?, lock_token = NULL, lock_pid = NULL, "
                    "lock_host = NULL, stop_requested = 0 WHERE id = ?",
                    (export_status, _iso(next_run_at), self.export_id),
                )
                if commit_state is not None:
                    db.execute(
                        "UPDATE exports SET committed_run = ?, columns = ? WHERE id = ?",
                        (commit_state[0], commit_state[1], self.export_id),
                    )
        finally:
            self.lock.release()


class _FileLock:
    """An exclusive, non-blocking ``flock``; released by the OS when its process dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StateUnwritable(
                f"cannot open the lock file {self.path}: {exc.strerror}; a run needs the export center's home "
                "writable (`exports list`, `show` and `runs` work without)",
                path=str(self.path),
            ) from exc
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the descriptor drops the flock


def _export(row: sqlite3.Row) -> ExportRecord:
    return ExportRecord(
        id=row["id"],
        name=row["name"],
        account_id=row["account_id"],
        sink=row["sink"],
        data_type=row["data_type"],
        format=row["format"],
        destination=row["destination"],
        frequency=row["frequency"],
        every_hours=row["every_hours"],
        mode=row["mode"],
        status=row["status"],
        created_at=_time(row["created_at"]) or datetime.now(UTC),
        next_run_at=_time(row["next_run_at"]),
        settings=json.loads(row["settings"]),
        withheld=tuple(json.loads(row["withheld"])),
        committed_run=row["committed_run"],
        columns=row["columns"],
    )


def _run(row: sqlite3.Row) -> RunRecord:
    return RunRecord(
        export_id=row["export_id"],
        run=row["run"],
        status=row["status"],
        mode=row["mode"],
        trigger=row["trigger"],
        started_at=_time(row["started_at"]) or datetime.now(UTC),
        ended_at=_time(row["ended_at"]),
        rows=row["rows"],
        files=row["files"],
        bytes=row["bytes"],
        profiles_seen=row["profiles_seen"],
        manifest=row["manifest"],
        error=row["error"],
        # a read-only registry may predate the column; `in row` would look among the values
        note=row["note"] if "note" in row.keys() else None,  # noqa: SIM118
    )
