"""Faults injected for real into registered incremental exports: each run recovers by retry or fails
cleanly, loses no profile and leaves no partial file at a final name.

Every scenario runs the same story: run 1 (full) completes; half the profiles change; run 2 meets
the fault (it writes several files, so a fault can strike between them); the fault goes away, more
profiles change, and run 3 completes. Then:

- a failed run 2 is recorded as Failed, with a message saying what happened and what to do, and the
  export's state did not advance (its committed run is still 1);
- no object at a final name is a partial file (every data object decodes whole; no S3 multipart
  upload is left open);
- reading only what manifests list, in run order, later rows replacing earlier ones, gives exactly
  the current profiles: no change is lost.

``nox -s faults`` runs these (``-m faults``) and prints the summary the ``fault_report`` fixture
gathers: faults injected, runs recovered, runs failed cleanly, profiles lost, partial files visible, and
runs doubled (racing ``run-due`` processes, in tests/test_runs_under_attack.py).
"""

from __future__ import annotations

import contextlib
import gzip
import itertools
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from profile_exports.center import ExportCenter
from profile_exports.manifest import Manifest

from . import fault_plugins
from .conftest import FaultReport
from .fault_proxy import FaultProxy
from .test_center import DAY, T0, change_one_percent, expected_row, make_profiles, settings, write_jsonl
from .test_sink_s3 import MotoProcess, aws_env, moto  # noqa: F401  (the session's moto server)

pytestmark = pytest.mark.faults

PROFILES = 1200


class Store:
    """What a destination holds, read without the library: object keys and bytes."""

    def __init__(self, url: str, options: dict[str, Any], keys: Callable[[], list[str]], read: Callable[[str], bytes]):
        self.url, self.options, self.keys, self.read = url, options, keys, read
        self.open_uploads: Callable[[], int] = lambda: 0

    def manifests(self) -> list[Manifest]:
        found = [Manifest.from_json(self.read(k), key=k) for k in self.keys() if k.endswith("-manifest.json")]
        return sorted(found, key=lambda m: m.run or 0)

    def partial_files(self) -> int:
        """Objects at final names that are not whole files, and uploads left open."""
        broken = 0
        for key in self.keys():
            if key.endswith((".csv.gz", ".csv")):
                try:
                    data = self.read(key)
                    text = (gzip.decompress(data) if key.endswith(".gz") else data).decode("utf-8")
                    broken += not text.endswith("\n")  # every row, the last included, ends its line
                except (OSError, EOFError, UnicodeDecodeError):
                    broken += 1
            elif not key.endswith("-manifest.json") and ".probe" not in key:
                broken += 1  # nothing else belongs there (temporary names are not final names)
        return broken + self.open_uploads()

    def current(self, scratch: Path) -> dict[str, dict[str, str]]:
        """Rows by profile id, reading what manifests list, in run order."""
        from .conftest import read_csv

        latest: dict[str, dict[str, str]] = {}
        for manifest in self.manifests():
            for f in manifest.files:
                path = scratch / uuid.uuid4().hex
                path.write_bytes(self.read(f.key.removeprefix(self.prefix())))
                for row in read_csv(path)[1]:
                    latest[row["clevertapId"]] = row
        return latest

    def prefix(self) -> str:
        return ""


def local_store(root: Path, scheme: str = "") -> Store:
    root.mkdir(parents=True, exist_ok=True)
    url = f"{scheme}://{root}" if scheme else str(root)

    def keys() -> list[str]:
        return sorted(
            p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")
        )

    return Store(url, {}, keys, lambda key: (root / key).read_bytes())


def s3_store(server: MotoProcess, proxy: FaultProxy) -> Store:
    client = server.client()
    bucket = f"faults-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)
    options = {"endpoint_url": proxy.url, "key": "testing", "secret": "testing", "region": "us-east-1"}

    def keys() -> list[str]:
        return sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", []))

    store = Store(f"s3://{bucket}", options, keys, lambda key: client.get_object(Bucket=bucket, Key=key)["Body"].read())
    store.open_uploads = lambda: len(client.list_multipart_uploads(Bucket=bucket).get("Uploads", []))
    return store


def story(
    tmp_path: Path,
    store: Store,
    report: FaultReport,
    *,
    scenario: str,
    inject: Callable[[], Any],
    clear: Callable[[], Any],
    injected: Callable[[], int],
    expect: str,
    says: tuple[str, ...] = (),
    plugins: tuple[Any, ...] = (),
    source: dict[str, Any] | None = None,
    destination: dict[str, Any] | None = None,
    blob: int = 0,
    **more: Any,
) -> None:
    data = tmp_path / "profiles.jsonl"
    profiles = make_profiles(PROFILES)
    write_jsonl(data, profiles)
    secrets = {f"destination.storage_options.{k}": v for k, v in store.options.items()}
    center = ExportCenter(
        tmp_path / "home", state=str(tmp_path / "state"), plugins=list(plugins), credentials=lambda *_: secrets
    )
    target = {"max_file_mb": 0.006, "storage_options": store.options, "max_retries": 3, **(destination or {})}
    config = settings(data, store.url, source={"batch_size": 200, **(source or {})}, destination=target, **more)
    record = center.create(config, now=T0)
    assert center.run(record.id, now=T0).record.status == "Done"

    changed, _ = change_one_percent(profiles, seed=31)
    # and half the profiles get a new value: run 2 writes several files, so faults can strike mid-run
    changed = [{**p, "properties": {**p["properties"], "points": 1}} if i % 2 else p for i, p in enumerate(changed)]
    if blob:  # and big, incompressible names: run 2 writes a file of several multipart parts
        changed = [{**p, "properties": {**p["properties"], "Name": os.urandom(blob // 2).hex()}} for p in changed]
    write_jsonl(data, changed)
    inject()
    error = ""
    try:
        center.run(record.id, now=T0 + DAY)
    except Exception as exc:  # the center records it (if it could reach its registry); checked below
        error = f"{type(exc).__name__}: {exc}"
    finally:
        faults = injected()
        clear()
    assert faults > 0, "the fault was never injected"
    runs = center.runs(record.id)
    if expect == "recovered":
        assert not error and runs[-1].status == "Done", error
        assert center.get(record.id).committed_run == 2
    else:
        assert error, "the run was meant to fail"
        assert runs[-1].run == 1 or runs[-1].status == "Failed"  # recorded as Failed, or refused before it began
        assert center.get(record.id).committed_run == 1, "a failed run advanced the state"
        for words in says:
            assert words in error, f"{words!r} not in the message: {error}"
    partial = store.partial_files()

    latest, _ = change_one_percent(changed, seed=32)
    write_jsonl(data, latest)
    third = center.run(record.id, now=T0 + DAY + timedelta(hours=1))
    assert third.record.status == "Done"
    exported = store.current(tmp_path)
    wanted = {p["profile_id"]: expected_row(p) for p in latest}
    lost = sum(1 for pid, row in wanted.items() if exported.get(pid) != row)
    report.add(scenario, faults=faults, recovered=expect == "recovered", lost=lost, partial=partial, message=error)
    assert lost == 0 and partial == 0


# -- object store faults (S3 through a fault proxy) -------------------------------------------------------


@pytest.fixture
def proxy(moto: MotoProcess) -> Iterator[FaultProxy]:  # noqa: F811
    with FaultProxy(moto.url) as running:
        yield running


def _after(n: int, when: Callable[[Any], bool]) -> Callable[[Any], bool]:
    """A predicate true for matching requests after the first ``n`` of them."""
    seen = itertools.count(1)
    return lambda request: when(request) and next(seen) > n


S3_FAULTS = {
    # scenario: (fault, count, which requests, expected outcome, words the message must hold)
    "503 throttling on puts": ("503", 3, lambda r: r.method == "PUT", "recovered", ()),
    "500 internal error on puts": ("500", 2, lambda r: r.method == "PUT", "recovered", ()),
    "connection dropped mid-run": ("drop", 2, _after(3, lambda r: r.method == "PUT"), "recovered", ()),
    "response lost after the put": ("drop-after", 1, lambda r: r.method == "PUT", "recovered", ()),
    "403 after two files": ("403", 10**6, _after(2, lambda r: r.method == "PUT"), "failed", ("403", "s3:PutObject")),
    "retries exhausted (503 on every put)": (
        "503",
        10**6,
        _after(1, lambda r: r.method == "PUT"),
        "failed",
        ("503", "try again later"),
    ),
}


def test_s3_403_after_two_parts_of_a_multipart_upload(
    tmp_path: Path,
    moto: MotoProcess,  # noqa: F811
    proxy: FaultProxy,
    fault_report: FaultReport,
) -> None:
    store = s3_store(moto, proxy)
    store.options = {**store.options, "part_size_mb": 5}
    seen: list[tuple[str, str, str | None]] = []  # the proxy's log, taken before the fault is cleared
    story(
        tmp_path,
        store,
        fault_report,
        scenario="S3: 403 after two parts of a multipart upload",
        inject=lambda: proxy.inject("403", count=10**6, when=_after(2, lambda r: r.is_upload_part)),
        clear=proxy.clear,
        injected=lambda: seen.extend(proxy.requests) or proxy.injected,
        expect="failed",
        says=("403", "s3:PutObject"),
        destination={"compression": "none", "max_file_mb": 100},
        blob=20_000,  # 1,200 profiles of 20 KB: one 24 MB file in 5 MB parts
    )
    parts = [fault for _, target, fault in seen if "partNumber=" in target]
    assert parts[:2] == [None, None] and "403" in parts  # two parts went through, then the 403


@pytest.mark.parametrize("scenario", list(S3_FAULTS))
def test_s3_faults(
    tmp_path: Path,
    moto: MotoProcess,  # noqa: F811
    proxy: FaultProxy,
    fault_report: FaultReport,
    scenario: str,
) -> None:
    fault, count, when, expect, says = S3_FAULTS[scenario]
    store = s3_store(moto, proxy)
    story(
        tmp_path,
        store,
        fault_report,
        scenario=f"S3: {scenario}",
        inject=lambda: proxy.inject(fault, count=count, when=when),
        clear=proxy.clear,
        injected=lambda: proxy.injected,
        expect=expect,
        says=says,
    )


# -- a full disk -----------------------------------------------------------------------------------------


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[bool]:
    """A tmpfs of ``size`` at ``path`` when this process may mount one (True), else a plain folder (False)."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    try:
        yield mounted.returncode == 0
    finally:
        if mounted.returncode == 0:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_a_full_disk_fails_the_run_cleanly(tmp_path: Path, fault_report: FaultReport) -> None:
    with small_tmpfs(tmp_path / "disk", "2m") as mounted:
        root = tmp_path / "disk" / "exports"
        if mounted:  # fill the disk after run 1, free it before run 3
            filler = tmp_path / "disk" / "filler"
            store = local_store(root)

            def fill() -> None:  # all but 24 KB: run 2 starts, writes a few files, then the disk is full
                with contextlib.suppress(OSError), filler.open("wb") as f:  # its close fails too
                    while True:
                        f.write(b"\0" * 4096)
                        f.flush()
                os.truncate(filler, max(0, filler.stat().st_size - 24 * 1024))

            inject, clear = fill, lambda: filler.unlink()
            injected = lambda: 1  # noqa: E731
            scenario = "local disk full (a 2 MB tmpfs)"
        else:  # no mount permission: a sink whose writes fail with ENOSPC past a budget
            store = local_store(root, "fullfile")
            inject = lambda: os.environ.__setitem__("FAULT_DISK_BYTES", str(fault_plugins._written + 20_000))  # noqa: E731
            clear = lambda: os.environ.pop("FAULT_DISK_BYTES", None)  # noqa: E731
            injected = lambda: 1  # noqa: E731
            scenario = "local disk full (ENOSPC from an fsspec wrapper)"
        story(
            tmp_path,
            store,
            fault_report,
            scenario=scenario,
            inject=inject,
            clear=clear,
            injected=injected,
            expect="failed",
            says=("disk is full",),
            plugins=(fault_plugins,),
        )


# -- a worker process killed ----------------------------------------------------------------------------


def test_a_worker_process_killed_mid_partition_fails_the_run_cleanly(
    tmp_path: Path, fault_report: FaultReport, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = local_store(tmp_path / "out", "killfile")
    story(
        tmp_path,
        store,
        fault_report,
        scenario="worker process killed mid-partition",
        inject=lambda: monkeypatch.setenv("FAULT_KILL_PARTITION", "1"),
        clear=lambda: monkeypatch.delenv("FAULT_KILL_PARTITION"),
        injected=lambda: 1,
        expect="failed",
        says=("worker process", "died"),
        plugins=(fault_plugins,),
        execution={"executor": "processes", "workers": 2},
        source={"partitions": 2, "split": "hash"},
    )


# -- the registry locked by another process ----------------------------------------------------------------

HOLD_LOCK = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("ROLLBACK")
"""


@contextlib.contextmanager
def registry_locked(home: Path, seconds: float) -> Iterator[subprocess.Popen[str]]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(home / "registry.sqlite3"), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    try:
        yield holder
    finally:
        holder.wait(timeout=60)


@pytest.mark.parametrize("hold", ["briefly", "too long"])
def test_a_registry_locked_by_another_process(
    tmp_path: Path, fault_report: FaultReport, monkeypatch: pytest.MonkeyPatch, hold: str
) -> None:
    import profile_exports.registry as registry

    monkeypatch.setattr(registry, "BUSY_TIMEOUT_SECONDS", 2.0)
    held: list[Any] = []  # the context managers, kept alive: a collected one would release the lock
    seconds = 0.5 if hold == "briefly" else 4.0

    def lock() -> None:
        held.append(registry_locked(tmp_path / "home", seconds))
        held[-1].__enter__()

    story(
        tmp_path,
        local_store(tmp_path / "out"),
        fault_report,
        scenario=f"registry locked by another process ({hold})",
        inject=lock,
        clear=lambda: [h.__exit__(None, None, None) for h in held],  # the holder lets go and exits
        injected=lambda: len(held),
        expect="recovered" if hold == "briefly" else "failed",
        says=("registry", "locked by another process"),
    )
    with sqlite3.connect(tmp_path / "home" / "registry.sqlite3") as db:
        # held too long, run 2 was refused before it began: it changed nothing, not even its record
        assert db.execute("select count(*) from runs").fetchone()[0] == (3 if hold == "briefly" else 2)
