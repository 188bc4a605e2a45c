"""Where a run's partitions execute: in worker processes or on a Dask cluster (DESIGN section 9).

The driver (``Exporter.run``) settles the columns, then hands each partition to an executor as a
``PartitionTask``: plain settings, the schema and layout, and the change filter of an incremental
run. Workers rebuild the exporter from the settings, write the partition's files straight to the
sink and return a ``PartitionOutcome``; the driver announces the files, writes the manifest, and the
export center commits the state. The serial case never comes here: it runs in the driver itself.

File names are deterministic, so a partition that is run again (a retried Dask task, a rerun after
a crash) rewrites the same keys. A stop request reaches the workers through a ``StopSignal``; each
finishes the file in progress, then ends its partition with ``ExportStopped``.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import os
import pickle
import shutil
import signal
import tempfile
import threading
import time
import types
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from typing import Any, Protocol

import attrs
import pyarrow as pa

from .errors import ConfigError, ExportAborted, MissingExtraError
from .layout import OutputLayout
from .results import CommittedFile, PartitionStats, RejectedRecord

# How often a worker asks whether the run should stop (a Dask event is a round trip to the scheduler).
STOP_POLL_SECONDS = 1.0


class StopSignal(Protocol):
    """Picklable: set by the driver, polled by workers between batches."""

    def set(self) -> None: ...

    def is_set(self) -> bool: ...


@attrs.frozen
class FileStopSignal:
    """A flag file in a folder only the driver and its worker processes use."""

    path: str

    def set(self) -> None:
        with open(self.path, "w"):
            pass

    def is_set(self) -> bool:
        return os.path.exists(self.path)


@attrs.frozen
class DaskStopSignal:
    """A ``distributed.Event`` named for the run."""

    name: str

    def _event(self) -> Any:
        from distributed import Event

        return Event(self.name)

    def set(self) -> None:
        self._event().set()

    def is_set(self) -> bool:
        return bool(self._event().is_set())


class _Throttled:
    """``should_stop`` for a worker: the signal, asked at most every STOP_POLL_SECONDS."""

    def __init__(self, signal: StopSignal) -> None:
        self._signal = signal
        self._next = 0.0

    def __call__(self) -> bool:
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + STOP_POLL_SECONDS
        return self._signal.is_set()


@attrs.frozen
class _ModuleRef:
    """A plugin module, sent by name (modules do not pickle)."""

    name: str


def portable_plugins(plugins: Sequence[Any]) -> tuple[Any, ...]:
    """The plugins in a form that reaches another process; a clear error for one that cannot."""
    portable: list[Any] = []
    for plugin in plugins:
        if isinstance(plugin, types.ModuleType):
            portable.append(_ModuleRef(plugin.__name__))
            continue
        try:
            pickle.dumps(plugin)
        except Exception as exc:  # pickling raises many kinds of errors
            raise ConfigError(
                "execution.executor",
                f"the plugin {plugin!r} cannot be sent to worker processes ({exc}); register it through an entry "
                'point or a module, or set executor = "serial"',
            ) from None
        portable.append(plugin)
    return tuple(portable)


def restore_plugins(portable: Sequence[Any]) -> list[Any]:
    return [importlib.import_module(p.name) if isinstance(p, _ModuleRef) else p for p in portable]


@attrs.frozen(kw_only=True)
class PartitionTask:
    """Everything a worker needs to export one partition."""

    # Plain settings (ExportConfig.to_mapping()): credentials included, so never in a repr.
    config: Mapping[str, Any] = attrs.field(repr=False)
    plugins: tuple[Any, ...]
    load_entry_points: bool
    strict_plugins: bool
    export_id: str
    started: datetime
    partition: int
    schema: pa.Schema
    layout: OutputLayout
    changes: Any  # the run's ChangeFilter (picklable), or None
    stop: StopSignal | None
    # Worker processes on this machine see the driver's environment as it is now ("${NAME}"
    # references, SDK credentials), not the fork server's from when it started. Dask workers keep their own.
    environment: Mapping[str, str] | None = attrs.field(default=None, repr=False)

    def should_stop(self) -> Callable[[], bool] | None:
        return None if self.stop is None else _Throttled(self.stop)


@attrs.frozen(kw_only=True)
class PartitionOutcome:
    files: tuple[CommittedFile, ...]
    stats: PartitionStats
    values_as_text: Mapping[str, int]
    rejected: tuple[RejectedRecord, ...]
    rejected_count: int


def run_partition_task(task: PartitionTask) -> PartitionOutcome:
    """Export one partition in this (worker) process."""
    from .config import ExportConfig
    from .exporter import Exporter

    if task.environment is not None:
        os.environ.clear()
        os.environ.update(task.environment)
    exporter = Exporter(
        ExportConfig.from_mapping(task.config),
        plugins=restore_plugins(task.plugins),
        strict_plugins=task.strict_plugins,
        load_entry_points=task.load_entry_points,
        progress=False,
    )
    return exporter.run_partition(task)


class Executor(Protocol):
    def run(
        self, tasks: Sequence[PartitionTask], should_stop: Callable[[], bool] | None, poll_seconds: float
    ) -> list[PartitionOutcome]: ...

    def stop_signal(self) -> StopSignal: ...

    def close(self) -> None: ...


def _forkserver() -> Any:
    # Forking a process whose Arrow thread pools are running is unsafe; a fork server forks from a
    # clean process that has already imported the library, so each worker starts in milliseconds.
    from .plugins import BUILTIN_PLUGINS

    context = multiprocessing.get_context("forkserver")
    # Imported once in the server, not in every worker (a module that fails to import is skipped).
    context.set_forkserver_preload(
        [
            "profile_exports.exporter",
            "profile_exports.executors",
            *BUILTIN_PLUGINS,
            "pyarrow.dataset",
            "pyarrow.parquet",
        ]
    )
    _start_fork_server_deaf_to_ctrl_c()
    return context


def _start_fork_server_deaf_to_ctrl_c() -> None:
    """Start the fork server with SIGINT ignored, so it and every worker forked from it ignore it.

    Ctrl-C reaches the whole process group; the driver decides what it means (the scheduler lets
    the run finish, ``export()`` asks the workers to stop after their current file). An ignored
    signal stays ignored across exec, and Python then installs no KeyboardInterrupt handler, so
    there is no moment in a worker's start-up when Ctrl-C could kill it.
    """
    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread may change signal handlers; workers still ignore it once started
    from multiprocessing import forkserver

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        forkserver.ensure_running()
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)


def _start_worker(threads: int) -> None:
    # Arrow sizes its pools to every core of the machine in each worker; workers that all do
    # so oversubscribe the cores they share.
    pa.set_cpu_count(threads)
    pa.set_io_thread_count(threads)
    # Ctrl-C reaches the whole process group: the driver decides (the scheduler lets the run finish,
    # export() asks the workers to stop after their current file), so workers must not die of it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class ProcessExecutor:
    """Partitions in worker processes on this machine, at most ``workers`` at once."""

    def __init__(self, workers: int = 0) -> None:
        self.workers = workers or os.cpu_count() or 1
        self._folder = tempfile.mkdtemp(prefix="profile-exports-run-")

    def stop_signal(self) -> StopSignal:
        return FileStopSignal(os.path.join(self._folder, "stop"))

    def run(
        self, tasks: Sequence[PartitionTask], should_stop: Callable[[], bool] | None, poll_seconds: float
    ) -> list[PartitionOutcome]:
        if not tasks:
            return []
        signal = self.stop_signal()
        workers = min(self.workers, len(tasks))
        threads = max(1, (os.cpu_count() or 1) // workers)
        with ProcessPoolExecutor(
            max_workers=workers, mp_context=_forkserver(), initializer=_start_worker, initargs=(threads,)
        ) as pool:
            futures = [pool.submit(run_partition_task, task) for task in tasks]
            try:
                _wait_all(futures, tasks, signal, should_stop, poll_seconds)
            except BaseException:
                signal.set()  # the others finish their current file and end
                for future in futures:
                    future.cancel()
                raise
        return [future.result() for future in futures]

    def close(self) -> None:
        shutil.rmtree(self._folder, ignore_errors=True)


def _wait_all(
    futures: Sequence[Future[PartitionOutcome]],
    tasks: Sequence[PartitionTask],
    signal: StopSignal,
    should_stop: Callable[[], bool] | None,
    poll_seconds: float,
) -> None:
    """Wait for every partition; the first failure is raised (a stop is passed on to the workers)."""
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=poll_seconds, return_when=FIRST_EXCEPTION)
        for future in done:
            error = future.exception()
            if error is None:
                continue
            if isinstance(error, BrokenProcessPool):
                which = tasks[futures.index(future)].partition
                raise ExportAborted(
                    f"a worker process died while exporting partition {which} (killed, out of memory, or it could "
                    'not start: a script must start parallel exports under `if __name__ == "__main__":`); no '
                    "manifest was written and the export's state was not advanced: run the export again"
                ) from None
            raise error
        if pending and should_stop is not None and should_stop():
            signal.set()


class DaskExecutor:
    """Partitions as tasks on a ``dask.distributed`` cluster; a failed task is retried by Dask."""

    def __init__(self, address: str | None = None, client: Any = None, retries: int = 2) -> None:
        try:
            import distributed
        except ImportError:
            raise MissingExtraError('executor = "dask"', "dask", "dask[distributed]") from None
        self._distributed = distributed
        self._owned: list[Any] = []
        if client is None:
            if address is not None:
                client = distributed.Client(address)
                self._owned.append(client)
            else:
                cluster = distributed.LocalCluster(
                    n_workers=os.cpu_count() or 1,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                )
                client = distributed.Client(cluster)
                self._owned += [client, cluster]
        self.client = client
        self.retries = retries
        self._run = uuid.uuid4().hex

    def stop_signal(self) -> StopSignal:
        return DaskStopSignal(f"profile-exports-stop-{self._run}")

    def run(
        self, tasks: Sequence[PartitionTask], should_stop: Callable[[], bool] | None, poll_seconds: float
    ) -> list[PartitionOutcome]:
        if not tasks:
            return []
        signal = self.stop_signal()
        keys = [f"profile-exports-{task.export_id}-{self._run}-{task.partition}" for task in tasks]
        futures = [
            self.client.submit(run_partition_task, task, key=key, retries=self.retries, pure=False)
            for task, key in zip(tasks, keys, strict=True)
        ]
        try:
            while True:
                for future, task in zip(futures, tasks, strict=True):
                    if future.status == "error":
                        future.result()  # raises the task's error (after Dask's retries)
                    if future.status == "cancelled":
                        raise ExportAborted(
                            f"the Dask task of partition {task.partition} was cancelled; no manifest was written "
                            "and the export's state was not advanced: run the export again"
                        )
                pending = [future for future in futures if future.status != "finished"]
                if not pending:
                    break
                if should_stop is not None and should_stop():
                    signal.set()
                with contextlib.suppress(TimeoutError, self._distributed.TimeoutError):
                    self._distributed.wait(pending, timeout=poll_seconds, return_when="FIRST_COMPLETED")
        except BaseException:
            signal.set()
            for future in futures:
                future.cancel()
            raise
        return list(self.client.gather(futures))

    def close(self) -> None:
        for owned in self._owned:
            with contextlib.suppress(Exception):
                owned.close()
