"""Local commits write only into real folders inside the destination, and leftovers of killed runs go.

A folder, or a symbolic link, where a run's file or one of its folders goes must never make a run
write through it: the run fails with a ``SinkError`` naming the path and the fix, nothing lands
outside the destination and no temporary file is left. The destination root itself may be a link.

A run killed with SIGKILL (tests/crash_child.py) leaves its hidden ``.partial`` temporary file; the
export's next run removes it, and keeps the temporary files of other exports and of live runs.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from profile_exports import Exporter
from profile_exports.api import build_config
from profile_exports.center import ExportCenter
from profile_exports.errors import SinkError
from profile_exports.manifest import read_manifests
from profile_exports.naming import FileNamer
from profile_exports.sinks.fsspec_sink import FsspecSink

from .conftest import read_csv
from .crash_child import CrashPlugin
from .test_center import DAY, T0, change_one_percent, make_profiles, settings, write_jsonl

CHILD = Path(__file__).with_name("crash_child.py")
ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2025, 10, 3, 12, 0, tzinfo=UTC)
EXPORT_ID = "1761651721"
USERS = [{"profile_id": f"p{i}", "identity": f"u{i}", "Name": f"N{i}"} for i in range(50)]
AN_HOUR_AND_MORE = 3700  # seconds: older than the age under which a temporary file is never swept


def _exporter(out: Path, **destination: Any) -> Exporter:
    config = build_config(
        USERS,
        out,
        {"format": "csv", "compression": "none", "account_id": "100000000", "export_id": EXPORT_ID, **destination},
    )
    return Exporter(config, progress=False)


def _first_key(exporter: Exporter) -> str:
    return FileNamer(exporter.config, EXPORT_ID, NOW).key(0, 0, exporter.extension)


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() or p.is_symlink())


def _partials(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*.partial")]


def test_a_folder_at_a_final_name_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    exporter = _exporter(out, folders="data_type")
    key = _first_key(exporter)
    (out / key).mkdir(parents=True)

    with pytest.raises(SinkError) as raised:
        exporter.run(now=NOW)

    message = str(raised.value)
    assert key in message and "is a folder" in message and "move or delete" in message
    assert list((out / key).iterdir()) == []  # nothing was committed into it
    assert _partials(out) == []
    assert read_manifests(str(out)) == []


def test_a_symlink_at_a_final_name_leading_outside_is_refused(tmp_path: Path) -> None:
    out, outside = tmp_path / "out", tmp_path / "outside"
    outside.mkdir()
    exporter = _exporter(out, folders="data_type")
    key = _first_key(exporter)
    (out / key).parent.mkdir(parents=True)
    (out / key).symlink_to(outside, target_is_directory=True)

    with pytest.raises(SinkError) as raised:
        exporter.run(now=NOW)

    message = str(raised.value)
    assert key in message and "symbolic link" in message and "Remove the link" in message
    assert list(outside.iterdir()) == []
    assert (out / key).is_symlink()  # the user's link is left as it was
    assert _partials(out) == [] and _partials(outside) == []


@pytest.mark.parametrize(
    ("layout", "linked"),
    [
        ({"folders": "data_type"}, "profile"),
        ({"folders": "custom", "folder_template": "{{Date}}/profiles"}, "20251003"),  # a level above the files
        ({"folders": "custom", "folder_template": "{{Date}}/profiles"}, "20251003/profiles"),
        ({"folders": "root"}, "_manifests"),  # refused by the write check, before any profile is read
    ],
)
def test_a_symlinked_folder_leading_outside_is_refused(tmp_path: Path, layout: dict[str, str], linked: str) -> None:
    out, outside = tmp_path / "out", tmp_path / "outside"
    outside.mkdir()
    exporter = _exporter(out, **layout)
    (out / linked).parent.mkdir(parents=True, exist_ok=True)
    (out / linked).symlink_to(outside, target_is_directory=True)

    with pytest.raises(SinkError) as raised:
        exporter.run(now=NOW)

    message = str(raised.value)
    assert f"'{linked}' is a symbolic link" in message and str(outside) in message
    assert "Replace it with a real folder" in message
    assert _files(outside) == []  # not a byte outside the destination
    assert _partials(out) == []


def test_a_symlink_leading_inside_the_destination_is_refused_too(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "real").mkdir(parents=True)
    (out / "profile").symlink_to(out / "real", target_is_directory=True)
    exporter = _exporter(out, folders="data_type")

    with pytest.raises(SinkError, match="'profile' is a symbolic link"):
        exporter.run(now=NOW)

    assert _files(out / "real") == []


def test_a_symlinked_destination_root_works(tmp_path: Path) -> None:
    big = tmp_path / "mnt" / "big" / "exports"
    big.mkdir(parents=True)
    (tmp_path / "exports").symlink_to(big, target_is_directory=True)
    exporter = _exporter(tmp_path / "exports", folders="run_date")

    result = exporter.run(now=NOW)

    (manifest,) = read_manifests(str(tmp_path / "exports"))
    assert [f.key for f in manifest.files] == [f.key for f in result.files] == [_first_key(exporter)]
    assert len(read_csv(str(big / result.files[0].key))[1]) == len(USERS)
    assert _partials(big) == []


# -- leftovers of killed runs ------------------------------------------------------------------------


def _kill_run(home: Path, export_id: str, point: str, now: datetime) -> None:
    done = subprocess.run(
        [sys.executable, str(CHILD), str(home), export_id, point, now.isoformat()],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == -9, f"the child was meant to die by SIGKILL: {done.returncode} {done.stderr}"


def _age(path: Path, seconds: int) -> None:
    """Set the file's modification time ``seconds`` back, as if the run had been killed that long ago."""
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_the_temporary_file_of_a_killed_run_is_swept_by_the_next_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source, out, home = tmp_path / "profiles.jsonl", tmp_path / "out", tmp_path / "home"
    profiles = make_profiles(3000)
    write_jsonl(source, profiles)
    center = ExportCenter(home, plugins=[CrashPlugin()], load_entry_points=False)
    config = settings(source, f"crashfile://{out}", source={"batch_size": 200}, destination={"max_file_mb": 0.02})
    record = center.create(config, now=T0)
    center.run(record.id, now=T0)
    changed, _ = change_one_percent(profiles, seed=21)
    write_jsonl(source, [{**p, "properties": {**p["properties"], "points": 1}} for p in changed])

    _kill_run(home, record.id, "during_upload", T0 + DAY)  # dies halfway through its third file
    (leftover,) = _partials(out)
    folder = leftover.parent
    unlisted = set(_files(out))
    # Another export's temporary file in the same folder (its id starts with this export's id), and
    # a live run's (held open, so locked), both older than an hour: neither is this sweep's to take.
    other = folder / f".100000000-{record.id}7-1767664800-0-00000.csv.gz.0123456789ab.partial"
    other.write_bytes(b"another export's file in progress")
    _age(other, AN_HOUR_AND_MORE)
    live = FsspecSink(str(out), {}).open(f"{folder.name}/100000000-{record.id}-1767664800-0-00000.csv.gz")
    live.write(b"a live run's file in progress")
    (live_temp,) = set(_partials(out)) - {leftover, other}
    _age(live_temp, AN_HOUR_AND_MORE)

    center.run(record.id, now=T0 + DAY + DAY / 24)  # a run right after the kill: the file may be a live one's
    assert leftover.exists()

    _age(leftover, AN_HOUR_AND_MORE)
    with caplog.at_level(logging.INFO, logger="profile_exports"):
        center.run(record.id, now=T0 + 2 * DAY)

    assert not leftover.exists()
    assert other.exists() and live_temp.exists()
    assert [r.getMessage() for r in caplog.records if "temporary file" in r.getMessage()] == [
        f"{out}: removed 1 temporary file(s) left by killed runs of export {record.id}"
    ]
    # The whole files the killed run committed stay: no manifest lists them (see docs/guarantees.md).
    assert unlisted - {leftover.relative_to(out).as_posix()} <= set(_files(out))
    live.abort()
    assert _partials(out) == [other]
