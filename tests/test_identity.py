"""Identity fallback against a plain-Python reference, on random batches."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

import profile_exports as pe
from profile_exports.canonical import EMAIL, IDENTITY, PHONE, PROFILE_ID, STRING_LIST, property_column
from profile_exports.config import IdentifierConfig
from profile_exports.identity import resolve_identifiers

text = st.one_of(st.none(), st.just(""), st.text(alphabet="ab@+1", min_size=1, max_size=4))
identity_items = st.one_of(st.none(), st.just(""), st.sampled_from(["u1", "u2"]))
identities = st.one_of(st.none(), st.lists(identity_items, max_size=3))
rows = st.lists(st.tuples(identities, text, text, text, st.one_of(st.none(), st.integers(-3, 3))), max_size=40)
orders = st.permutations(["Identity", "Email", "Phone", "crm_id", "score"])


def _reference(row: dict[str, object], order: list[str]) -> str | None:
    for name in order:
        value = row[name]
        for item in value if isinstance(value, list) else [value]:
            if item is not None and str(item) != "":
                return str(item)
    return None


@settings(max_examples=200, deadline=None)
@given(rows, orders)
def test_fallback_is_each_rows_first_non_empty_identifier(records, order) -> None:
    names = ["Identity", "Email", "Phone", "crm_id", "score"]
    as_rows = [dict(zip(names, r, strict=True)) for r in records]
    columns = list(zip(*records, strict=True)) if records else [[]] * 5
    batch = pa.record_batch(
        {
            PROFILE_ID: pa.array([f"p{i}" for i in range(len(records))], pa.string()),
            IDENTITY: pa.array(columns[0], STRING_LIST),
            EMAIL: pa.array(columns[1], pa.string()),
            PHONE: pa.array(columns[2], pa.string()),
            property_column("crm_id"): pa.array(columns[3], pa.string()),
            property_column("score"): pa.array(columns[4], pa.int64()),
        }
    )
    settings_ = IdentifierConfig(select=tuple(order))
    got = resolve_identifiers(batch, settings_)["identity"].to_pylist()
    assert got == [_reference(r, order) for r in as_rows]


def test_an_empty_email_field_falls_back_to_the_email_property(tmp_path: Path) -> None:
    users = [
        {"profile_id": "__g1", "email": "", "Email": "prop@example.com"},
        {"profile_id": "__g2", "email": "field@example.com", "Email": "prop2@example.com"},
    ]
    result = pe.export(users, tmp_path, format="json", identifiers=["Email"], progress=False)
    rows = [json.loads(line) for line in gzip.decompress(Path(result.files[0].url).read_bytes()).splitlines()]
    assert [r["identity"] for r in rows] == ["prop@example.com", "field@example.com"]
