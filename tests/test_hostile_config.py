"""Hostile configuration files (issue 16, item 10): each one is refused with a ConfigError naming the
file (and the setting, where there is one) and what to do; the CLI exits 2 with one line, never a
traceback. Real files on disk, read by ``ExportConfig.from_file`` and the ``profile-exports`` command.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from profile_exports import cli
from profile_exports.config import ExportConfig
from profile_exports.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
DEEP = 196 * 1024 // 2  # 196 KB of '[' and ']'


def toml(body: str, dest: str = "out") -> str:
    return f'[destination]\nurl = "{dest}"\n\n[source]\nkind = "synthetic"\ncount = 3\n{body}'


def synthetic_toml(option: str) -> str:
    return f'[destination]\nurl = "out"\n\n[source]\nkind = "synthetic"\n{option}\n'


def synthetic_json(option: str) -> str:
    return '{"destination": {"url": "out"}, "source": {"kind": "synthetic", ' + option + "}}"


# name -> (file name, content, the setting named, or "" for the file as a whole, a word of the fix)
CASES: dict[str, tuple[str, bytes | str, str, str]] = {
    "196 KB of [ in TOML": ("deep.toml", toml("x = " + "[" * DEEP + "]" * DEEP + "\n"), "", "nest"),
    "196 KB of [ in JSON": ("deep.json", synthetic_json('"x": ' + "[" * DEEP + "]" * DEEP), "", "nest"),
    "300 levels of tables in JSON": (
        "tables.json",
        synthetic_json('"x": ' + '{"a": ' * 300 + "1" + "}" * 300),
        "source.x",
        "nest",
    ),
    "TOML in Latin-1": ("latin.toml", 'name = "café"\n[destination]\nurl = "out"\n'.encode("latin-1"), "", "UTF-8"),
    "JSON in UTF-16": ("utf16.json", '{"destination": {"url": "out"}}'.encode("utf-16"), "", "UTF-8"),
    "count = 1e20 (an integer)": ("count.toml", synthetic_toml("count = 100000000000000000000"), "source.count", "to"),
    "count = 1e20 (a float)": ("countf.toml", synthetic_toml("count = 1e20"), "source.count", "whole number"),
    "count = 2**62 + 1": ("count62.json", synthetic_json('"count": 4611686018427387905'), "source.count", "to"),
    "seed = 2**64": ("seed.toml", synthetic_toml("seed = 18446744073709551616"), "source.seed", "to"),
    "partitions = 1e14": ("parts.toml", synthetic_toml("partitions = 100000000000000"), "source.partitions", "to"),
    "a 5000-digit count in JSON": ("digits.json", synthetic_json('"count": ' + "9" * 5000), "", "digits"),
    "a 5000-digit account_id in TOML": ("digits.toml", "account_id = " + "7" * 5000 + "\n", "", "digits"),
    "max_file_mb = nan": (
        "nan.toml",
        '[destination]\nurl = "out"\nmax_file_mb = nan\n',
        "destination.max_file_mb",
        "MB",
    ),
    "max_file_mb = inf": (
        "inf.toml",
        '[destination]\nurl = "out"\nmax_file_mb = inf\n',
        "destination.max_file_mb",
        "MB",
    ),
    "max_file_mb = NaN in JSON": (
        "nan.json",
        '{"destination": {"url": "out", "max_file_mb": NaN}}',
        "destination.max_file_mb",
        "MB",
    ),
    "every_hours = nan": (
        "hours.toml",
        '[destination]\nurl = "out"\n[schedule]\nfrequency = "recurring"\nevery_hours = nan\n',
        "schedule.every_hours",
        "hours",
    ),
    "every_hours = -Infinity in JSON": (
        "hours.json",
        '{"destination": {"url": "out"}, "schedule": {"frequency": "recurring", "every_hours": -Infinity}}',
        "schedule.every_hours",
        "hours",
    ),
    "max_retries = inf": (
        "retries.toml",
        '[destination]\nurl = "out"\nmax_retries = inf\n',
        "destination.max_retries",
        "0 to 20",
    ),
    "an empty TOML file": ("empty.toml", "", "", "empty"),
    "an empty JSON file": ("empty.json", "", "", "empty"),
    "only blanks": ("blank.json", " \n\t\n", "", "empty"),
    "a JSON list": ("list.json", "[1, 2]", "", "table"),
    "a key given twice in JSON": (
        "twice.json",
        '{"destination": {"url": "out"}, "destination": {"url": "elsewhere"}}',
        "destination",
        "twice",
    ),
    "a lone surrogate in JSON": (
        "surrogate.json",
        '{"name": "\\ud800", "destination": {"url": "out"}}',
        "name",
        "UTF-16",
    ),
    "a number for source.kind": (
        "kind.json",
        '{"destination": {"url": "out"}, "source": {"kind": 5}}',
        "source.kind",
        "kind",
    ),
    "a list for source.kind": (
        "kindlist.toml",
        '[destination]\nurl = "out"\n[source]\nkind = ["synthetic"]\n',
        "source.kind",
        "kind",
    ),
    "a path of a JSON key with a newline and a terminal escape": (
        "escape.json",
        '{"destination": {"url": "out", "a\\nb\\u001b[31m": 1}}',
        "destination.a",
        "unknown",
    ),
}
# A source kind checks its own options when the source opens, after the file was read.
SOURCE_OPTIONS = ("source.count", "source.seed", "source.partitions")


def _write(tmp_path: Path, name: str, content: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def _refused_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    code = cli.main(argv)
    captured = capsys.readouterr()
    assert code == 2, (argv, captured.err)
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("configuration error: "), captured.err
    assert lines[0].isprintable(), lines[0]  # no newline, no terminal escape from the file
    return lines[0]


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_hostile_config_file_is_refused_naming_the_file_and_the_setting(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    name, content, field, fix = CASES[case]
    path = _write(tmp_path, name, content)
    for command in ("preview", "run"):
        line = _refused_line(capsys, [command, str(path)])
        assert str(path) in line, line
        if field:
            assert f"configuration error: {field}" in line, line
        assert fix in line, line
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file()]  # refused, nothing written


def test_from_file_raises_config_errors_naming_the_file(tmp_path: Path) -> None:
    for name, content, field, _ in CASES.values():
        path = _write(tmp_path, name, content)
        if field in SOURCE_OPTIONS:
            continue
        with pytest.raises(ConfigError) as caught:
            ExportConfig.from_file(path)
        assert str(path) in str(caught.value), str(caught.value)
        named = caught.value.field
        assert named.startswith(field) if field else named == "", (name, str(caught.value))
    (tmp_path / "folder.toml").mkdir()
    with pytest.raises(ConfigError, match="is a directory") as caught:
        ExportConfig.from_file(tmp_path / "folder.toml")
    assert str(tmp_path / "folder.toml") in str(caught.value)
    with pytest.raises(ConfigError, match="larger than"):
        ExportConfig.from_file("/dev/zero")  # endless: read no further than any configuration can be


def test_a_byte_order_mark_is_read_past(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    toml_path = _write(tmp_path, "bom.toml", b"\xef\xbb\xbf" + toml("").encode())
    json_path = _write(tmp_path, "bom.json", b"\xef\xbb\xbf" + synthetic_json('"count": 3').encode())
    assert ExportConfig.from_file(toml_path) == ExportConfig.from_file(json_path)
    assert cli.main(["preview", str(toml_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["columns"]


def test_keys_that_are_not_text_are_config_errors_naming_the_table(tmp_path: Path) -> None:
    """TOML and JSON keys are text; a Python caller's mapping may hold anything, even itself."""
    looped: dict[str, object] = {}
    looped["again"] = looped
    cases = {
        "source.mapping": {"source": {"kind": "synthetic", "mapping": {1: "profile_id"}}},
        "source": {"source": {"kind": "synthetic", None: 3}},
        "destination.storage_options": {"destination": {"url": "", "storage_options": {(1, 2): "x"}}},
        "transforms.apply": {"transforms": {"apply": {b"mask": ["Email"]}}},
        "destination.storage_options.again": {"destination": {"url": "", "storage_options": looped}},
    }
    for field, raw in cases.items():
        raw.setdefault("destination", {})["url"] = str(tmp_path / "out")  # type: ignore[index]
        with pytest.raises(ConfigError) as caught:
            ExportConfig.from_mapping(raw).to_mapping()
        assert caught.value.field.startswith(field), str(caught.value)


def test_the_command_exits_2_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    """The issue's three files, through the installed command in a child process."""
    files = [
        _write(tmp_path, "deep.toml", toml("x = " + "[" * DEEP + "]" * DEEP + "\n")),
        _write(tmp_path, "latin.toml", 'name = "café"\n[destination]\nurl = "out"\n'.encode("latin-1")),
        _write(tmp_path, "count.toml", synthetic_toml("count = 100000000000000000000")),
    ]
    for path in files:
        done = subprocess.run(
            [sys.executable, "-m", "profile_exports", "run", str(path)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 2, done.stderr
        assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr, done.stderr
        assert str(path) in done.stderr


# -- random hostile files ------------------------------------------------------------------------------

# Settings that take numbers and names, and values a careless or hostile file might put there. Huge
# integers stay far above what memory could hold, so a missing check fails fast instead of swapping.
# (section, key): a value the setting takes, so that some files are accepted and previewed.
SETTINGS = {
    ("source", "count"): "3",
    ("source", "seed"): "7",
    ("source", "partitions"): "2",
    ("source", "batch_size"): "100",
    ("source", "kind"): '"synthetic"',
    ("destination", "max_file_mb"): "0.5",
    ("destination", "max_retries"): "3",
    ("destination", "format"): '"json"',
    ("destination", "timezone"): '"Europe/Oslo"',
    ("schedule", "every_hours"): "6",
    ("execution", "workers"): "2",
    ("properties", "user"): '"all"',
    ("identifiers", "select"): '["Email"]',
    ("", "account_id"): '"acme"',
    ("", "export_id"): '"123"',
    ("", "name"): '"x"',
    ("source", "unknown_option"): "1",
}
numbers = st.one_of(
    st.sampled_from(["nan", "inf", "-inf", "-0.0", "1e20", "1e308", "-1", "0", "2", "4611686018427387904"]),
    st.integers(min_value=10**15, max_value=10**30).map(str),
    st.integers(min_value=19, max_value=6000).map(lambda n: "9" * n),
)
texts = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]) | st.sampled_from(["\x00", "\n", "\x1b", "\u202e"]),
    max_size=12,
)


@st.composite
def deep(draw: st.DrawFn) -> str:
    depth = draw(st.integers(min_value=1, max_value=20_000))
    opener, closer = draw(st.sampled_from([("[", "]"), ("{a=", "}"), ('{"a":', "}")]))
    return opener * depth + "1" + closer * depth


@st.composite
def hostile_files(draw: st.DrawFn) -> tuple[str, bytes]:
    """A configuration that would be valid, with one to three settings given hostile values, as TOML
    or JSON text, then perhaps corrupted as bytes."""
    as_json = draw(st.booleans())
    tables: dict[str, dict[str, str]] = {
        "": {},
        "source": {"kind": '"synthetic"', "count": "3"},
        "destination": {"url": '"out"'},
    }
    for section, key in draw(st.lists(st.sampled_from(sorted(SETTINGS)), min_size=1, max_size=3)):
        value = draw(st.one_of(st.just(SETTINGS[section, key]), numbers, texts.map(json.dumps), deep()))
        tables.setdefault(section, {})[key] = value
    if as_json:
        body = ", ".join(
            [f"{json.dumps(k)}: {v}" for k, v in tables[""].items()]
            + [
                f"{json.dumps(s)}: {{" + ", ".join(f"{json.dumps(k)}: {v}" for k, v in t.items()) + "}"
                for s, t in tables.items()
                if s
            ]
        )
        text = "{" + body + "}"
    else:
        text = "".join(f"{k} = {v}\n" for k, v in tables[""].items())
        text += "".join(f"[{s}]\n" + "".join(f"{k} = {v}\n" for k, v in t.items()) for s, t in tables.items() if s)
    data = text.encode("utf-8", "surrogatepass")
    corruption = draw(st.sampled_from(["none", "none", "bom", "latin-1 byte", "truncated", "empty"]))
    if corruption == "bom":
        data = b"\xef\xbb\xbf" + data
    elif corruption == "latin-1 byte":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + b"\xe9" + data[at:]
    elif corruption == "truncated":
        data = data[: draw(st.integers(0, len(data)))]
    elif corruption == "empty":
        data = b""
    event(corruption)
    return ("config.json" if as_json else "config.toml"), data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(file=hostile_files())
def test_every_hostile_file_is_previewed_or_refused_in_one_line_naming_the_file(file: tuple[str, bytes]) -> None:
    name, data = file
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / name
        path.write_bytes(data)
        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            code = cli.main(["preview", str(path)])
        event(f"exit {code}")
        assert code in (0, 2), err.getvalue()
        if code == 2:
            lines = err.getvalue().splitlines()
            assert len(lines) == 1 and lines[0].isprintable(), err.getvalue()
            assert str(path) in lines[0], lines[0]
        assert not (Path(scratch) / "out").exists()  # a preview writes nothing
