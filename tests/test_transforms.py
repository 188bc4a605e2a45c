"""PII transforms: hash (salted SHA-256), drop, and plugins' transforms, in every format and in the
fingerprints of incremental runs."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

import profile_exports as pe
from profile_exports import ExportCenter
from profile_exports.config import ExportConfig
from profile_exports.errors import ConfigError, PluginError
from profile_exports.hookspecs import hookimpl
from profile_exports.secrets import withhold

from .formats import read_rows, unnest

SALT = "pepper-Xq81-never-shown"
PROFILES = [
    {
        "profile_id": "p1",
        "identity": ["u1", "u1b"],
        "email": "ada@example.com",
        "phone": "+15550000001",
        "properties": {"Photo": "http://img/1.png", "Age": 36, "Name": "Ada"},
    },
    {"profile_id": "p2", "email": "", "properties": {"Photo": "http://img/2.png", "Name": "Bob"}},
    {"profile_id": "p3", "phone": "+15550000003", "properties": {"Age": 41}},
]


def files_in(out: str) -> list[Path]:
    return [p for p in Path(out).rglob("*") if p.is_file()]


def sha(value: str) -> str:
    return hashlib.sha256((SALT + value).encode()).hexdigest()


def plain(row: dict[str, Any], fmt: str) -> dict[str, Any]:
    return unnest(row) if fmt == "parquet" else row


@pytest.mark.parametrize("fmt", ["csv", "json", "xml", "parquet"])
def test_hash_and_drop_give_the_same_values_in_every_format(
    tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXPORT_SALT", SALT)
    result = pe.export(
        PROFILES,
        str(tmp_path / fmt),
        format=fmt,
        identifiers={"select": ["Identity", "Email", "Phone"]},
        transforms={"hash": ["Email", "Age"], "drop": ["Photo"], "salt": "${EXPORT_SALT}"},
    )
    assert "Photo" not in result.columns and "Email" in result.columns
    rows = [plain(r, fmt) for r in read_rows(result)]
    by_id = {r["clevertapId"]: r for r in rows}
    assert all("Photo" not in r for r in rows)
    assert by_id["p1"]["Email"] == sha("ada@example.com")
    assert by_id["p1"]["Age"] == sha("36")  # a number is hashed as its text
    assert by_id["p2"]["Email"] == sha("")  # an empty string is a value
    missing = "" if fmt in ("csv", "xml") else None
    assert by_id["p3"]["Email"] == missing and by_id["p2"]["Age"] == missing  # missing stays missing
    assert by_id["p1"]["Name"] == "Ada" and by_id["p1"]["Phone"] == "+15550000001"  # untouched
    assert by_id["p1"]["identity"] == "u1"  # the fallback identity was not named: it goes out as is


def test_lists_keep_their_shape_with_every_item_hashed(out: str) -> None:
    result = pe.export(
        PROFILES,
        out,
        format="json",
        identifiers={"select": ["Identity", "Email"], "values": "all"},
        transforms={"hash": ["identity"], "salt": SALT},
    )
    rows = {r["clevertapId"]: r for r in read_rows(result)}
    assert rows["p1"]["identity"] == [sha("u1"), sha("u1b"), sha("ada@example.com")]
    assert rows["p3"]["identity"] in (None, [])


def test_the_hashes_are_what_a_warehouse_computes_from_the_salt(out: str) -> None:
    # sha256(salt || value), lowercase hex: pyarrow has no SHA-256, so hashlib is the reference here
    result = pe.export(PROFILES, out, format="parquet", transforms={"hash": ["Email"], "salt": SALT})
    emails = [plain(r, "parquet")["Email"] for r in read_rows(result)]
    assert emails == [hashlib.sha256(f"{SALT}{e}".encode()).hexdigest() for e in ("ada@example.com", "")] + [None]


def test_preview_shows_the_transformed_rows(out: str) -> None:
    config = {
        "source": {"kind": "records", "data": PROFILES},
        "destination": {"url": out, "format": "json"},
        "transforms": {"hash": ["Email"], "drop": ["Photo"], "salt": SALT},
    }
    shown = pe.preview(config)
    assert "Photo" not in shown.columns
    assert shown.rows[0]["Email"] == sha("ada@example.com")


@pytest.mark.parametrize(
    ("transforms", "field", "message"),
    [
        ({"hash": ["Email"]}, "transforms.salt", "required to hash"),
        ({"hash": ["Emial"], "salt": SALT}, "transforms.hash[0]", "no column 'Emial'"),
        ({"drop": ["Name", "Photo", "Name"]}, "transforms.drop[2]", "one transform"),
        ({"hash": ["Email"], "drop": ["Email"], "salt": SALT}, "transforms.drop[0]", "one transform"),
        ({"apply": {"tokenise": ["Email"]}}, "transforms.apply.tokenise[0]", "unknown transform 'tokenise'"),
        ({"apply": {"Bad Name": ["Email"]}}, "transforms.apply.Bad Name", "transform name"),
        ({"drop": [""]}, "transforms.drop[0]", "name of an output column"),
        ({"hash": "Email", "salt": ""}, "transforms.salt", "non-empty"),
        ({"sallt": SALT}, "transforms.sallt", "unknown setting"),
    ],
)
def test_bad_transform_settings_are_config_errors_naming_the_setting(
    out: str, transforms: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        pe.export(PROFILES, out, format="csv", transforms=transforms)
    assert caught.value.field == field and message in str(caught.value)
    assert not files_in(out)  # refused before anything was written


def test_the_salt_is_a_credential(tmp_path: Path) -> None:
    config = ExportConfig.from_mapping(
        {"destination": {"url": str(tmp_path)}, "transforms": {"hash": ["Email"], "salt": SALT}}
    )
    assert SALT not in repr(config)
    stored, withheld = withhold(config.to_mapping())
    assert withheld == ("transforms.salt",) and SALT not in json.dumps(stored)
    by_env = ExportConfig.from_mapping(
        {"destination": {"url": str(tmp_path)}, "transforms": {"hash": ["Email"], "salt": "${EXPORT_SALT}"}}
    )
    assert withhold(by_env.to_mapping())[1] == ()  # a reference to the environment is kept as is


def test_a_salt_from_an_unset_environment_variable_is_an_error(out: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_SALT", raising=False)
    with pytest.raises(ConfigError, match=r"transforms\.salt: refers to the environment variable NO_SUCH_SALT"):
        pe.export(PROFILES, out, transforms={"hash": ["Email"], "salt": "${NO_SUCH_SALT}"})


class MaskTransform:
    """A plugin transform: keeps the first ``keep`` characters of text and masks the rest."""

    name = "mask"

    def output_type(self, type_: pa.DataType) -> pa.DataType:
        return pa.string()

    def apply(self, column: pa.Array, context: Any) -> pa.Array:
        keep = int(context.options.get("keep", 1))
        text = column.cast(pa.string())
        return pc.binary_join_element_wise(pc.utf8_slice_codeunits(text, 0, keep), "***", "")


class MaskPlugin:
    @hookimpl
    def register_transforms(self, register: Any) -> None:
        register(MaskTransform())


def test_register_transforms_adds_a_transform_plugins_can_configure(out: str) -> None:
    result = pe.export(
        PROFILES,
        out,
        format="json",
        plugins=[MaskPlugin()],
        transforms={"apply": {"mask": ["Email", "Name"]}, "options": {"mask": {"keep": 2}}},
    )
    rows = {r["clevertapId"]: r for r in read_rows(result)}
    assert rows["p1"]["Email"] == "ad***" and rows["p1"]["Name"] == "Ad***"
    assert rows["p3"]["Email"] is None


class BrokenTransform(MaskTransform):
    name = "broken"

    def apply(self, column: pa.Array, context: Any) -> pa.Array:
        return pa.array(["x"], pa.string())  # one value, whatever the batch


class BrokenPlugin:
    @hookimpl
    def register_transforms(self, register: Any) -> None:
        register(BrokenTransform())


def test_a_transform_that_returns_the_wrong_shape_fails_the_run_before_a_file_is_committed(out: str) -> None:
    with pytest.raises(PluginError, match=r"transform 'broken' returned 1 values .* column 'Email'"):
        pe.export(PROFILES, out, format="csv", plugins=[BrokenPlugin()], transforms={"apply": {"broken": ["Email"]}})
    assert not files_in(out)


T0 = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)


def test_incremental_runs_fingerprint_the_transformed_rows(tmp_path: Path) -> None:
    # A change only in a dropped column is no change of the exported row; a change in a hashed one is.
    source = tmp_path / "profiles.jsonl"
    profiles = [
        {"profile_id": f"p{i}", "email": f"user{i}@example.com", "properties": {"Photo": f"a{i}", "Name": f"N{i}"}}
        for i in range(50)
    ]
    source.write_text("".join(json.dumps(p) + "\n" for p in profiles))
    center = ExportCenter(tmp_path / "home", state=str(tmp_path / "state"))
    record = center.create(
        {
            "source": {"kind": "jsonl", "path": str(source)},
            "destination": {"url": str(tmp_path / "out"), "format": "json", "compression": "none"},
            "schedule": {"frequency": "recurring", "every_hours": 24, "mode": "incremental"},
            "transforms": {"hash": ["Email"], "drop": ["Photo"], "salt": "${EXPORT_SALT}"},
        },
        now=T0,
    )
    with pytest.MonkeyPatch.context() as env:
        env.setenv("EXPORT_SALT", SALT)
        (first,) = center.run_due(now=T0)
        assert first.record.rows == 50
        for p in profiles[:10]:
            p["properties"]["Photo"] = "changed"  # dropped: not exported, so no change
        for p in profiles[10:13]:
            p["email"] = "new-" + p["email"]  # hashed: the exported value changes
        source.write_text("".join(json.dumps(p) + "\n" for p in profiles))
        (second,) = center.run_due(now=T0 + timedelta(days=1))
    assert second.record.rows == 3
    written = [r for f in second.result.files for r in read_rows_file(f.url)]
    assert sorted(r["clevertapId"] for r in written) == ["p10", "p11", "p12"]
    assert {r["Email"] for r in written} == {sha(f"new-user{i}@example.com") for i in (10, 11, 12)}
    assert center.get(record.id).status == "Pending"


def read_rows_file(url: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(url).read_text().splitlines() if line]
