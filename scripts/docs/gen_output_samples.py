"""Writes ``reference/samples.md`` and the sample files it shows, made by ``profile_exports.export`` at build time.

The same small, fixed set of profiles is exported once per format into a temporary folder; the page
shows each file exactly as written (gzip decompressed; Parquet read back with pyarrow) and the files
themselves are copied into the site for download.
"""

from __future__ import annotations

import gzip
import json
import pprint
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mkdocs_gen_files
import pyarrow.parquet as pq

import profile_exports as pe

PAGE = "reference/samples.md"
FILES = "reference/samples"  # where the downloadable files go, relative to the site root

# Fixed, so every build writes the same names and bytes: the file name carries account, export id and start.
NOW = datetime(2025, 10, 28, 11, 42, 1, tzinfo=UTC)
SETTINGS: dict[str, Any] = {
    "account_id": "100000000",
    "export_id": "1761651721",
    "identifiers": {
        "select": ["Identity", "Email", "Phone"],
        "all_identities": True,
        "clevertap_ids": True,
    },
    "properties": {
        "device": ["token"],
        "comm_prefs": ["MSG-push", "MSG-email", "subscriptionGroups"],
        "user": "all",
    },
}
PROFILES: list[dict[str, Any]] = [
    {
        "profile_id": "__g1001",
        "profile_ids": ["__g1001", "__g0042"],
        "identity": "user_1",
        "email": "ada@example.com",
        "phone": "+15551230001",
        "device": {"token": "fcm-a1b2c3"},
        "comm_prefs": {"MSG-push": True, "MSG-email": True},
        "subscription_groups": {"news": "Subscribed", "offers": "Unsubscribed"},
        "properties": {
            "Name": "Ada Lovelace",
            "Age": 36,
            "Interests": ["chess", "poetry"],
            "Address": {"city": "London", "zip": "NW1"},
        },
    },
    {
        "profile_id": "__g1002",
        "identity": ["user_2", "legacy-2"],
        "email": "bob@example.com",
        "device": {"token": "apns-d4e5f6"},
        "comm_prefs": {"MSG-push": False, "MSG-email": True},
        "properties": {"Name": "Bob, Jr.", "Age": 41, "Interests": [], "Address": {"city": "Paris"}},
    },
    {
        "profile_id": "__g1003",
        "phone": "+15551230003",
        "comm_prefs": {"MSG-email": False},
        "properties": {"Name": 'Cy "the third"', "Interests": ["go"]},
    },
]
# (folder, section title, format, extra settings, code-block language for the contents: "" for Parquet, note)
RUNS = [
    (
        "csv",
        "CSV",
        "csv",
        {},
        "text",
        "Text cells starting with `+` (the phones) get a leading `'`: see "
        "[spreadsheet safety](../output.md#spreadsheet-safety).",
    ),
    ("json", "JSON Lines", "json", {}, "json", "See [JSON](../output.md#json)."),
    ("xml", "XML", "xml", {}, "xml", "See [XML](../output.md#xml)."),
    (
        "parquet-nested",
        "Parquet, nested layout",
        "parquet",
        {},
        "",
        "See [Parquet](../output.md#parquet); a map reads back from pyarrow as a list of key/value pairs.",
    ),
    (
        "parquet-flat",
        "Parquet, flat layout",
        "parquet",
        {"parquet_layout": "flat", "compression": "zstd"},
        "",
        "One typed top-level column per output column.",
    ),
]


def fence(language: str, text: str) -> list[str]:
    return [f"```{language}", text.rstrip("\n"), "```"]


def contents(path: Path, language: str) -> list[str]:
    """What the page shows of one file."""
    if not language:
        table = pq.read_table(path)
        metadata = pq.read_metadata(path)
        codecs = sorted({metadata.row_group(0).column(i).compression for i in range(metadata.num_columns)})
        rows = "\n".join(json.dumps(row, default=str, ensure_ascii=False) for row in table.to_pylist())
        return [
            f"{metadata.num_row_groups} row group(s); page compression: {', '.join(codecs)}.",
            "",
            "Arrow schema:",
            "",
            *fence("text", table.schema.to_string(element_size_limit=10_000)),
            "",
            "Rows, read with pyarrow:",
            "",
            *fence("json", rows),
        ]
    data = path.read_bytes()
    shown = "shown decompressed" if path.suffix == ".gz" else "shown as written"
    text = (gzip.decompress(data) if path.suffix == ".gz" else data).decode("utf-8")
    return [f"Contents ({shown}):", "", *fence(language, text)]


def page(folder: Path) -> str:
    lines = [
        "# Output samples (generated)",
        "",
        "These files were written by `profile_exports.export()` while this site was built, from the",
        "profiles below; the rules they follow are in the [output contract](../output.md). Every run also",
        "writes a manifest, to `_manifests/` at the destination root (outside the data folders): see",
        "[the run manifest](../export-center.md#the-run-manifest-and-crash-safety).",
        "",
        "```python",
        "import profile_exports as pe",
        "",
        f"profiles = {pprint.pformat(PROFILES, sort_dicts=False, width=100)}",
        f"settings = {pprint.pformat(SETTINGS, sort_dicts=False, width=100)}",
        "pe.export(profiles, destination, format=..., **settings)",
        "```",
    ]
    for name, title, fmt, extra, language, note in RUNS:
        destination = folder / name
        result = pe.export(PROFILES, destination, format=fmt, now=NOW, progress=False, **SETTINGS, **extra)
        options = "".join(f', `{key}="{value}"`' for key, value in extra.items())
        lines += ["", f"## {title}", "", f'`format="{fmt}"`{options}. {note}']
        for file in result.files:
            path = destination / file.key
            with mkdocs_gen_files.open(f"{FILES}/{name}/{file.key}", "wb") as out:
                out.write(path.read_bytes())
            lines += [
                "",
                f"File [`{file.key}`](samples/{name}/{file.key}): {file.rows} rows, {file.bytes:,} bytes.",
                "",
            ]
            lines += contents(path, language)
    return "\n".join(lines) + "\n"


with tempfile.TemporaryDirectory(prefix="profile-exports-docs-") as tmp, mkdocs_gen_files.open(PAGE, "w") as out:
    out.write(page(Path(tmp)))
