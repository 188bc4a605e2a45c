"""Runs of one managed export that race each other or meet a clock stepped back (issue 16, items 1-3).

Real processes (``python -c`` children importing the helpers below), a real SQLite registry and real
files. The judge is always the same: reading only what the manifests list, in ``read_manifests``
order, later rows replacing earlier ones, must give exactly the source's current profiles, and every
listed file must still hold the bytes its manifest lists (no run replaced another's file).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from profile_exports.center import ExportCenter
from profile_exports.manifest import Manifest, read_manifests
from profile_exports.registry import ExportBusy, ExportNotDue

from .conftest import FaultReport, read_csv
from .test_center import DAY, T0, expected_row, make_profiles, settings, write_jsonl

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

ROOT = Path(__file__).resolve().parent.parent
PROFILES = 2000
WAIT_SECONDS = 120.0


# -- what the children run ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _source_lock(source: Path) -> Iterator[None]:
    """Both children change the one source file: one read-modify-write at a time."""
    with open(source.with_suffix(".lock"), "w") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def change_and_run(home: str, export_id: str, source: str, runs: str, seed: str, now: str) -> None:
    """Change a few profiles, run the export; ``runs`` times. ``now``: an ISO time, or "clock"."""
    center = ExportCenter(home, load_entry_points=False)
    rng = random.Random(int(seed))
    path = Path(source)
    for _ in range(int(runs)):
        with _source_lock(path):
            profiles = [json.loads(line) for line in path.read_text().splitlines()]
            for index in rng.sample(range(len(profiles)), 25):
                profiles[index]["properties"]["points"] = rng.randrange(1_000_000)
            spare = path.with_name(f"{path.name}.{os.getpid()}")
            write_jsonl(spare, profiles)
            os.replace(spare, path)  # a run reading meanwhile keeps the whole old file
        when = None if now == "clock" else datetime.fromisoformat(now)
        while True:
            try:
                center.run(export_id, now=when)
                break
            except ExportBusy:  # the other child's run: back to back, right after it
                time.sleep(0.005)


def gated_run_due(home: str, listed: str, go: str) -> None:
    """``run_due`` that, once it has listed the due exports, waits for ``go`` before running them."""

    def gate() -> bool:
        Path(listed).touch()
        _wait_for(lambda: Path(go).exists(), "the go signal")
        return True

    outcomes = ExportCenter(home, load_entry_points=False).run_due(should_continue=gate)
    print(f"runs made: {len(outcomes)}", flush=True)


def _wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {WAIT_SECONDS:g} s for {what}")
        time.sleep(0.02)


def _child(call: str, *args: Any) -> list[str]:
    script = f"import sys; from tests.test_runs_under_attack import {call}; {call}(*sys.argv[1:])"
    return [sys.executable, "-c", script, *map(str, args)]


# -- reading back ----------------------------------------------------------------------------------------


def _replayed(out: Path) -> dict[str, dict[str, str]]:
    latest: dict[str, dict[str, str]] = {}
    for manifest in read_manifests(str(out)):
        for f in manifest.files:
            for row in read_csv(f.url)[1]:
                latest[row["clevertapId"]] = row
    return latest


def _replaced_files(manifests: list[Manifest], out: Path) -> list[str]:
    """Listed files whose bytes are no longer the ones their manifest lists."""
    return [
        f.key for m in manifests for f in m.files if hashlib.sha256((out / f.key).read_bytes()).hexdigest() != f.sha256
    ]


def _current(source: Path) -> dict[str, dict[str, str]]:
    return {p["profile_id"]: expected_row(p) for p in map(json.loads, source.read_text().splitlines())}


# -- 1. two processes running one export back to back lose no change ------------------------------------------


@pytest.mark.parametrize("now", ["fixed", "clock"])
def test_two_processes_running_one_export_back_to_back_lose_no_change(tmp_path: Path, now: str) -> None:
    """Every run starts in the same second (``now`` fixed) or within a second or so (the clock)."""
    source, out, home = tmp_path / "profiles.jsonl", tmp_path / "out", tmp_path / "home"
    write_jsonl(source, make_profiles(PROFILES))
    center = ExportCenter(home, load_entry_points=False)
    record = center.create(settings(source, str(out)), now=T0)
    when = T0.isoformat() if now == "fixed" else "clock"
    children = [
        subprocess.Popen(_child("change_and_run", home, record.id, source, 6, seed, when), cwd=ROOT) for seed in (1, 2)
    ]
    for child in children:
        assert child.wait(timeout=300) == 0
    # the last change of either child was made after its own last run: one more run exports it
    center.run(record.id, now=T0 if now == "fixed" else None)

    runs = center.runs(record.id)
    assert [r.status for r in runs] == ["Done"] * 13
    manifests = read_manifests(str(out))
    assert [m.run for m in manifests] == list(range(1, 14)), "a run's manifest was replaced by another's"
    assert _replaced_files(manifests, out) == []
    assert _replayed(out) == _current(source)


# -- 2. two run-due processes run a due one-time export once -------------------------------------------------


@pytest.mark.faults
@pytest.mark.parametrize("first", ["run-due", "scheduler"])
def test_two_run_due_processes_run_a_due_one_time_export_once(
    tmp_path: Path, first: str, fault_report: FaultReport
) -> None:
    """B lists the export as due, then A (``run-due`` or the ``scheduler``) runs it to Done; then B goes on."""
    source, out, home = tmp_path / "profiles.jsonl", tmp_path / "out", tmp_path / "home"
    write_jsonl(source, make_profiles(200))
    center = ExportCenter(home, load_entry_points=False)
    once = settings(source, str(out), schedule={"frequency": "once", "mode": "full"})
    record = center.create(once, now=datetime.now(UTC) - timedelta(minutes=1))
    listed, go = tmp_path / "listed", tmp_path / "go"
    second = subprocess.Popen(_child("gated_run_due", home, listed, go), cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        _wait_for(listed.exists, "the second run-due to list the due exports")
        command = [sys.executable, "-m", "profile_exports", first, "--home", str(home)]
        if first == "run-due":
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stderr
        else:
            scheduler = subprocess.Popen(
                [*command, "--interval", "0.2"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            _wait_for(lambda: [r.status for r in center.runs(record.id)] == ["Done"], "the scheduler's run")
            scheduler.send_signal(signal.SIGTERM)
            said, _ = scheduler.communicate(timeout=60)
            assert scheduler.returncode == 0 and "stopped after 1 run(s)" in said, said
        go.touch()
        said, _ = second.communicate(timeout=300)
    finally:
        go.touch()
        if second.poll() is None:
            second.kill()
            second.wait()
    runs = center.runs(record.id)
    doubled = len(runs) - 1
    fault_report.add(
        f"two run-due processes, one-time export ({first})",
        faults=1,
        recovered=doubled == 0,
        lost=0,
        partial=0,
        doubled=doubled,
    )
    assert second.returncode == 0 and "runs made: 0" in said, said
    assert [(r.run, r.status) for r in runs] == [(1, "Done")]
    assert center.get(record.id).status == "Done"
    assert len(read_manifests(str(out))) == 1


def test_a_scheduled_claim_rechecks_that_the_export_is_due_and_a_manual_run_does_not(tmp_path: Path) -> None:
    source = tmp_path / "profiles.jsonl"
    write_jsonl(source, make_profiles(30))
    center = ExportCenter(tmp_path / "home", load_entry_points=False)
    record = center.create(settings(source, str(tmp_path / "out"), schedule={"frequency": "once"}), now=T0)
    assert center.run(record.id, now=T0, trigger="schedule").record.status == "Done"
    with pytest.raises(ExportNotDue, match="not due"):
        center.run(record.id, now=T0 + DAY, trigger="schedule")
    assert [r.run for r in center.runs(record.id)] == [1]  # refused before a run was recorded
    again = center.run(record.id, now=T0 + DAY)  # by hand: a one-time export that is Done runs again
    assert again.record.run == 2 and again.record.trigger == "manual" and center.get(record.id).status == "Done"

    daily = center.create(settings(source, str(tmp_path / "daily")), now=T0)
    center.run(daily.id, now=T0, trigger="schedule")  # next slot T0 + DAY
    with pytest.raises(ExportNotDue):
        center.run(daily.id, now=T0 + DAY - timedelta(seconds=1), trigger="schedule")
    assert center.run(daily.id, now=T0 + DAY, trigger="schedule").record.run == 2


# -- 3. a clock stepped back ------------------------------------------------------------------------------


def test_a_clock_stepped_back_neither_reorders_runs_nor_overwrites_an_earlier_runs_files(tmp_path: Path) -> None:
    source, out = tmp_path / "profiles.jsonl", tmp_path / "out"
    profiles = make_profiles(PROFILES)
    write_jsonl(source, profiles)
    center = ExportCenter(tmp_path / "home", load_entry_points=False)
    record = center.create(settings(source, str(out)), now=T0)
    rng = random.Random(5)
    # run 1 a day on; then the clock steps back a day; then it lands on run 1's very second
    for when in (T0 + DAY, T0, T0 + DAY, T0 + DAY - timedelta(seconds=1)):
        for index in rng.sample(range(len(profiles)), 40):
            profiles[index]["properties"]["points"] = rng.randrange(1_000_000)
        write_jsonl(source, profiles)
        assert center.run(record.id, now=when).record.status == "Done"

    manifests = read_manifests(str(out))
    assert [m.run for m in manifests] == [1, 2, 3, 4]
    assert _replaced_files(manifests, out) == []
    assert len({m.key for m in manifests}) == 4
    assert _replayed(out) == _current(source)
