"""Random and adversarial configurations: each is either refused with a ConfigError naming the setting,
or accepted and then writes files only under the destination, at keys every store accepts."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import profile_exports as pe
from profile_exports.config import ExportConfig
from profile_exports.errors import ConfigError

SECTIONS = {
    "name",
    "account_id",
    "export_id",
    "source",
    "destination",
    "identifiers",
    "properties",
    "schedule",
    "execution",
    "transforms",
}
RECORDS = [
    {"profile_id": "p1", "email": "a@example.com", "properties": {"Name": "Ada", "Age": 36, "crm_id": "c1"}},
    {"profile_id": "p2", "phone": "+15550000002", "properties": {"Name": "Bob", "city": "Oslo"}},
]
MAX_KEY_BYTES = 1024  # S3's limit; GCS and Azure allow as much or more
MAX_SEGMENT_BYTES = 255  # a local file or folder name

# Pieces of templates and names: ones a valid template may hold, and ones a careless or hostile config
# might (traversal, absolute paths, look-alikes of / and .., control characters, unknown variables).
SAFE_FRAGMENTS = [
    "{{Date}}",
    "{{Export-id}}",
    "{{account-ID}}",
    "{{ Timestamp }}",
    "{{Instance-id}}",
    "/",
    "run",
    "-",
    "_",
    "x" * 60,
    "a" * 250,
    "b" * 300,
]
HOSTILE_FRAGMENTS = [
    "{{Unknown}}",
    "{{",
    "}}",
    "..",
    ".",
    "//",
    "/etc/passwd",
    "\\",
    "C:",
    "~",
    "\u2215",  # division slash, a look-alike of /
    "\u2024\u2024",  # one dot leaders, a look-alike of ..
    "\uff0e\uff0e",  # fullwidth full stops
    "\uff46\uff55\uff4c\uff4c",  # fullwidth "full"
    "\u202e",  # right-to-left override
    "\x00",
    "\n",
    " ",
    "%2e%2e",
    "$HOME",
    "${HOME}",
]
safe_template = st.lists(st.sampled_from(SAFE_FRAGMENTS), min_size=1, max_size=5).map("".join)
hostile_template = st.lists(st.sampled_from(SAFE_FRAGMENTS + HOSTILE_FRAGMENTS), max_size=6).map("".join)
template = st.one_of(safe_template, safe_template, hostile_template)
known = st.sampled_from(["Email", "Name", "Age", "crm_id", "city", "Phone", "identity", "Identity"])
name = st.one_of(known, known, known, hostile_template)
names = st.lists(name, max_size=4)


@st.composite
def valid_configs(draw: st.DrawFn) -> dict[str, Any]:
    """Configurations a careful user might write, with long names and every variable."""
    folders = draw(st.sampled_from(["root", "data_type", "run_date", "export_id", "custom"]))
    destination: dict[str, Any] = {
        "format": draw(st.sampled_from(["csv", "json", "xml", "parquet"])),
        "folders": folders,
    }
    if folders == "custom":
        destination["folder_template"] = draw(safe_template)
    if draw(st.booleans()):
        destination["file_name"] = draw(st.one_of(safe_template, safe_template.map(lambda t: t + ".csv.gz")))
    raw: dict[str, Any] = {"destination": destination}
    if draw(st.booleans()):
        raw["account_id"] = draw(st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True))
    if draw(st.booleans()):
        raw["identifiers"] = {
            "select": draw(st.lists(known, min_size=1, max_size=4, unique_by=str.lower)),
            "values": draw(st.sampled_from(["fallback", "all"])),
        }
    if draw(st.booleans()):
        raw["properties"] = {
            "user": draw(st.one_of(st.sampled_from(["all", "system"]), st.lists(known, max_size=3))),
            "rename": draw(st.dictionaries(known, known, max_size=2)),  # may make duplicate output names
            "order": draw(st.lists(known, max_size=3)),
        }
    return raw


def _set(raw: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    table = raw
    for part in parents:
        table = table.setdefault(part, {})
    table[last] = value


# Settings an adversary (or a typo) might change, and the values they might put there.
MUTATIONS = st.one_of(
    st.tuples(st.just("destination.folders"), st.just("custom"))
    .map(lambda m: [m])
    .flatmap(lambda ms: st.tuples(st.just("destination.folder_template"), hostile_template).map(lambda t: [*ms, t])),
    st.tuples(st.just("destination.file_name"), hostile_template).map(lambda m: [m]),
    st.tuples(st.just("destination.format"), st.sampled_from(["csv ", "CSV", "../csv", "", "avro"])).map(lambda m: [m]),
    st.tuples(st.just("destination.folders"), st.sampled_from(["other", "", "../up"])).map(lambda m: [m]),
    st.tuples(
        st.just("destination.max_file_mb"), st.one_of(st.floats(allow_nan=True), st.integers(-5, 10**7), st.text())
    ).map(lambda m: [m]),
    st.tuples(st.just("account_id"), hostile_template).map(lambda m: [m]),
    st.tuples(st.just("export_id"), st.sampled_from(["0", "-1", "1e9", "12" * 40, "../1", " 1"])).map(lambda m: [m]),
    st.tuples(st.just("identifiers.select"), names).map(lambda m: [m]),
    st.tuples(st.just("properties.rename"), st.dictionaries(name, name, max_size=3)).map(lambda m: [m]),
    st.tuples(st.just("properties.user"), st.one_of(st.just("none"), names)).map(lambda m: [m]),
    st.tuples(st.just("properties.order"), names).map(lambda m: [m]),
    st.tuples(st.just("schedule.every_hours"), st.one_of(st.integers(-3, 30), st.floats(allow_nan=True))).map(
        lambda m: [m, ("schedule.frequency", "recurring")]
    ),
    st.tuples(st.just("schedule.frequency"), st.sampled_from(["hourly", ""])).map(lambda m: [m]),
    st.tuples(st.just("transforms.drop"), names).map(lambda m: [m]),
    st.tuples(st.sampled_from(["destinaton", "propertie", "extra"]), st.just({})).map(lambda m: [m]),
)


@st.composite
def configs(draw: st.DrawFn) -> dict[str, Any]:
    raw = draw(valid_configs())
    for mutation in draw(st.lists(MUTATIONS, max_size=2)):
        for path, value in mutation:
            _set(raw, path, value)
    return raw


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=configs())
def test_every_config_is_refused_with_its_field_named_or_exports_inside_the_destination(raw: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch)
        destination = base / "dest"
        raw["destination"]["url"] = str(destination)
        try:
            config = ExportConfig.from_mapping({**raw, "source": {"kind": "records", "data": RECORDS}})
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # duplicate output names are dropped with a warning
                result = pe.Exporter(config, progress=False).run()
        except ConfigError as error:
            event(f"refused: {error.field.split('[')[0]}")
            assert error.field, f"a ConfigError without a field: {error}"
            assert error.field.split(".")[0].split("[")[0] in SECTIONS | set(raw), error.field
            assert str(error).startswith(error.field), str(error)
            assert not _files(destination), "a refused configuration wrote files"
            return
        event("accepted")
        written = _files(base)
        assert written and all(p.resolve().is_relative_to(destination.resolve()) for p in written)
        assert {Path(f.url).resolve() for f in result.files} <= {p.resolve() for p in written}
        for path in written:
            key = path.relative_to(destination).as_posix()
            assert len(key.encode()) <= MAX_KEY_BYTES
            assert all(0 < len(part.encode()) <= MAX_SEGMENT_BYTES for part in key.split("/"))
            assert all(part not in (".", "..") for part in key.split("/"))
            assert key.isprintable() and "\\" not in key
        assert result.rows == len(RECORDS)
