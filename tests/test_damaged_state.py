"""The export center's own files damaged or out of room, for real: a home on a full 2 MB tmpfs, a
registry truncated to 0 bytes or overwritten with garbage, a read-only home (a read-only bind mount:
root ignores file modes), a truncated or damaged fingerprint file, a deleted state folder.

Each is checked through the real CLI (``cli.main``): the exit status, a one-line message naming
the file and what to do, never a traceback; and then that what the message says holds.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import sqlite3
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest
from fsspec.implementations.local import LocalFileSystem

from profile_exports import cli
from profile_exports.center import ExportCenter
from profile_exports.errors import StateDamaged
from profile_exports.manifest import Manifest


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_line_error(err: str) -> str:
    """The message of a failed command: one line, no traceback."""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def _profiles(count: int, changed: range = range(0)) -> list[dict[str, Any]]:
    return [{"profile_id": f"p{i:06d}", "Name": f"Name {i}{'*' if i in changed else ''}"} for i in range(count)]


def _write(path: Path, profiles: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(p) + "\n" for p in profiles))


class Story:
    """A recurring incremental export whose run 1 is done; its data, home and destination."""

    def __init__(self, tmp_path: Path, home: Path, count: int, state: str | None = None) -> None:
        self.home, self.count, self.state = home, count, state
        self.data = tmp_path / "profiles.jsonl"
        _write(self.data, _profiles(count))
        center = self.center()
        self.id = center.create(
            {
                "name": "damaged-state",
                "source": {"kind": "jsonl", "path": str(self.data)},
                "destination": {"url": str(tmp_path / "out"), "format": "csv"},
                "schedule": {"frequency": "recurring", "every_hours": 24, "mode": "incremental"},
            }
        ).id
        assert center.run(self.id).record.rows == count

    def center(self) -> ExportCenter:
        return ExportCenter(self.home, state=self.state)

    def args(self) -> list[str]:
        return ["--home", str(self.home), *(["--state", self.state] if self.state else [])]

    def change(self, changed: range) -> None:
        _write(self.data, _profiles(self.count, changed))

    def state_folder(self, run: int) -> Path:
        return self.home / "state" / self.id / f"run-{run:06d}"

    def fingerprints(self, run: int) -> Path:
        return self.state_folder(run) / "instance=0" / "fingerprints.parquet"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- a full home disk ------------------------------------------------------------------------------------


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


class FullDisk(LocalFileSystem):
    """Where no tmpfs can be mounted: local files whose writes fail with ENOSPC while ``full`` is set."""

    protocol = "fulldisk"
    full = False

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        return super()._strip_protocol(str(path).removeprefix("fulldisk://"))

    def _open(self, path: Any, mode: str = "rb", **kwargs: Any) -> Any:
        handle = super()._open(path, mode, **kwargs)
        if "w" in mode:
            write = handle.write

            def failing(data: Any) -> Any:
                if FullDisk.full:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                return write(data)

            handle.write = failing
        return handle


def _fill(disk: Path, leave: int) -> Path:
    """Fill the disk, then give back ``leave`` bytes; the file to delete to free it."""
    filler = disk / "filler"
    with contextlib.suppress(OSError), filler.open("wb") as f:  # its close fails too
        while True:
            f.write(b"\0" * 65536)
            f.flush()
    os.truncate(filler, max(0, filler.stat().st_size - leave))
    return filler


def test_a_full_home_disk_fails_the_run_cleanly_and_the_next_run_works(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """20,000 profiles need 320 KB of fingerprints; the disk has 200 KB left (enough for the registry)."""
    disk = tmp_path / "disk"
    with small_tmpfs(disk, "2m") as mounted:
        if mounted:
            story = Story(tmp_path, disk / "home", 20_000)
        else:
            fsspec.register_implementation("fulldisk", FullDisk, clobber=True)
            story = Story(tmp_path, disk / "home", 20_000, state=f"fulldisk://{disk / 'home' / 'state'}")
        committed = _digest(story.fingerprints(1))
        story.change(range(0, 20_000, 20))  # 1,000 changed profiles

        if mounted:
            free_again = _fill(disk, leave=200 * 1024).unlink
        else:
            FullDisk.full = True
            free_again = lambda: setattr(FullDisk, "full", False)  # noqa: E731
        try:
            code, _, err = _cli(capsys, "exports", "run", story.id, *story.args())
            message = _one_line_error(err)
            assert code == 1
            assert str(story.fingerprints(2)) in message
            assert "the disk is full" in message and "free space" in message
            # the cleanup ran: the partial state is gone, the run is recorded, its lock released
            assert not story.state_folder(2).exists()
            assert _digest(story.fingerprints(1)) == committed
            runs = story.center().runs(story.id)
            assert [(r.run, r.status) for r in runs] == [(1, "Done"), (2, "Failed")]
            assert str(story.fingerprints(2)) in (runs[1].error or "")
            assert story.center().get(story.id).committed_run == 1
            code, out, _ = _cli(capsys, "exports", "list", *story.args())  # still on the nearly full disk
            assert code == 0 and story.id in out
        finally:
            free_again()

        code, _, err = _cli(capsys, "exports", "run", story.id, *story.args())
        assert code == 0, err
        last = story.center().runs(story.id)[-1]
        assert (last.run, last.status, last.mode, last.rows) == (3, "Done", "incremental", 1_000)


# -- the registry ----------------------------------------------------------------------------------------


def test_a_registry_truncated_to_zero_bytes_is_damage_not_an_empty_registry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fresh = tmp_path / "fresh"
    code, out, _ = _cli(capsys, "exports", "list", "--home", str(fresh))
    assert (code, out.strip()) == (0, "(none)")  # a new home is an empty registry...
    assert (fresh / "registry.sqlite3").stat().st_size > 0  # ...whose file holds the schema from the start

    story = Story(tmp_path, tmp_path / "home", 20)
    registry = story.home / "registry.sqlite3"
    os.truncate(registry, 0)
    for command in (["exports", "list"], ["exports", "runs", story.id], ["exports", "run", story.id]):
        code, out, err = _cli(capsys, *command, *story.args())
        message = _one_line_error(err)
        assert (code, out) == (1, "")
        assert str(registry) in message and "0 bytes" in message and "backup" in message
    assert registry.stat().st_size == 0  # reported, not written over
    with pytest.raises(StateDamaged):
        story.center()


def test_a_registry_overwritten_with_garbage_is_reported_as_damaged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    story = Story(tmp_path, tmp_path / "home", 20)
    registry = story.home / "registry.sqlite3"
    garbage = hashlib.sha256(b"garbage").digest() * 256  # 8 KB
    registry.write_bytes(garbage)
    for command in (["exports", "list"], ["exports", "show", story.id], ["run-due"]):
        code, out, err = _cli(capsys, *command, *story.args())
        message = _one_line_error(err)
        assert (code, out) == (1, "")
        assert str(registry) in message and "damaged" in message and "not a database" in message
        assert "backup" in message and "move it aside" in message
    assert registry.read_bytes() == garbage


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """``folder`` read-only for this process, root included: a read-only bind mount (chmod where that
    is not allowed, which stops any user but root)."""
    bound = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True).returncode == 0
    if bound and subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], capture_output=True).returncode:
        subprocess.run(["umount", str(folder)], capture_output=True)
        bound = False
    modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")]}
    if not bound:
        for path, mode in modes.items():
            path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        with pytest.raises(OSError, match=r"Read-only|Permission denied"):
            (folder / "probe").touch()  # else this test proves nothing (root, without mount permission)
        yield
    finally:
        if bound:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)
        else:
            for path, mode in modes.items():
                path.chmod(mode)


def test_a_read_only_home_still_answers_list_show_and_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    story = Story(tmp_path, tmp_path / "home", 20)
    before = _digest(story.home / "registry.sqlite3")
    with read_only(story.home):
        code, out, err = _cli(capsys, "exports", "list", *story.args())
        assert (code, err) == (0, "") and story.id in out and "Pending" in out
        code, out, err = _cli(capsys, "exports", "show", story.id, *story.args())
        assert (code, err) == (0, "") and "committed run  1" in out
        code, out, err = _cli(capsys, "exports", "runs", story.id, "--json", *story.args())
        assert (code, err) == (0, "") and [(r["run"], r["status"]) for r in json.loads(out)] == [(1, "Done")]

        for command in (["exports", "run", story.id], ["exports", "stop", story.id]):
            code, _, err = _cli(capsys, *command, *story.args())
            message = _one_line_error(err)
            assert code == 1
            assert str(story.home) in message and "writable" in message
            assert "`exports list`, `show` and `runs` work" in message
    assert _digest(story.home / "registry.sqlite3") == before
    assert [(r.run, r.status) for r in story.center().runs(story.id)] == [(1, "Done")]


def test_a_registry_from_before_run_notes_is_read_read_only_and_upgraded_when_writable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    story = Story(tmp_path, tmp_path / "home", 20)
    registry = story.home / "registry.sqlite3"
    with contextlib.closing(sqlite3.connect(registry, isolation_level=None)) as db:  # as version 1 left it
        db.execute("ALTER TABLE runs DROP COLUMN note")
        db.execute("PRAGMA user_version = 1")
    with read_only(story.home):  # no upgrade possible: read as it is
        code, out, err = _cli(capsys, "exports", "runs", story.id, "--json", *story.args())
        assert (code, err) == (0, "") and [(r["run"], r["note"]) for r in json.loads(out)] == [(1, None)]
    story.center()
    with contextlib.closing(sqlite3.connect(registry)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2
        assert "note" in {row[1] for row in db.execute("PRAGMA table_info(runs)")}


# -- the fingerprint state -------------------------------------------------------------------------------


def _manifest(url: str) -> Manifest:
    return Manifest.from_json(Path(url).read_bytes(), key=url)


def test_a_truncated_fingerprint_file_makes_the_next_run_full_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    story = Story(tmp_path, tmp_path / "home", 300)
    damaged = story.fingerprints(1)
    os.truncate(damaged, damaged.stat().st_size // 2)  # a copy cut short: no Parquet footer
    story.change(range(10))

    code, out, err = _cli(capsys, "exports", "run", story.id, *story.args())
    assert (code, err) == (0, "")
    assert f"note: the fingerprint file {damaged} of run 1 is damaged" in out
    assert "exported every profile (a full run)" in out
    run = story.center().runs(story.id)[-1]
    assert (run.run, run.status, run.mode, run.rows) == (2, "Done", "full", 300)
    assert run.note is not None and str(damaged) in run.note
    assert _manifest(run.manifest or "").mode == "full"
    code, out, _ = _cli(capsys, "exports", "runs", story.id, *story.args())
    assert code == 0 and f"note on run 2: the fingerprint file {damaged}" in out

    story.change(range(15))  # the state run 2 recorded is whole: run 3 is incremental again
    assert _cli(capsys, "exports", "run", story.id, *story.args())[0] == 0
    run = story.center().runs(story.id)[-1]
    assert (run.run, run.mode, run.rows, run.note) == (3, "incremental", 5, None)


def test_a_fingerprint_file_damaged_inside_names_the_file_and_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    story = Story(tmp_path, tmp_path / "home", 300)
    damaged = story.fingerprints(1)
    with damaged.open("r+b") as f:  # the first page header; the footer is whole
        f.seek(4)
        f.write(b"\xff" * 20)
    story.change(range(10))

    code, _, err = _cli(capsys, "exports", "run", story.id, *story.args())
    message = _one_line_error(err)
    assert code == 1
    assert f"the fingerprint file {damaged} of export {story.id}" in message
    assert f"delete the folder {story.state_folder(1)}" in message
    assert [(r.run, r.status) for r in story.center().runs(story.id)] == [(1, "Done"), (2, "Failed")]

    shutil.rmtree(story.state_folder(1))  # as the message says
    code, out, err = _cli(capsys, "exports", "run", story.id, *story.args())
    assert (code, err) == (0, "")
    run = story.center().runs(story.id)[-1]
    assert (run.run, run.status, run.mode, run.rows) == (3, "Done", "full", 300)
    assert "is missing" in (run.note or "") and f"note: {run.note}" in out


def test_a_deleted_state_folder_makes_the_next_run_full_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    story = Story(tmp_path, tmp_path / "home", 300)
    shutil.rmtree(story.home / "state")
    story.change(range(10))

    code, out, err = _cli(capsys, "exports", "run", story.id, *story.args())
    assert (code, err) == (0, "")
    missing = f"the fingerprint state of run 1, {story.state_folder(1)}, is missing"
    assert f"note: {missing}" in out
    run = story.center().runs(story.id)[-1]
    assert (run.run, run.status, run.mode, run.rows) == (2, "Done", "full", 300)
    assert (run.note or "").startswith(missing)
    assert _manifest(run.manifest or "").mode == "full"
    code, out, _ = _cli(capsys, "exports", "runs", story.id, "--json", *story.args())
    assert json.loads(out)[-1]["note"] == run.note

    story.change(range(12))
    assert _cli(capsys, "exports", "run", story.id, *story.args())[0] == 0
    run = story.center().runs(story.id)[-1]
    assert (run.run, run.mode, run.rows, run.note) == (3, "incremental", 2, None)
