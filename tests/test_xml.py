"""The XML format: exports through the public API, read back with lxml and validated against the XSD."""

from __future__ import annotations

import functools
import gzip
import json
import os
import re
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

import profile_exports as pe
import profile_exports.writers.xml as xml_writer
from profile_exports.errors import DataError
from profile_exports.layout import OutputColumn, OutputLayout
from profile_exports.plugins import load_components

from .conftest import read_csv, read_jsonl

NOW = datetime(2025, 10, 3, 12, 0, tzinfo=UTC)
GROUPS = ["profileIdentities", "device", "commPrefs", "profileProps"]
HEADER = b'<?xml version="1.0" encoding="UTF-8"?>\n<root>\n'


@functools.cache
def _plugins() -> tuple[Any, ...]:
    """The XML plugin, unless it is already a built-in (registering a module twice is an error)."""
    return () if "xml" in load_components()[1].writers else (xml_writer,)


def export_xml(data: Any, out: str, **settings: Any) -> Any:
    return pe.export(data, out, format="xml", plugins=list(_plugins()), now=NOW, **settings)


@functools.cache
def _schema() -> etree.XMLSchema:
    # Read as package data, the way a user of the installed package would find it.
    xsd = resources.files("profile_exports.writers").joinpath("profile-export.xsd").read_bytes()
    return etree.XMLSchema(etree.fromstring(xsd))


def raw(path: str) -> bytes:
    data = Path(path).read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data  # the stdlib, not ISA-L


def parse(path: str) -> etree._Element:
    """A file's document, parsed with lxml and validated against the XSD."""
    root = etree.fromstring(raw(path), etree.XMLParser(resolve_entities=False))
    _schema().assertValid(root)
    return root


Profile = dict[str, Any]  # {"identity": text, group: [(key, value), ...]}


def profiles(root: etree._Element) -> list[Profile]:
    out = []
    for profile in root:
        assert profile.tag == "Profile"
        assert [child.tag for child in profile] == ["identity", *GROUPS]
        row: Profile = {"identity": profile[0].text or ""}
        for group in profile[1:]:
            entries = []
            for entry in group:
                assert [c.tag for c in entry] == ["key", "value"]
                entries.append((entry[0].text or "", entry[1].text or ""))
            row[group.tag] = entries
        out.append(row)
    return out


def read_profiles(result: Any) -> list[Profile]:
    rows: list[Profile] = []
    for f in result.files:
        rows += profiles(parse(f.url))
    return rows


def props(row: Profile) -> dict[str, str]:
    return dict(row["profileProps"])


def replaced(text: str) -> str:
    """The documented replacement rule: NUL -> "-", other characters XML 1.0 cannot hold -> "?"."""
    return re.sub("[\x01-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]", "?", text.replace("\x00", "-"))


# -- structure --------------------------------------------------------------------------------------

FULL = [
    {
        "profile_id": "p1",
        "identity": "user_1",
        "email": "ada@example.com",
        "profile_ids": ["p1", "old1"],
        "device": {"token": "tok-1", "platform": "ios"},
        "comm_prefs": {"MSG-push": False, "MSG-email": True},
        "subscription_groups": {"group1": "Subscribed", "group2": "Unsubscribed"},
        "properties": {"Name": "Ada", "Age": 36, "Gender": "F"},
    },
    {"profile_id": "p2"},
]
FULL_SETTINGS: dict[str, Any] = {
    "identifiers": {"select": ["Identity", "Email"], "all_identities": True, "clevertap_ids": True},
    "properties": {
        "device": ["token", "platform"],
        "comm_prefs": ["MSG-push", "MSG-email", "subscriptionGroups"],
        "user": ["Name", "Gender", "Age", "Ghost"],
        "rename": {"Age": "Years", "Gender": "Sex"},
        "order": ["Years"],
    },
}


def test_every_column_kind_in_reference_order(out: str) -> None:
    result = export_xml(FULL, out, **FULL_SETTINGS)
    assert result.files[0].url.endswith(".xml.gz")
    first, second = read_profiles(result)
    assert first == {
        "identity": "user_1",
        "profileIdentities": [
            ("all_identities", '["user_1","ada@example.com"]'),
            ("clevertapId", "p1"),
            ("clevertapIds", '["p1","old1"]'),
        ],
        "device": [("token", "tok-1"), ("platform", "ios")],
        "commPrefs": [
            ("MSG-push", "false"),
            ("MSG-email", "true"),
            ("subscriptionGroups", '{"group1":"Subscribed","group2":"Unsubscribed"}'),
        ],
        "profileProps": [("Years", "36"), ("Name", "Ada"), ("Sex", "F"), ("Ghost", "")],
    }
    # Every selected key is present for a profile with nothing: missing values are empty.
    assert second == {
        "identity": "",
        "profileIdentities": [("all_identities", ""), ("clevertapId", "p2"), ("clevertapIds", '["p2"]')],
        "device": [("token", ""), ("platform", "")],
        "commPrefs": [("MSG-push", ""), ("MSG-email", ""), ("subscriptionGroups", "")],
        "profileProps": [("Years", ""), ("Name", ""), ("Sex", ""), ("Ghost", "")],
    }


def test_the_bytes_follow_the_output_contract(out: str) -> None:
    result = export_xml(FULL, out, compression="none", **FULL_SETTINGS)
    assert result.files[0].url.endswith(".xml")
    data = Path(result.files[0].url).read_bytes()
    assert data.startswith(HEADER) and data.endswith(b"</root>\n")
    lines = data.decode("utf-8").split("\n")
    assert len(lines) == 2 + 2 + 2  # declaration, <root>, one line per profile, </root>, ""
    assert all(line.startswith("<Profile><identity") and line.endswith("</Profile>") for line in lines[2:4])
    assert "<entry><key>Ghost</key><value/></entry>" in lines[2]  # a missing value is an empty <value/>
    assert lines[3].startswith("<Profile><identity/><profileIdentities><entry><key>all_identities</key><value/>")


def test_groups_are_present_even_when_empty(out: str) -> None:
    result = export_xml(
        [{"profile_id": "p1", "identity": "u1"}],
        out,
        identifiers={"select": ["Identity"], "clevertap_id": False},
        properties={"device": [], "comm_prefs": [], "user": "all"},
    )
    assert result.columns == ("identity",)
    (row,) = read_profiles(result)
    assert row == {"identity": "u1", **{g: [] for g in GROUPS}}


def test_all_identity_values_are_a_json_list(out: str) -> None:
    result = export_xml(FULL[:1], out, identifiers={"select": ["Identity", "Email"], "values": "all"})
    (row,) = read_profiles(result)
    assert json.loads(row["identity"]) == ["user_1", "ada@example.com"]
    assert row["identity"] == '["user_1","ada@example.com"]'


def test_values_are_text_by_the_shared_rules(out: str) -> None:
    data = [
        {
            "profile_id": "p1",
            "properties": {
                "f": 1.5,
                "nan": float("nan"),
                "inf": float("-inf"),
                "yes": True,
                "when": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
                "tags": ["a", "b,c", 'q"'],
            },
        }
    ]
    selection = {"user": ["f", "nan", "inf", "yes", "when", "tags"]}
    (row,) = read_profiles(export_xml(data, out, properties=selection))
    assert props(row) == {
        "f": "1.5",
        "nan": "NaN",
        "inf": "-Infinity",
        "yes": "true",
        "when": "2024-01-02T03:04:05.000000Z",  # microsecond column: sub-second digits
        "tags": '["a","b,c","q\\""]',
    }
    # the same text as CSV, cell for cell, but infinity: CSV writes the word engines read as a float
    _header, (csv_row,) = read_csv(pe.export(data, out + "-csv", format="csv", properties=selection).files[0].url)
    assert {k: csv_row[k] for k in selection["user"]} == props(row) | {"inf": "-inf"}


# -- characters ------------------------------------------------------------------------------------

UNICODE_VALUES = [
    "Zoë 👩🏽‍💻",
    "漢字 テスト",
    "émoji 🎉🎉",
    "Ω≈ç√",
    "\U0010fffd",
    "\ue000\ufffd",
    "\uff46\uff55\uff4c\uff4c",
]  # the last: lead byte 0xEF, like U+FFFE


def test_utf8_and_emoji_round_trip(out: str) -> None:
    data = [{"profile_id": f"p{i}", "identity": f"ü{i}", "Note": v} for i, v in enumerate(UNICODE_VALUES)]
    rows = read_profiles(export_xml(data, out, properties={"user": ["Note"]}))
    assert [props(r)["Note"] for r in rows] == UNICODE_VALUES
    assert [r["identity"] for r in rows] == [f"ü{i}" for i in range(len(UNICODE_VALUES))]


def test_characters_xml_cannot_hold_are_replaced_and_whitespace_survives(out: str) -> None:
    values = {
        "nul": "a\x00b",
        "controls": "1\x012\x0b3\x0c4\x1f5\x7f6",
        "nonchars": "x\ufffey\uffffz",
        "whitespace": "tab\there\nline\r\ncrlf\rcr ",
        "markup": "&<>\"' &amp; <![CDATA[x]]> ]]>",
        "only_cr": "\r",
    }
    data = [{"profile_id": "p1", "identity": "id\x00\r<&>", "properties": values}]
    result = export_xml(data, out, properties={"user": list(values)})
    (row,) = read_profiles(result)
    assert props(row) == {
        "nul": "a-b",
        "controls": "1?2?3?4?5\x7f6",  # U+007F is a legal XML 1.0 character
        "nonchars": "x?y?z",
        "whitespace": "tab\there\nline\r\ncrlf\rcr ",
        "markup": "&<>\"' &amp; <![CDATA[x]]> ]]>",
        "only_cr": "\r",
    }
    assert row["identity"] == "id-\r<&>"
    text = raw(result.files[0].url)
    assert b"&#13;" in text and b"\r" not in text


def test_property_names_are_sanitised_and_escaped_in_keys(out: str) -> None:
    name = "we\x01ird <&> \x00name\r"
    data = [{"profile_id": "p1", "properties": {name: "v", "Name": "Ada"}}]
    result = export_xml(data, out, properties={"user": [name, "Name"], "rename": {"Name": "A&B <x>"}})
    (row,) = read_profiles(result)
    assert row["profileProps"] == [("we?ird <&> -name\r", "v"), ("A&B <x>", "Ada")]


def test_device_attribute_names_are_keys(out: str) -> None:
    data = [{"profile_id": "p1", "device": {"token": "t", "os<version>": "17 & up"}}]
    result = export_xml(data, out, properties={"device": ["os<version>", "token"]})
    (row,) = read_profiles(result)
    assert row["device"] == [("os<version>", "17 & up"), ("token", "t")]


ANY_CHARACTER = st.characters(exclude_categories=["Cs"])  # control characters included
TRICKY = st.sampled_from("\x00\x01\x08\t\n\x0b\x0c\r\x1f\x7f&<>\"']\ufffe\uffff\U0010ffff")


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(
        st.one_of(st.none(), st.text(alphabet=st.one_of(ANY_CHARACTER, TRICKY), max_size=40)),
        min_size=1,
        max_size=12,
    )
)
def test_any_text_parses_and_round_trips_modulo_replacements(tmp_path_factory: Any, values: list[str | None]) -> None:
    out = str(tmp_path_factory.mktemp("hyp"))
    data = [{"profile_id": f"p{i}", "identity": v, "properties": {"Note": v}} for i, v in enumerate(values)]
    result = export_xml(data, out, properties={"user": ["Note"]})
    rows = read_profiles(result)  # parses and validates, whatever the text
    assert [props(r)["Note"] for r in rows] == [replaced(v or "") for v in values]
    # an empty identity counts as missing; others come back like property values
    assert [r["identity"] for r in rows] == [replaced(v or "") for v in values]


# -- files -----------------------------------------------------------------------------------------


def test_rotation_gives_complete_documents_within_the_cap(out: str) -> None:
    cap_mb = 0.02
    source = {"kind": "synthetic", "count": 2000, "seed": 7}
    result = export_xml(None, out, source=source, max_file_mb=cap_mb)
    cap = int(cap_mb * 1_000_000)
    assert len(result.files) >= 3
    sizes = [os.path.getsize(f.url) for f in result.files]
    assert sizes == [f.bytes for f in result.files]
    assert all(size <= cap for size in sizes[:-1])
    per_file = [profiles(parse(f.url)) for f in result.files]  # each file is a valid document
    assert [len(p) for p in per_file] == [f.rows for f in result.files]
    assert all(raw(f.url).startswith(HEADER) and raw(f.url).endswith(b"</root>\n") for f in result.files)
    ids = [dict(row["profileIdentities"])["clevertapId"] for rows in per_file for row in rows]
    assert len(ids) == 2000 == result.rows
    reference = pe.export(None, out + "-json", source=source, format="json", now=NOW)
    assert ids == [r["clevertapId"] for f in reference.files for r in read_jsonl(f.url)]
    names = [Path(f.url).name for f in result.files]
    assert names == sorted(names) and all(n.endswith(".xml.gz") for n in names)


def test_an_export_with_no_rows_is_a_valid_empty_document(out: str) -> None:
    result = export_xml([], out, properties={"user": ["Name"]})
    assert result.rows == 0 and len(result.files) == 1
    root = parse(result.files[0].url)
    assert root.tag == "root" and len(root) == 0
    assert raw(result.files[0].url) == HEADER + b"</root>\n"


def test_writer_names() -> None:
    writer = xml_writer.XmlWriter()
    assert (writer.name, writer.content_type) == ("xml", "application/xml")
    assert writer.compressions[0] == "gzip"
    assert writer.extension("gzip") == "xml.gz" and writer.extension("none") == "xml"
    assert writer.content_encoding("gzip") == "gzip" and writer.content_encoding("none") is None
    assert xml_writer.XSD_PATH.is_file()


# -- the encoder on its own ------------------------------------------------------------------------

LAYOUT = OutputLayout(
    (
        OutputColumn("identity", "identity", "", pa.string()),
        OutputColumn("clevertapId", "profileIdentities", "", pa.string()),
        OutputColumn("device", "device", "device", pa.struct([("token", pa.string())])),
        OutputColumn("Note", "profileProps", "", pa.string()),
    )
)


def _batch() -> pa.RecordBatch:
    device = pa.StructArray.from_arrays(
        [pa.array(["t0", "t1", "t2", "t3"])], names=["token"], mask=pa.array([False, True, False, False])
    )
    return pa.RecordBatch.from_arrays(
        [
            pa.array(["a", None, "c&", "d"]),
            pa.array(["p0", "p1", "p2", "p3"]),
            device,
            pa.array(["x", "<y>", None, "z\x00"]),
        ],
        schema=LAYOUT.schema,
    )


def test_slices_encode_to_slices_of_the_encoding() -> None:
    encoder = xml_writer.XmlEncoder(LAYOUT)
    batch = _batch()
    whole = encoder.encode(batch)
    assert whole.count(b"\n") == 4
    pieces = [encoder.encode(batch.slice(i, 1)) for i in range(4)]
    assert b"".join(pieces) == whole
    assert encoder.encode(batch.slice(1, 2)) == pieces[1] + pieces[2]
    assert encoder.encode(batch.slice(4)) == b""


def test_a_missing_device_has_empty_attribute_values() -> None:
    encoder = xml_writer.XmlEncoder(LAYOUT)
    document = encoder.header() + encoder.encode(_batch()) + encoder.footer()
    root = etree.fromstring(document)
    _schema().assertValid(root)
    rows = profiles(root)
    assert [r["device"] for r in rows] == [[("token", "t0")], [("token", "")], [("token", "t2")], [("token", "t3")]]
    assert [r["identity"] for r in rows] == ["a", "", "c&", "d"]
    assert [props(r)["Note"] for r in rows] == ["x", "<y>", "", "z-"]


def _escaped_batch() -> pa.RecordBatch:
    """Values that grow when escaped: the escaping itself would cross a small limit first."""
    batch = _batch()
    notes = pa.array(["<" * 100, None, "&" * 100, ">" * 100])
    return pa.RecordBatch.from_arrays([*batch.columns[:3], notes], schema=LAYOUT.schema)


@pytest.mark.parametrize(("make", "limit"), [(_batch, 300), (_batch, 500), (_batch, 1000), (_escaped_batch, 1000)])
def test_batches_too_large_for_one_arrow_array_are_split(
    monkeypatch: pytest.MonkeyPatch, make: Any, limit: int
) -> None:
    encoder = xml_writer.XmlEncoder(LAYOUT)
    batch = make()
    expected = encoder.encode(batch)
    assert len(expected) > limit
    monkeypatch.setattr(xml_writer, "_MAX_ARRAY_BYTES", limit)  # Arrow's is 2 GiB: too big for a test
    sizes: list[int] = []
    encode_rows = encoder._encode

    def spy(rows: pa.RecordBatch) -> bytes:
        sizes.append(rows.num_rows)
        return encode_rows(rows)

    monkeypatch.setattr(encoder, "_encode", spy)
    assert encoder.encode(batch) == expected
    assert sizes[0] == 4 and min(sizes) < 4  # it did split


def test_a_single_profile_too_large_for_one_arrow_array_is_a_data_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xml_writer, "_MAX_ARRAY_BYTES", 50)
    with pytest.raises(DataError, match="too large"):
        xml_writer.XmlEncoder(LAYOUT).encode(_batch())
