"""Phones: every run counts those not in E.164; phone_format = "e164" rewrites them (extra [phones])."""

from __future__ import annotations

import re
import sys

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

import profile_exports as pe
from profile_exports.errors import ConfigError, MissingExtraError
from profile_exports.phones import E164, not_e164

from .conftest import read_result
from .formats import read_rows

PROFILES = [
    {"profile_id": "p1", "phone": "+15551234567"},  # E.164 already
    {"profile_id": "p2", "phone": "(555) 123-4568"},  # national format: needs the region
    {"profile_id": "p3", "phone": "+44 20 7946 0958"},  # international with spaces
    {"profile_id": "p4", "phone": "not a phone"},
    {"profile_id": "p5", "phone": ""},  # empty: no phone, not a wrong one
    {"profile_id": "p6"},  # missing
]


def test_every_run_counts_and_reports_phones_that_are_not_e164(out: str) -> None:
    result = pe.export(PROFILES, out, format="json")
    assert result.phones_not_e164 == 3
    assert "3 phone value(s) not in E.164" in result.summary()
    assert sum(p.phones_not_e164 for p in result.partitions) == 3
    phones = [r["Phone"] for r in read_result(result)]
    assert phones == ["+15551234567", "(555) 123-4568", "+44 20 7946 0958", "not a phone", "", None]  # as given


def test_phone_format_e164_rewrites_the_phones_it_can_parse(out: str) -> None:
    result = pe.export(
        PROFILES,
        out,
        format="json",
        identifiers={"select": ["Phone"]},
        properties={"phone_format": "e164", "phone_region": "US"},
    )
    rows = read_result(result)
    assert [r["Phone"] for r in rows] == ["+15551234567", "+15551234568", "+442079460958", "not a phone", "", None]
    assert rows[1]["identity"] == "+15551234568"  # identifiers use the rewritten phone too
    assert result.phones_not_e164 == 1  # only what could not be parsed is left


def test_without_a_region_national_numbers_are_kept_and_counted(out: str) -> None:
    result = pe.export(PROFILES, out, format="csv", properties={"phone_format": "e164"})
    phones = [r["Phone"] for r in read_result(result)]
    assert phones[1] == "(555) 123-4568" and phones[2] == "+442079460958"
    assert result.phones_not_e164 == 2


@pytest.mark.parametrize("region", ["us", "USA", "ZZ"])
def test_a_bad_region_is_a_config_error(out: str, region: str) -> None:
    with pytest.raises(ConfigError, match=r"properties\.phone_region"):
        pe.export(PROFILES, out, properties={"phone_format": "e164", "phone_region": region})


def test_without_the_extra_the_error_names_it(out: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "phonenumbers", None)  # import phonenumbers now raises ImportError
    with pytest.raises(MissingExtraError, match=r"profile-exports\[phones\]"):
        pe.export(PROFILES, out, properties={"phone_format": "e164"})
    assert pe.export(PROFILES, out + "-plain").phones_not_e164 == 3  # counting needs no extra


def test_the_preview_shows_the_phones_as_they_will_be_written(out: str) -> None:
    config = {
        "source": {"kind": "records", "data": PROFILES},
        "destination": {"url": out, "format": "json"},
        "properties": {"phone_format": "e164", "phone_region": "US"},
    }
    assert [r["Phone"] for r in pe.preview(config, rows=3).rows] == ["+15551234567", "+15551234568", "+442079460958"]


def test_a_phone_property_from_a_flat_table_is_rewritten_and_counted_too(out: str) -> None:
    # A flat table's Phone column is a property, which the Phone identifier and column fall back to.
    flat = pa.table(
        {"profile_id": ["f1", "f2", "f3"], "Phone": ["(555) 123-4568", "+15551234567", "not a phone"]}
    )
    counted = pe.export(flat, out + "/as-is", format="json")
    assert counted.phones_not_e164 == 2
    result = pe.export(
        flat,
        out + "/e164",
        format="json",
        identifiers={"select": ["Phone"]},
        properties={"phone_format": "e164", "phone_region": "US"},
    )
    rows = read_result(result)
    assert [r["Phone"] for r in rows] == ["+15551234568", "+15551234567", "not a phone"]
    assert [r["identity"] for r in rows] == ["+15551234568", "+15551234567", "not a phone"]
    assert result.phones_not_e164 == 1


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_the_phone_and_email_columns_take_the_field_where_the_property_is_missing(out: str, fmt: str) -> None:
    mixed = [
        {"profile_id": "m1", "phone": "+15551230001", "email": "a@example.com"},  # fields
        {"profile_id": "m2", "Phone": "+15551230002", "Email": "b@example.com"},  # properties
        {"profile_id": "m3"},
    ]
    properties = {"user": ["Email", "Phone"]}
    result = pe.export(mixed, f"{out}/{fmt}", format=fmt, parquet_layout="flat", properties=properties)
    rows = read_rows(result)
    assert [(r["Email"], r["Phone"]) for r in rows] == [
        ("a@example.com", "+15551230001"),
        ("b@example.com", "+15551230002"),
        (None, None) if fmt != "csv" else ("", ""),
    ]


@given(
    values=st.lists(
        st.one_of(st.none(), st.text(alphabet=st.sampled_from("+0123456789 -()a\n\u0663é"), max_size=18)), max_size=30
    ),
    start=st.integers(0, 4),
)
def test_the_e164_count_agrees_with_the_regular_expression(values: list[str | None], start: int) -> None:
    column = pa.array(values, pa.string()).slice(min(start, len(values)))
    expected = sum(1 for v in column.to_pylist() if v and not re.fullmatch(E164, v, flags=re.ASCII))
    assert not_e164(column) == expected
    assert not_e164(column.cast(pa.large_string())) == expected
    assert not_e164(column.dictionary_encode()) == expected
