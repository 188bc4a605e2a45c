"""One output contract: the same input in CSV, JSON, XML and Parquet gives the same rows, columns and
values once each format's encoding is undone (docs/output.md lists the documented differences:
CSV and XML do not tell a missing value from an empty string; XML replaces characters it cannot carry).
"""

from __future__ import annotations

import math
import re
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import profile_exports as pe

from .formats import decode_rows, read_rows, same, unnest

FORMATS = ("csv", "json", "xml", "parquet")
NOW = datetime(2025, 10, 3, 12, 0, tzinfo=UTC)

RECORDS: list[dict[str, Any]] = [
    {
        "profile_id": "__g1",
        "profile_ids": ["__g1", "old-1"],
        "identity": ["user_1", "user_1b"],
        "email": "ada@example.com",
        "phone": "+15550000001",
        "device": {"token": "tok-1", "platform": "ios"},
        "comm_prefs": {"MSG-push": True, "MSG-email": False, "MSG-sms": None},
        "subscription_groups": {"newsletter": "Subscribed", "offers": "Unsubscribed"},
        "properties": {
            "Name": "Ada Lovelace ✨",
            "Age": 36,
            "score": 1.5,
            "premium": True,
            "tags": ["a", "b,c", 'quote"d'],
            "joined": datetime(2020, 5, 17, 8, 30, tzinfo=UTC),
            "birthday": date(1989, 12, 10),
            "prefs": {"theme": "dark", "size": 3},
            "mixed": 31,
            "note": "line1\nline2\ttab",
        },
    },
    {
        "profile_id": "__g2",
        "email": "bob@example.com",
        "device": {"token": None},
        "properties": {
            "Name": "",
            "Age": None,
            "score": float("nan"),
            "premium": False,
            "tags": [],
            "mixed": "31x",
            "note": "émoji 🎉 & <xml>",
        },
    },
    {
        "profile_id": "__g3",
        "phone": "+447700900123",
        "properties": {
            "score": float("inf"),
            "tags": None,
            "joined": datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC),
            "mixed": 2.5,
            "Name": "漢字",
        },
    },
]
SETTINGS: dict[str, Any] = {
    "identifiers": {"select": ["Identity", "Email", "Phone"], "all_identities": True, "clevertap_ids": True},
    "properties": {
        "device": ["token", "platform"],
        "comm_prefs": ["MSG-push", "MSG-email", "MSG-sms", "subscriptionGroups"],
        "rename": {"Age": "Years"},
        "order": ["Name"],
    },
}


def export_all(data: Any, folder: Path, **settings: Any) -> dict[str, pe.ExportResult]:
    results = {
        fmt: pe.export(
            data,
            str(folder / fmt),
            format=fmt,
            now=NOW,
            export_id="7",
            progress=False,
            **({"parquet_layout": "flat"} if fmt == "parquet" else {}),
            **settings,
        )
        for fmt in FORMATS
    }
    results["nested"] = pe.export(
        data, str(folder / "nested"), format="parquet", now=NOW, export_id="7", progress=False, **settings
    )
    return results


def assert_one_contract(results: dict[str, pe.ExportResult], *, xml_safe: bool = False) -> None:
    columns = {r.columns for r in results.values()}
    assert len(columns) == 1, columns
    schema = pq.read_schema(results["parquet"].files[0].url)
    assert tuple(schema.names) == results["csv"].columns
    reference = decode_rows(read_rows(results["parquet"]), schema, "parquet")
    nested = [unnest(r) for r in read_rows(results["nested"])]
    assert len(nested) == len(reference)
    assert all(same(a, b) for a, b in zip(nested, reference, strict=True))
    for fmt in ("csv", "json", "xml"):
        rows = decode_rows(read_rows(results[fmt]), schema, fmt)
        expected = [_xml_safe(r) for r in reference] if fmt == "xml" and xml_safe else reference
        if fmt == "json":  # JSON has no numbers for NaN and the infinities: null (json_non_finite = "null")
            expected = [_json_null_non_finite(r) for r in expected]
        assert len(rows) == len(expected)
        for got, want in zip(rows, expected, strict=True):
            assert same(got, want, blank_is_null=fmt in ("csv", "xml")), (fmt, got, want)
    counts = {tuple(sorted(r.values_as_text.items())) for r in results.values()}
    assert len(counts) == 1, counts


_XML_BAD = re.compile("[\x01-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _json_null_non_finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_null_non_finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_null_non_finite(v) for v in value]
    return value


def _xml_safe(value: Any) -> Any:
    """The documented XML character rule: NUL -> '-', other characters XML 1.0 cannot hold -> '?'."""
    if isinstance(value, str):
        return _XML_BAD.sub("?", value.replace("\x00", "-"))
    if isinstance(value, dict):
        return {k: _xml_safe(v) for k, v in value.items()}
    return value  # lists are JSON text in XML, which escapes control characters itself


def test_the_four_formats_agree_on_rows_columns_and_values(tmp_path: Path) -> None:
    results = export_all(RECORDS, tmp_path, **SETTINGS)
    assert results["csv"].columns == (
        "identity",
        "all_identities",
        "clevertapId",
        "clevertapIds",
        "device",
        "MSG-push",
        "MSG-email",
        "MSG-sms",
        "subscriptionGroups",
        "Name",
        "Email",
        "Phone",
        "Years",
        "score",
        "premium",
        "tags",
        "joined",
        "birthday",
        "prefs",
        "mixed",
        "note",
    )
    assert_one_contract(results)
    schema = pq.read_schema(results["parquet"].files[0].url)
    assert str(schema.field("Years").type) == "int64"
    assert str(schema.field("joined").type) == "timestamp[us, tz=UTC]"
    assert str(schema.field("birthday").type) == "date32[day]"
    assert str(schema.field("mixed").type) == "string"  # 31, "31x" and 2.5: kept as text, counted
    assert results["json"].values_as_text == {"mixed": 2}
    rows = decode_rows(read_rows(results["parquet"]), schema, "parquet")
    assert [r["mixed"] for r in rows] == ["31", "31x", "2.5"]
    assert math.isnan(rows[1]["score"]) and rows[2]["score"] == math.inf


TEXT = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"]),  # any character a Python str can carry in UTF-8
    max_size=40,
)
VALUES = st.one_of(
    st.none(),
    TEXT,
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.lists(TEXT, max_size=3),
)
PROFILES = st.lists(
    st.fixed_dictionaries(
        {"identity": st.one_of(st.none(), TEXT), "email": st.one_of(st.none(), TEXT)},
        optional={
            "properties": st.dictionaries(st.sampled_from(["Name", "a", "b c", "emoji 🎉"]), VALUES, max_size=4),
        },
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(PROFILES)
def test_round_trip_of_arbitrary_profiles_in_every_format(profiles: list[dict[str, Any]]) -> None:
    records = [{"profile_id": f"p{i}", **p} for i, p in enumerate(profiles)]
    with tempfile.TemporaryDirectory() as folder:
        results = export_all(records, Path(folder), identifiers={"select": ["Identity", "Email"]})
        assert_one_contract(results, xml_safe=True)
        assert results["json"].rows == len(records)


def test_very_long_values_and_every_control_character(tmp_path: Path) -> None:
    controls = "".join(chr(c) for c in range(32)) + "\x7f\u2028\ufeff"
    records = [
        {"profile_id": "long", "properties": {"blob": "x" * 2_000_000, "ctl": controls}},
        {"profile_id": "short", "properties": {"blob": "", "ctl": None}},
    ]
    results = export_all(records, tmp_path)
    assert_one_contract(results, xml_safe=True)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_property_missing_everywhere_is_a_column_in_every_format(tmp_path: Path, fmt: str) -> None:
    result = pe.export([{"profile_id": "p1"}], str(tmp_path), format=fmt, properties={"user": ["Ghost"]})
    assert result.columns[-1] == "Ghost"
    (row,) = read_rows(result)
    assert "Ghost" in (row if fmt != "parquet" or "Ghost" in row else row["profileProps"])
