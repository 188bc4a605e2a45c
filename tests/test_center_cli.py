"""The export center's CLI: ``exports ...``, ``run-due`` and ``scheduler`` (in a real child process)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from profile_exports import cli
from profile_exports.center import ExportCenter
from profile_exports.manifest import read_manifests

from .test_center import make_profiles, write_jsonl

ROOT = Path(__file__).resolve().parent.parent


def _config(tmp_path: Path, name: str, frequency: str, source: dict[str, Any] | None = None) -> Path:
    data = tmp_path / "profiles.jsonl"
    if not data.exists():
        write_jsonl(data, make_profiles(40))
    src = source or {"kind": "jsonl", "path": str(data)}
    src_lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in src.items())
    path = tmp_path / f"{name}.toml"
    path.write_text(
        f'name = "{name}"\naccount_id = "100000000"\n\n[source]\n{src_lines}\n\n'
        f'[destination]\nurl = "{tmp_path / "out" / name}"\nformat = "csv"\n\n'
        f'[schedule]\nfrequency = "{frequency}"\nmode = "incremental"\n'
    )
    return path


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_exports_commands_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROFILE_EXPORTS_HOME", str(tmp_path / "home"))  # the default registry location
    code, out, _ = _cli(capsys, "exports", "create", str(_config(tmp_path, "daily", "recurring")), "--json")
    assert code == 0
    daily = json.loads(out)
    assert daily["status"] == "Pending" and daily["frequency"] == "recurring"
    assert (tmp_path / "home" / "registry.sqlite3").exists()

    # a one-time export runs right away
    code, out, _ = _cli(capsys, "exports", "create", str(_config(tmp_path, "once", "once")))
    assert code == 0 and "40 profiles" in out and "manifest:" in out

    code, out, _ = _cli(capsys, "run-due", "--json")
    assert code == 0
    (run,) = json.loads(out)
    assert run["export_id"] == daily["id"] and run["status"] == "Done" and run["rows"] == 40
    code, out, _ = _cli(capsys, "run-due")
    assert code == 0 and "no export is due" in out

    code, out, _ = _cli(capsys, "exports", "list")
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["ID", "NAME", "SINK"]
    assert any(daily["id"] in line and "Pending" in line and "every 24h" in line for line in lines)
    assert any("once" in line and "Done" in line for line in lines)

    code, out, _ = _cli(capsys, "exports", "list", "--frequency", "once", "--json")
    assert [e["name"] for e in json.loads(out)] == ["once"]
    code, out, _ = _cli(capsys, "exports", "list", "--search", "dai", "--json")
    assert [e["id"] for e in json.loads(out)] == [daily["id"]]

    code, out, _ = _cli(capsys, "exports", "run", daily["id"], "--json")
    assert code == 0 and json.loads(out)["run"] == 2 and json.loads(out)["rows"] == 0  # nothing changed

    code, out, _ = _cli(capsys, "exports", "show", daily["id"])
    assert "status" in out and "Pending" in out and "RUN" in out
    code, out, _ = _cli(capsys, "exports", "runs", daily["id"], "--json")
    assert [(r["run"], r["status"], r["rows"]) for r in json.loads(out)] == [(1, "Done", 40), (2, "Done", 0)]

    code, out, _ = _cli(capsys, "exports", "stop", daily["id"], "--json")
    assert code == 0 and json.loads(out)["status"] == "Stopped"
    code, out, _ = _cli(capsys, "exports", "list", "--status", "stopped", "--json")
    assert [e["id"] for e in json.loads(out)] == [daily["id"]]
    code, _, err = _cli(capsys, "exports", "run", daily["id"])
    assert code == 1 and "stopped" in err
    code, _, err = _cli(capsys, "exports", "show", "999")
    assert code == 2 and "no export '999'" in err


def test_create_rejects_a_bad_config_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _config(tmp_path, "bad", "recurring")
    path.write_text(path.read_text().replace('mode = "incremental"', "every_hours = 3"))
    code, _, err = _cli(capsys, "exports", "create", str(path), "--home", str(tmp_path / "home"))
    assert code == 2 and "schedule.every_hours" in err
    assert ExportCenter(tmp_path / "home").list() == []


def test_every_center_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["exports"],
        ["exports", "create"],
        ["exports", "list"],
        ["exports", "show"],
        ["exports", "run"],
        ["exports", "stop"],
        ["exports", "runs"],
        ["run-due"],
        ["scheduler"],
    ):
        with pytest.raises(SystemExit) as exited:
            cli.main([*argv, "--help"])
        assert exited.value.code == 0
        assert "usage: profile-exports" in capsys.readouterr().out


def _forked_workers(pid: int) -> list[psutil.Process]:
    """The worker processes the fork server below ``pid`` has forked."""
    for process in psutil.Process(pid).children(recursive=True):
        try:
            if "forkserver" in " ".join(process.cmdline()):
                return process.children()
        except psutil.NoSuchProcess:
            continue
    return []


@pytest.mark.parametrize(
    ("signame", "partitions"),
    [("SIGTERM", 1), ("SIGINT", 2)],  # SIGINT as Ctrl-C sends it: to the whole group, worker processes included
)
def test_scheduler_finishes_the_current_run_on_a_stop_signal(tmp_path: Path, signame: str, partitions: int) -> None:
    home = tmp_path / "home"
    source = {"kind": "synthetic", "count": 300_000, "seed": 3, "partitions": partitions}
    center = ExportCenter(home)
    record = center.create(_config(tmp_path, "big", "recurring", source))
    env = {**os.environ, "PROFILE_EXPORTS_HOME": str(home)}
    child = subprocess.Popen(
        [sys.executable, "-m", "profile_exports", "scheduler", "--interval", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
        start_new_session=True,  # its own process group, as a terminal gives it
    )
    try:
        deadline = time.monotonic() + 60
        while not center.runs(record.id) or center.runs(record.id)[0].status != "Running":
            assert time.monotonic() < deadline, "the scheduler never started the due export"
            assert child.poll() is None, child.communicate()
            time.sleep(0.05)
        if signame == "SIGINT":
            # once the workers run (the fork server and two workers below the scheduler), as Ctrl-C does
            while len(_forked_workers(child.pid)) < 2:
                assert time.monotonic() < deadline, "the workers never started"
                time.sleep(0.02)
            os.killpg(child.pid, signal.SIGINT)
        else:
            child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=240)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
    assert child.returncode == 0, err
    assert f"{signame} received: finishing the current run" in err
    assert "stopped after 1 run(s)" in out
    (run,) = center.runs(record.id)
    assert run.status == "Done" and run.rows == 300_000, run
    assert center.get(record.id).status == "Pending"  # recurring: waits for its next slot
    (manifest,) = read_manifests(str(tmp_path / "out" / "big"))
    assert manifest.rows == 300_000
