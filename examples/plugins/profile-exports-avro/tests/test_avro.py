"""The Avro writer against profile-exports' conformance suite, read back with fastavro."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastavro

import profile_exports as pe
from profile_exports.testing import check_writer


def read_avro(path: Path) -> list[dict[str, Any]]:
    with open(path, "rb") as f:
        reader = fastavro.reader(f)
        names = {field["name"]: field.get("sourceName", field["name"]) for field in reader.writer_schema["fields"]}
        return [{names[k]: v for k, v in record.items()} for record in reader]


def test_the_avro_writer_passes_the_conformance_suite(tmp_path: Path) -> None:
    check_writer(None, "avro", read_avro, tmp_path)  # installed: found through its entry point


def test_types_survive_and_names_are_avro_names(tmp_path: Path) -> None:
    users = [{"profile_id": "__g1", "identity": "u1", "Customer Type": "gold", "Age": 36, "Premium": True}]
    result = pe.export(users, tmp_path, format="avro", properties={"user": ["Customer Type", "Age", "Premium"]})
    with open(result.files[0].url, "rb") as f:
        reader = fastavro.reader(f)
        assert reader.codec == "deflate"
        fields = {field["name"]: field["sourceName"] for field in reader.writer_schema["fields"]}
        (record,) = list(reader)
    assert fields["Customer_Type"] == "Customer Type"
    assert (record["identity"], record["Customer_Type"], record["Age"], record["Premium"]) == ("u1", "gold", 36, True)
