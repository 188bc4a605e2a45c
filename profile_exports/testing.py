"""Pytest helpers for plugin authors.

Load them in your ``conftest.py``::

    pytest_plugins = ["profile_exports.testing"]

- the ``register_plugin`` fixture installs a plugin as an entry point for one test, so every export
  made during the test (``export()``, an ``Exporter`` built from a config file, the export center,
  the CLI in-process) finds it, and uninstalls it when the test ends, passed or failed;
- ``check_writer`` and ``check_sink`` are conformance suites: one call runs every check a writer or
  a sink plugin must pass, against real exports, and raises ``AssertionError`` naming the rule a
  plugin broke.

Registration is for the calling process: worker processes and Dask workers load plugins themselves,
so run conformance checks with the default ``executor`` on a source with one partition (as here).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import shutil
import sys
import tempfile
import types
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from .api import export
from .errors import ProfileExportsError
from .manifest import Manifest
from .plugins import ENTRY_POINT_GROUP, load_components

__all__ = [
    "CONFORMANCE_PROFILES",
    "check_sink",
    "check_writer",
    "conformance_profiles",
    "plugin_registered",
    "register_plugin",
]

ReadRows = Callable[[Path], list[dict[str, Any]]]


# -- registering a plugin for one test -----------------------------------------------------------


@contextlib.contextmanager
def plugin_registered(plugin: Any, name: str | None = None) -> Iterator[str]:
    """Install ``plugin`` (a module or any object with hook implementations) as an entry-point plugin
    of this process until the block ends; yields the entry point's name.

    It is a real installed distribution (a ``dist-info`` folder with ``entry_points.txt`` on
    ``sys.path``), so the plugin goes through the same loading, listing and error handling as a
    ``pip install``-ed one.
    """
    token = uuid.uuid4().hex[:12]
    entry_name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
    module_name = f"_profile_exports_test_plugin_{token}"
    holder = types.ModuleType(module_name)
    holder.plugin = plugin  # type: ignore[attr-defined]
    folder = Path(tempfile.mkdtemp(prefix="profile-exports-plugin-"))
    info = folder / f"profile_exports_test_plugin_{token}-0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: profile-exports-test-plugin-{token}\nVersion: 0\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\n{entry_name} = {module_name}:plugin\n", encoding="utf-8"
    )
    sys.modules[module_name] = holder
    sys.path.insert(0, str(folder))
    importlib.invalidate_caches()
    try:
        yield entry_name
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(str(folder))
        sys.modules.pop(module_name, None)
        shutil.rmtree(folder, ignore_errors=True)
        importlib.invalidate_caches()


@pytest.fixture
def register_plugin() -> Iterator[Callable[..., str]]:
    """``register_plugin(plugin, name=None)``: the plugin is installed until this test ends."""
    with contextlib.ExitStack() as stack:
        yield lambda plugin, name=None: stack.enter_context(plugin_registered(plugin, name))


# -- the data every conformance check exports ----------------------------------------------------

CONFORMANCE_PROFILES: tuple[dict[str, Any], ...] = (
    {
        "profile_id": "__c1",
        "identity": "user-1",
        "email": "ada@example.com",
        "phone": "+15551230001",
        "Name": "Ada, \"the\" first\nof her name",
        "Age": 36,
        "Score": 0.25,
        "Premium": True,
        "tags": ["a", "b"],
        "Prefs": {"lang": "en", "tz": "UTC"},
        "Joined": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
    },
    {"profile_id": "__c2", "email": "bob@example.com", "Name": "Bøb ☃", "Age": 41, "Premium": False, "tags": []},
    {"profile_id": "__c3", "identity": "user-3", "Name": "=1+2", "Score": -1.5},
    {"profile_id": "__c4", "identity": "user-4"},
)
_IDENTIFIERS = ["Identity", "Email"]
_PROPERTIES = ["Name", "Age", "Score", "Premium", "tags", "Prefs", "Joined", "Token"]


def conformance_profiles(count: int) -> list[dict[str, Any]]:
    """``count`` profiles cycling through ``CONFORMANCE_PROFILES``, each with its own ids and a
    ``Token`` that does not compress (so a size cap is reached whatever the codec)."""
    out = []
    for i in range(count):
        profile = dict(CONFORMANCE_PROFILES[i % len(CONFORMANCE_PROFILES)])
        profile["profile_id"] = f"__c{i}"
        profile["Token"] = hashlib.sha256(str(i).encode()).hexdigest()
        if "identity" in profile:
            profile["identity"] = f"user-{i}"
        out.append(profile)
    return out


def _expected_identities(profiles: list[dict[str, Any]]) -> list[str | None]:
    return [p.get("identity") or p.get("email") for p in profiles]


# -- writers -------------------------------------------------------------------------------------


def check_writer(
    plugin: Any,
    format: str,
    read_rows: ReadRows,
    tmp_path: Path,
    *,
    compressions: tuple[str, ...] | None = None,
) -> None:
    """Every rule a writer plugin must follow, checked through real exports to ``tmp_path``.

    ``plugin`` is the plugin module or object (``None`` when it is already installed);
    ``read_rows`` reads one whole file into its rows as dicts, with your format's independent reader;
    a row may nest its values one level deep (``{"profileProps": {"Name": ...}}``). Checked, for
    each compression the writer declares (or ``compressions``):

    1. the writer is registered under ``format`` and describes itself (extension, content type);
    2. every profile comes back, once, in order, with the output columns, in files named with the
       writer's extension whose row counts match the result;
    3. a small ``max_file_mb`` splits the export into several files, none above the cap, numbered
       from part 0 without gaps;
    4. an export with no profiles still completes and every file it writes reads back empty;
    5. a run that fails midway leaves no file at a final name that does not read back whole, and no
       manifest.
    """
    plugins = [] if plugin is None else [plugin]
    _pm, components = load_components(plugins=plugins)
    assert format in components.writers, f"no writer named {format!r} is registered (got {sorted(components.writers)})"
    writer = components.writers[format].obj
    declared = tuple(getattr(writer, "compressions", ()))
    assert declared, f"writer {format!r}: `compressions` must list at least one value, the default first"
    assert isinstance(getattr(writer, "content_type", None), str), f"writer {format!r}: `content_type` must be a str"
    for compression in compressions or declared:
        extension = writer.extension(compression)
        assert extension and not extension.startswith("."), (
            f"writer {format!r}: extension({compression!r}) must be non-empty, without the leading dot"
        )
        settings = {"format": format, "compression": compression, "identifiers": _IDENTIFIERS}
        settings["properties"] = {"user": _PROPERTIES}
        root = tmp_path / f"conformance-{format}-{compression}"
        _check_round_trip(plugins, settings, extension, read_rows, root / "round-trip")
        _check_size_cap(plugins, settings, extension, read_rows, root / "size-cap")
        _check_empty(plugins, settings, read_rows, root / "empty")
        _check_failed_run(plugins, settings, read_rows, root / "failed")


def _files(result: Any, extension: str) -> list[Path]:
    paths = [Path(f.url) for f in result.files]
    for path in paths:
        assert path.name.endswith("." + extension), f"file {path.name!r} does not end with .{extension}"
        assert path.exists(), f"the result lists {path}, which is not there"
    return paths


def _flat(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row with the values of nested groups lifted to the top (the outer names win)."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, Mapping):
            for inner, item in value.items():
                out.setdefault(inner, item)
        else:
            out[key] = value
    return out


def _check_round_trip(plugins: list[Any], settings: dict[str, Any], extension: str, read: ReadRows, out: Path) -> None:
    profiles = conformance_profiles(len(CONFORMANCE_PROFILES) * 3)
    result = export(profiles, out, plugins=plugins, progress=False, **settings)
    rows: list[dict[str, Any]] = []
    for file, path in zip(result.files, _files(result, extension), strict=True):
        file_rows = read(path)
        assert len(file_rows) == file.rows, f"{path.name}: the result says {file.rows} rows, it has {len(file_rows)}"
        assert file.bytes == path.stat().st_size, f"{path.name}: the result says {file.bytes} bytes"
        assert file.sha256 == hashlib.sha256(path.read_bytes()).hexdigest(), f"{path.name}: sha256 differs"
        rows += [_flat(row) for row in file_rows]
    assert result.rows == len(profiles) == len(rows), f"{len(profiles)} profiles exported, {len(rows)} read back"
    identities = [row.get("identity") for row in rows]
    assert identities == _expected_identities(profiles), "rows must come back once each, in source order"
    names = [row.get("Name") for row in rows]
    expected_names = [p.get("Name") for p in profiles]
    assert [n for n in names if n] == [n for n in expected_names if n], "text values must come back exactly"


def _check_size_cap(plugins: list[Any], settings: dict[str, Any], extension: str, read: ReadRows, out: Path) -> None:
    cap_mb = 0.02
    profiles = conformance_profiles(3000)
    result = export(profiles, out, plugins=plugins, progress=False, max_file_mb=cap_mb, **settings)
    paths = _files(result, extension)
    assert len(paths) > 1, f"3,000 profiles with max_file_mb = {cap_mb} must need more than one file"
    for path in paths:
        assert path.stat().st_size <= cap_mb * 1_000_000, f"{path.name} is above the {cap_mb} MB cap"
    assert [f.part for f in result.files] == list(range(len(paths))), "parts are numbered 0, 1, 2, ..."
    rows = [_flat(row) for path in paths for row in read(path)]
    assert [r.get("identity") for r in rows] == _expected_identities(profiles), "split files lost or reordered rows"


def _check_empty(plugins: list[Any], settings: dict[str, Any], read: ReadRows, out: Path) -> None:
    result = export([], out, plugins=plugins, progress=False, **settings)
    assert result.rows == 0
    for file in result.files:
        assert read(Path(file.url)) == [], f"{file.key}: an export of no profiles must have no rows"


class _FailingProfiles:
    """Profiles that raise after ``good`` of them have been read: a source dying mid-run."""

    def __init__(self, good: int) -> None:
        self.good = good

    def __iter__(self) -> Iterator[dict[str, Any]]:
        yield from conformance_profiles(self.good)
        raise RuntimeError("conformance: the source failed midway")


def _check_failed_run(plugins: list[Any], settings: dict[str, Any], read: ReadRows, out: Path) -> None:
    try:
        failing = _FailingProfiles(2500)
        export(failing, out, plugins=plugins, progress=False, max_file_mb=0.02, batch_size=500, **settings)
    except (RuntimeError, ProfileExportsError):
        pass
    else:
        raise AssertionError("an export whose source fails midway must raise")
    leftovers = sorted(p for p in out.rglob("*") if p.is_file()) if out.exists() else []
    assert not [p for p in leftovers if "manifest" in p.name], "a failed run must not write a manifest"
    for path in leftovers:
        try:
            read(path)
        except Exception as exc:  # a partial file at a final name is the one thing never allowed
            raise AssertionError(f"{path.name} is at its final name but does not read back whole: {exc}") from exc


# -- sinks ---------------------------------------------------------------------------------------


def check_sink(
    plugin: Any,
    url: str,
    storage_options: Mapping[str, Any] | None = None,
    *,
    secrets: tuple[str, ...] = (),
) -> None:
    """Every rule a sink plugin must follow, checked against the real destination ``url``.

    ``plugin`` is the plugin module or object (``None`` when it is already installed); everything is
    written under a fresh folder below ``url``. ``secrets`` are credential values that must never
    show in ``display_url`` or in error messages. Checked:

    1. a sink factory is registered for the URL's protocol, and ``check_access`` passes;
    2. a file is invisible until ``commit``; then it reads back exactly, and the committed
       description has its key, size and sha256;
    3. ``abort`` leaves nothing at the key, and writing the same key again replaces it (retries
       rewrite the same names);
    4. a 12 MiB file written in 1 MiB pieces, ``memoryview`` ones included, reads back exactly;
    5. keys with spaces and non-ASCII characters work;
    6. a whole export through the sink writes its files and the manifest, which lists them;
    7. no secret shows in ``display_url``.
    """
    plugins = [] if plugin is None else [plugin]
    options = dict(storage_options or {})
    base = f"{str(url).rstrip('/')}/conformance-{uuid.uuid4().hex[:8]}"
    _pm, components = load_components(plugins=plugins)
    factory = components.sink_for(base)
    sink = factory(base, options)
    try:
        for secret in secrets:
            assert secret not in sink.display_url, "display_url shows a credential"
        sink.check_access()
        _check_commit(sink)
        _check_abort_and_rewrite(sink)
        _check_big_file(sink)
    finally:
        sink.close()
    _check_export_through(plugins, base, options)


def _write_file(sink: Any, key: str, pieces: list[bytes | memoryview]) -> Any:
    file = sink.open(key, content_type="application/octet-stream", content_encoding=None)
    assert file.key == key, f"open({key!r}) returned a file whose key is {file.key!r}"
    for piece in pieces:
        file.write(piece)
    return file


def _check_commit(sink: Any) -> None:
    data = b"profile-exports conformance\n" * 100
    key = "folder/committed file é.bin"
    file = _write_file(sink, key, [data[:1000], memoryview(data[1000:])])
    assert file.bytes_written == len(data), f"bytes_written is {file.bytes_written}, {len(data)} were written"
    assert not sink.exists(key), f"{key!r} is visible before commit (readers would see a partial file)"
    committed = file.commit()
    assert committed.key == key, f"the committed key is {committed.key!r}, not {key!r}"
    assert committed.bytes == len(data), f"the committed size is {committed.bytes}, not {len(data)}"
    assert committed.sha256 == hashlib.sha256(data).hexdigest(), "the committed sha256 is not the data's"
    assert sink.exists(key), f"{key!r} is not visible after commit"
    assert sink.read_bytes(key) == data, f"{key!r} does not read back as written"


def _check_abort_and_rewrite(sink: Any) -> None:
    key = "folder/aborted.bin"
    file = _write_file(sink, key, [b"never visible" * 1000])
    file.abort()
    assert not sink.exists(key), f"{key!r} is visible after abort"
    key = "folder/rewritten.bin"
    _write_file(sink, key, [b"first"]).commit()
    _write_file(sink, key, [b"second"]).commit()
    assert sink.read_bytes(key) == b"second", "committing the same key again must replace the file"


def _check_big_file(sink: Any) -> None:
    piece = bytes(range(256)) * 4096  # 1 MiB
    pieces: list[bytes | memoryview] = [piece if i % 2 else memoryview(piece) for i in range(12)]
    key = "folder/big.bin"
    committed = _write_file(sink, key, pieces).commit()
    data = sink.read_bytes(key)
    assert len(data) == committed.bytes == 12 * len(piece), f"a 12 MiB file read back as {len(data)} bytes"
    assert data == piece * 12, "a 12 MiB file does not read back as written"


def _check_export_through(plugins: list[Any], base: str, options: Mapping[str, Any]) -> None:
    profiles = conformance_profiles(50)
    destination = f"{base}/export"
    result = export(
        profiles, destination, plugins=plugins, progress=False, format="json", storage_options=dict(options)
    )
    assert result.rows == len(profiles), f"{result.rows} profiles exported through the sink, not {len(profiles)}"
    assert result.manifest is not None, "an export through the sink must end with a manifest"
    _pm, components = load_components(plugins=plugins)
    sink = components.sink_for(destination)(destination, dict(options))
    try:
        listed = {f.key for f in Manifest.from_json(sink.read_bytes(result.manifest.key)).files}
        for file in result.files:
            assert sink.exists(file.key), f"{file.key} is in the result but not in the destination"
            assert file.key in listed, f"the manifest does not list {file.key}"
    finally:
        sink.close()
