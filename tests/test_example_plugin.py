"""The example plugin project (examples/plugins/profile-exports-avro), installed as a user would
(`nox -s tests` pip-installs it), works through its entry point alone."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any

import fastavro
import pytest

import profile_exports as pe
from profile_exports import cli
from profile_exports.testing import check_writer

DISTRIBUTION = "profile-exports-avro"


@pytest.fixture(scope="module", autouse=True)
def installed() -> metadata.Distribution:
    try:
        return metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        pytest.fail(f"install the example plugin first: pip install ./examples/plugins/{DISTRIBUTION}")


def read_avro(path: Path) -> list[dict[str, Any]]:
    with open(path, "rb") as f:
        reader = fastavro.reader(f)
        names = {field["name"]: field["sourceName"] for field in reader.writer_schema["fields"]}
        return [{names[k]: v for k, v in record.items()} for record in reader]


def test_the_entry_point_is_declared_by_the_distribution(installed: metadata.Distribution) -> None:
    points = [ep for ep in installed.entry_points if ep.group == "profile_exports"]
    assert [(ep.name, ep.value) for ep in points] == [("avro", "profile_exports_avro")]


def test_the_cli_lists_the_plugin_with_its_distribution(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["plugins"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if "avro" in line)
    assert f"{DISTRIBUTION} 0.1.0" in line


def test_an_export_through_the_entry_point_reads_back_with_fastavro(tmp_path: Path) -> None:
    users = [
        {"profile_id": "__g1", "identity": "u1", "email": "ada@example.com", "Name": "Ada", "Age": 36, "tags": ["a"]},
        {"profile_id": "__g2", "email": "bob@example.com", "Name": "Bob"},
    ]
    result = pe.export(
        users, tmp_path, format="avro", identifiers=["Identity", "Email"], properties={"user": ["Name", "Age", "tags"]}
    )
    assert result.files[0].key.endswith(".avro")
    rows = read_avro(Path(result.files[0].url))
    assert [(r["identity"], r["clevertapId"], r["Name"], r["Age"], r["tags"]) for r in rows] == [
        ("u1", "__g1", "Ada", 36, '["a"]'),
        ("bob@example.com", "__g2", "Bob", None, None),
    ]


def test_the_example_plugin_passes_the_writer_conformance_suite(tmp_path: Path) -> None:
    check_writer(None, "avro", read_avro, tmp_path)
