"""Runs killed with SIGKILL at several points lose no change, and never pass for complete runs.

A child process runs a registered incremental export and kills itself (tests/crash_child.py). Then
the data changes again and the parent runs the export to completion. Reading only what manifests
list, in run order, later rows replacing earlier ones, must give exactly the current data: every
change, as of the latest state.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from profile_exports.center import ExportCenter
from profile_exports.manifest import read_manifests

from .conftest import read_csv
from .crash_child import CrashPlugin
from .test_center import DAY, T0, change_one_percent, expected_row, make_profiles, settings, write_jsonl

CHILD = Path(__file__).with_name("crash_child.py")
ROOT = Path(__file__).resolve().parent.parent


def _kill_run(home: Path, export_id: str, point: str, now: Any) -> None:
    done = subprocess.run(
        [sys.executable, str(CHILD), str(home), export_id, point, now.isoformat()],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == -9, f"the child was meant to die by SIGKILL at {point}: {done.returncode} {done.stderr}"


def _state_from_manifests(out: Path) -> dict[str, dict[str, str]]:
    latest: dict[str, dict[str, str]] = {}
    for manifest in read_manifests(str(out)):  # run order
        for f in manifest.files:
            for row in read_csv(f.url)[1]:
                latest[row["clevertapId"]] = row
    return latest


def _listed(out: Path) -> set[str]:
    return {f.key for m in read_manifests(str(out)) for f in m.files} | {m.key for m in read_manifests(str(out))}


@pytest.mark.parametrize("point", ["before_files", "between_files", "during_upload", "after_manifest"])
def test_a_killed_run_loses_no_change(tmp_path: Path, point: str) -> None:
    source = tmp_path / "profiles.jsonl"
    out = tmp_path / "out"
    home = tmp_path / "home"
    profiles = make_profiles(3000)
    write_jsonl(source, profiles)
    center = ExportCenter(home, plugins=[CrashPlugin()], load_entry_points=False)
    config = settings(source, f"crashfile://{out}", source={"batch_size": 200}, destination={"max_file_mb": 0.02})
    record = center.create(config, now=T0)
    first = center.run(record.id, now=T0)
    assert first.result is not None and len(first.result.files) >= 4

    # changes A, then a run that dies
    profiles_a, _ = change_one_percent(profiles, seed=21)
    profiles_a = [
        {**p, "properties": {**p["properties"], "points": 1}} if i % 2 == 0 else p for i, p in enumerate(profiles_a)
    ]
    write_jsonl(source, profiles_a)
    _kill_run(home, record.id, point, T0 + DAY)

    killed = center.runs(record.id)[-1]
    assert killed.run == 2 and killed.status == "Failed" and "ended without finishing" in (killed.error or "")
    assert center.get(record.id).status == "Failed"
    assert center.get(record.id).committed_run == 1  # the state did not move
    stray = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} - _listed(out)
    if point in ("between_files", "during_upload"):
        assert stray, "the killed run left files behind; none may count as a run"
        assert not [s for s in stray if s.endswith("-manifest.json")]
    manifests_before = read_manifests(str(out))
    assert [m.run for m in manifests_before] == ([1, 2] if point == "after_manifest" else [1])

    # changes B (some on the same profiles), then a run that completes
    profiles_b, _ = change_one_percent(profiles_a, seed=22)
    write_jsonl(source, profiles_b)
    third = center.run(record.id, now=T0 + DAY + timedelta(hours=1))
    assert third.record.status == "Done" and third.record.run == 3
    assert center.get(record.id).committed_run == 3
    assert read_manifests(str(out))[-1].base_run == 1  # compared against the last committed run

    assert _state_from_manifests(out) == {p["profile_id"]: expected_row(p) for p in profiles_b}
    # and the state is now current: another run writes nothing
    fourth = center.run(record.id, now=T0 + 2 * DAY)
    assert fourth.record.rows == 0
