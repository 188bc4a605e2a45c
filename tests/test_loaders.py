"""What loaders meet: data folders with data files only, CSV whose numbers and booleans are bare."""

from __future__ import annotations

import csv
import gzip
import io
import math
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

import profile_exports as pe
from profile_exports.errors import ConfigError
from profile_exports.manifest import read_manifests
from profile_exports.spreadsheet import original_text
from profile_exports.writers import csv as csv_writer
from profile_exports.writers.csv import CsvEncoder

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


texts = st.one_of(st.none(), st.text(alphabet=st.sampled_from('ab,"\n\r é=+-1'), max_size=5))
finite = st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False))


@given(
    rows=st.lists(
        st.tuples(texts, st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)), finite, st.none() | st.booleans()),
        min_size=1,
        max_size=30,
    )
)
def test_both_csv_paths_write_the_same_bytes(rows: list[tuple[object, ...]]) -> None:
    """Arrow's writer (the usual path) and the cell join (for chunks with non-finite floats) agree."""
    names = ["t", "i", "f", "b"]
    batch = pa.RecordBatch.from_arrays(
        [pa.array([r[k] for r in rows], t) for k, t in enumerate([pa.string(), pa.int64(), pa.float64(), pa.bool_()])],
        names=names,
    )
    encoder = CsvEncoder(_Layout(names))  # type: ignore[arg-type]
    written = encoder.encode(batch)
    assert written == csv_writer._joined_lines([encoder._cell_values(c) for c in batch.columns])
    parsed = list(csv.reader(io.StringIO(written.decode(), newline="")))
    assert [original_text(row[0]) for row in parsed] == [r[0] or "" for r in rows]
    assert [row[1] for row in parsed] == ["" if r[1] is None else str(r[1]) for r in rows]  # bare integers


class _Layout:
    def __init__(self, names: list[str]) -> None:
        self.names = tuple(names)


def test_non_finite_floats_are_bare_words_every_engine_reads_as_floats(tmp_path: Path) -> None:
    values = [1.5, math.nan, math.inf, -math.inf]
    profiles = [{"profile_id": f"p{i}", "properties": {"x": v}} for i, v in enumerate(values)]
    result = pe.export(profiles, str(tmp_path), format="csv", compression="none", properties={"user": ["x"]})
    lines = Path(result.files[0].url).read_text().splitlines()
    assert [line.rsplit(",", 1)[1] for line in lines[1:]] == ["1.5", "NaN", "inf", "-inf"]
