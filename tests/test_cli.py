"""The command line: demo, run, preview, plugins, exit statuses and progress."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import profile_exports as pe
from profile_exports import cli
from profile_exports.progress import Progress

from .conftest import read_csv, read_jsonl


def test_demo_writes_csv_and_json_and_prints_where_and_a_preview(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "exports"
    assert cli.main(["demo", "--out", str(out), "--count", "300"]) == 0
    printed = capsys.readouterr().out
    (csv_file,) = (out / "csv").glob("*.csv.gz")
    (json_file,) = (out / "json").glob("*.json.gz")
    assert str(csv_file) in printed and str(json_file) in printed
    assert "columns:" in printed and "identity, all_identities, clevertapId" in printed
    header, rows = read_csv(csv_file)
    assert len(rows) == 300 and header[:4] == ["identity", "all_identities", "clevertapId", "clevertapIds"]
    assert [r["clevertapId"] for r in read_jsonl(json_file)] == [r["clevertapId"] for r in rows]


def test_console_script_demo_in_a_fresh_folder(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "profile-exports"
    script = script if script.exists() else Path(shutil.which("profile-exports") or "profile-exports")
    done = subprocess.run(
        [str(script), "demo", "--count", "50"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.parent.name for p in (tmp_path / "exports").rglob("*.gz")) == ["csv", "json"]


def test_module_entry_runs_the_cli(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "profile_exports", "plugins", "--json"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert {"writer", "sink", "source"} <= {c["kind"] for c in json.loads(done.stdout)["components"]}


def _write_config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "export.toml"
    path.write_text(body, encoding="utf-8")
    return path


def test_run_with_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "users.jsonl"
    data.write_text('{"user_id": "u1", "Name": "Ada"}\n{"user_id": "u2", "Name": "Bob"}\n', encoding="utf-8")
    config = _write_config(
        tmp_path,
        f"""
name = "cli"
account_id = 100000000
[source]
kind = "jsonl"
path = "{data}"
mapping = {{ profile_id = "user_id" }}
[destination]
url = "{tmp_path / "out"}"
format = "json"
folders = "export_id"
[identifiers]
select = ["Identity"]
""",
    )
    assert cli.main(["run", str(config), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["rows"] == 2 and shown["columns"] == ["identity", "clevertapId", "device", "Name"]
    (f,) = shown["files"]
    assert f"/{shown['export_id']}/100000000-" in f["url"]
    assert [r["Name"] for r in read_jsonl(f["url"])] == ["Ada", "Bob"]


def test_configuration_error_exits_2_with_the_field_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _write_config(tmp_path, f'[destination]\nurl = "{tmp_path}"\nfolders = "daily"\n')
    assert cli.main(["run", str(config)]) == 2
    err = capsys.readouterr().err
    assert "destination.folders" in err and "'daily'" in err
    assert cli.main(["preview", str(tmp_path / "missing.toml")]) == 2


def test_failed_run_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "users.jsonl"
    data.write_text('{"Name": "no id"}\n', encoding="utf-8")
    config = _write_config(tmp_path, f'[source]\nkind = "jsonl"\npath = "{data}"\n[destination]\nurl = "{tmp_path}"\n')
    assert cli.main(["run", str(config)]) == 1
    assert "record 0 has no 'profile_id'" in capsys.readouterr().err


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("demo", "run", "preview", "plugins"):
        with pytest.raises(SystemExit) as info:
            cli.main([command, "--help"])
        assert info.value.code == 0
        assert "usage: profile-exports" in capsys.readouterr().out


def test_progress_shows_on_a_terminal_and_is_quiet_otherwise() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    shown = Tty()
    progress = Progress(stream=shown, interval=0)
    progress.update(rows=1500, files=1)
    progress.close()
    assert "1,500 profiles, 1 file(s)" in shown.getvalue()
    quiet = io.StringIO()
    progress = Progress(stream=quiet, interval=0)
    progress.update(rows=10)
    progress.close()
    assert quiet.getvalue() == ""


def test_secrets_stay_out_of_reprs_and_messages(tmp_path: Path) -> None:
    secret = "s3cr3t-Key-Value"
    config = pe.ExportConfig.from_mapping(
        {
            "source": {"kind": "sql", "url": f"postgresql://user:{secret}@db.invalid/crm", "table": "users"},
            "destination": {
                "url": f"az://box/x?sv=1&sig={secret}",  # an Azure SAS: the one credential a URL may carry
                "storage_options": {"key": "AKIA", "secret": secret},
            },
        }
    )
    assert secret not in repr(config)
    assert secret not in repr(config.destination) and secret not in repr(config.source)
    result = pe.export(
        [{"profile_id": "p1"}], "memory://bucket/secret-test", format="csv", storage_options={"token": secret}
    )
    assert secret not in repr(result) and secret not in result.summary()
