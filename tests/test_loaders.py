"""What loaders meet: data folders with data files only, CSV whose numbers and booleans are bare."""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

import pytest

import profile_exports as pe
from profile_exports.errors import ConfigError
from profile_exports.manifest import read_manifests

PROFILES = [
    {
        "profile_id": "__g1",
        "identity": "u1",
        "properties": {"Name": 'Ada, "the" first\nline', "Age": 36, "Score": 2.5, "Ok": True, "Note": "", "N": -3},
    },
    {"profile_id": "__g2", "identity": "u2", "properties": {"Name": "Bob", "Age": None, "Ok": False}},
]
COLUMNS = ["Name", "Age", "Score", "Ok", "Note", "N"]


def test_csv_writes_numbers_and_booleans_bare_and_text_quoted(tmp_path: Path) -> None:
    settings = {"identifiers": ["Identity"], "properties": {"user": COLUMNS}}
    result = pe.export(PROFILES, str(tmp_path), format="csv", compression="none", **settings)
    text = Path(result.files[0].url).read_text(encoding="utf-8")
    header, first, rest = text.split("\n", 2)
    assert header == "identity,clevertapId,device,Name,Age,Score,Ok,Note,N"
    # Numbers and booleans bare; text quoted; an empty string "" apart from a missing value (blank).
    assert first == '"u1","__g1","{""token"":null}","Ada, ""the"" first'
    assert rest == 'line",36,2.5,true,"",-3\n"u2","__g2","{""token"":null}","Bob",,,false,,\n'
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[1][3:] == ['Ada, "the" first\nline', "36", "2.5", "true", "", "-3"]


def test_csv_quoting_keeps_gzip_and_rotation_whole(tmp_path: Path) -> None:
    many = [{"profile_id": f"p{i}", "properties": {"Name": f'n,"{i}"', "Age": i}} for i in range(3000)]
    result = pe.export(many, str(tmp_path), format="csv", max_file_mb=0.01, properties={"user": ["Name", "Age"]})
    assert len(result.files) > 1
    rows = []
    for f in result.files:
        rows += list(csv.DictReader(io.StringIO(gzip.decompress(Path(f.url).read_bytes()).decode(), newline="")))
    assert [(r["Name"], int(r["Age"])) for r in rows] == [(f'n,"{i}"', i) for i in range(3000)]


@pytest.mark.parametrize("folders", ["root", "data_type", "run_date", "export_id"])
def test_manifests_live_in_their_own_folder_and_are_read_back(tmp_path: Path, folders: str) -> None:
    first = pe.export(PROFILES, str(tmp_path), format="json", compression="none", folders=folders)
    second = pe.export(PROFILES, str(tmp_path), format="json", compression="none", folders=folders)
    for result in (first, second):
        assert result.manifest is not None
        assert result.manifest.key.startswith("_manifests/") and result.manifest.key.count("/") == 1
        data_folder = Path(result.files[0].url).parent
        in_folder = [Path(f.url) for r in (first, second) for f in r.files if Path(f.url).parent == data_folder]
        files = sorted(p for p in data_folder.iterdir() if p.is_file())
        assert files == sorted(in_folder)  # data files only, nothing else
        folders_inside = [p.name for p in data_folder.iterdir() if p.is_dir()]
        assert folders_inside == (["_manifests"] if folders == "root" else [])  # a "_" folder readers skip
    assert [m.key for m in read_manifests(str(tmp_path))] == [first.manifest.key, second.manifest.key]
    assert [f.key for m in read_manifests(str(tmp_path)) for f in m.files] == [
        f.key for r in (first, second) for f in r.files
    ]


def test_a_folder_template_cannot_take_the_manifests_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"destination\.folder_template.*_manifests"):
        pe.export(PROFILES, str(tmp_path), folders="custom", folder_template="_manifests/{{Date}}")
