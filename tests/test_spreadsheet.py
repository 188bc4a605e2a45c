"""Spreadsheet safety of CSV cells: nothing an export writes runs as a formula when opened."""

from __future__ import annotations

import re

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

import profile_exports as pe
from profile_exports.errors import ConfigError
from profile_exports.spreadsheet import TRIGGERS, original_text, safe_name, safe_texts

from .conftest import read_csv
from .formats import read_rows, unnest

RESTORE = re.compile(r"^'(?='*[=+\-@\t\r])")  # the documented reader rule, written out independently


def restore(cell: str) -> str:
    restored = RESTORE.sub("", cell)
    assert original_text(cell) == restored
    return restored


DANGEROUS = {
    "formula": '=HYPERLINK("http://x","y")',
    "plus": "+1-555-0100",
    "minus": "-2+3+cmd|' /C calc'!A0",
    "at": "@SUM(A1:A2)",
    "tab": "\t=1",
    "cr": "\r=1",
    "quoted": "'=1+2",
    "quoted_twice": "''+1",
}
HARMLESS = {"plain": "hello", "apostrophe": "'tis", "inner": "a=b", "empty": ""}
# Whole number literals: a spreadsheet reads them as numbers, and every engine must get the value itself.
NUMBER_LITERALS = {"e164": "+15551230001", "negative": "-3", "exponent": "1e5", "signed": "+1.5e3", "point": "-.5"}
NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


def test_csv_cells_that_would_run_as_formulas_are_neutralised_by_default(out: str) -> None:
    profile = {
        "profile_id": "p1",
        "identity": "=cmd",
        "phone": "+15550000001",
        "properties": {
            **DANGEROUS,
            **HARMLESS,
            **NUMBER_LITERALS,
            "count": -5,
            "ratio": -0.5,
            "tags": ["=x", "+y"],
        },
    }
    result = pe.export([profile], out, format="csv", compression="none", identifiers=["Identity", "Phone"])
    _, (row,) = read_csv(result.files[0].url, as_written=True)
    for name, value in DANGEROUS.items():
        assert row[name] == "'" + value, name
        assert restore(row[name]) == value
    for name, value in {**HARMLESS, **NUMBER_LITERALS}.items():
        assert row[name] == value, name
        assert restore(row[name]) == value
    # The phone passes unchanged in its property column; the identity "=cmd" is neutralised.
    assert row["identity"] == "'=cmd" and row["Phone"] == "+15550000001"
    assert row["count"] == "-5" and row["ratio"] == "-0.5"  # numbers are numbers to a spreadsheet
    assert row["tags"] == '["=x","+y"]'  # JSON text starts with [
    assert not [c for c in row.values() if c and c[0] in TRIGGERS and not NUMBER.fullmatch(c)]


def test_an_e164_phone_is_the_identity_unchanged(out: str) -> None:
    profile = {"profile_id": "p1", "phone": "+15550000001", "properties": {"Phone": "+15550000001"}}
    result = pe.export([profile], out, format="csv", compression="none", identifiers=["Phone"])
    _, (row,) = read_csv(result.files[0].url, as_written=True)
    assert row["identity"] == "+15550000001" and row["Phone"] == "+15550000001"


def test_spreadsheet_safety_can_be_turned_off_for_a_lossless_csv(out: str) -> None:
    profile = {"profile_id": "p1", "properties": DANGEROUS}
    result = pe.export([profile], out, format="csv", compression="none", spreadsheet_safe=False)
    _, (row,) = read_csv(result.files[0].url, as_written=True)
    assert {k: row[k] for k in DANGEROUS} == DANGEROUS


@pytest.mark.parametrize("fmt", ["json", "xml", "parquet"])
def test_other_formats_keep_values_exactly(out: str, fmt: str) -> None:
    result = pe.export([{"profile_id": "p1", "properties": DANGEROUS}], out, format=fmt)
    (row,) = read_rows(result)
    row = unnest(row) if fmt == "parquet" else row
    assert {k: row[k] for k in DANGEROUS} == DANGEROUS


def test_header_names_are_made_safe_too(out: str) -> None:
    result = pe.export([{"profile_id": "p1", "properties": {"=x": "1"}}], out, format="csv", compression="none")
    header, _ = read_csv(result.files[0].url, as_written=True)
    assert "'=x" in header and safe_name("Name") == "Name"


def test_spreadsheet_safe_must_be_a_boolean(out: str) -> None:
    with pytest.raises(ConfigError, match=r"destination\.spreadsheet_safe"):
        pe.export([{"profile_id": "p1"}], out, format="csv", spreadsheet_safe="yes")


texts = st.lists(
    st.one_of(st.none(), st.text(alphabet=st.sampled_from("=+-@\t\r'ab \"é,0123.e"), max_size=6)), max_size=40
)


@given(values=texts, start=st.integers(0, 5), large=st.booleans())
def test_no_cell_starts_a_formula_and_the_reader_rule_restores_all(
    values: list[str | None], start: int, large: bool
) -> None:
    column = pa.array(values, pa.large_string() if large else pa.string()).slice(min(start, len(values)))
    made_safe = safe_texts(column)
    made_safe.validate(full=True)
    assert made_safe.type == column.type
    safe = made_safe.to_pylist()
    for original, cell in zip(column.to_pylist(), safe, strict=True):
        if original is None:
            assert cell is None
            continue
        assert not (cell and cell[0] in TRIGGERS) or (cell == original and NUMBER.fullmatch(cell))
        assert restore(cell) == original
        assert cell == original or cell == "'" + original
