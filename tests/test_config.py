"""The configuration file is a public contract (DESIGN sections 4-6 and 11).

Every rule is checked when the configuration is built, and every violation is a ``ConfigError``
whose ``field`` is the exact dotted path of the offending setting.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from profile_exports import preview
from profile_exports.api import build_config
from profile_exports.cli import main
from profile_exports.config import (
    DestinationConfig,
    ExportConfig,
    IdentifierConfig,
    PropertiesConfig,
    ScheduleConfig,
    SourceConfig,
)
from profile_exports.errors import ConfigError, ProfileExportsError
from profile_exports.naming import FileNamer

NOW = datetime(2025, 10, 3, 12, 0, tzinfo=UTC)
ALLOWED_OUTPUT = re.compile(r"[A-Za-z0-9/_-]*")

# The example of DESIGN.md section 11, commented optional keys included where they fit together
# (folder_template needs folders = "custom": see test_section_11_custom_folder_template).
SECTION_11_TOML = """\
name = "daily-profiles"
account_id = "100000000"

[source]                       # kind + that source's own options
kind = "jsonl"                 # records | arrow | jsonl | parquet | synthetic | <plugin>
path = "data/profiles.jsonl"
mapping = { profile_id = "user_id", email = "email_address" }

[destination]
url = "s3://bucket/prefix"     # s3:// gs:// az:// file:// memory:// any fsspec URL, or a plain path
folders = "run_date"           # root | data_type | run_date | export_id | custom
file_name = "profiles-{{Date}}-{{Export-id}}"
format = "csv"                 # csv | json | xml | parquet
compression = "gzip"           # text formats: gzip | none; parquet: none | snappy | zstd | gzip
parquet_layout = "nested"      # nested | flat
max_file_mb = 100

[identifiers]
select = ["Identity", "Email", "Phone", "crm_id"]   # priority order; Identity/Email/Phone are the
                                                    # account identities, other names are properties
values = "fallback"            # fallback | all
all_identities = false
clevertap_id = true
clevertap_ids = false

[properties]
device = ["token"]
comm_prefs = ["MSG-push", "MSG-email", "subscriptionGroups"]
user = "all"                   # all | system | ["Name", "Gender", ...]
rename = { Phone = "Phone Number" }
order = ["Name", "Phone"]      # these columns first, in this order; the rest keep theirs
schema = "append"              # append | lock   (only with user = "all")

[schedule]
frequency = "once"             # once | recurring
every_hours = 24               # 4..24, recurring only
mode = "incremental"           # incremental | full
"""

SECTION_11_MAPPING: dict[str, Any] = {
    "name": "daily-profiles",
    "account_id": "100000000",
    "source": {
        "kind": "jsonl",
        "path": "data/profiles.jsonl",
        "mapping": {"profile_id": "user_id", "email": "email_address"},
    },
    "destination": {
        "url": "s3://bucket/prefix",
        "folders": "run_date",
        "file_name": "profiles-{{Date}}-{{Export-id}}",
        "format": "csv",
        "compression": "gzip",
        "parquet_layout": "nested",
        "max_file_mb": 100,
    },
    "identifiers": {
        "select": ["Identity", "Email", "Phone", "crm_id"],
        "values": "fallback",
        "all_identities": False,
        "clevertap_id": True,
        "clevertap_ids": False,
    },
    "properties": {
        "device": ["token"],
        "comm_prefs": ["MSG-push", "MSG-email", "subscriptionGroups"],
        "user": "all",
        "rename": {"Phone": "Phone Number"},
        "order": ["Name", "Phone"],
        "schema": "append",
    },
    "schedule": {"frequency": "once", "every_hours": 24, "mode": "incremental"},
}


def _config(**sections: Any) -> dict[str, Any]:
    """A minimal valid raw configuration, with the given sections merged in."""
    raw: dict[str, Any] = {"destination": {"url": "memory://bucket/prefix"}}
    for name, value in sections.items():
        if isinstance(value, dict) and isinstance(raw.get(name), dict):
            raw[name] = {**raw[name], **value}
        else:
            raw[name] = value
    return raw


def _error(raw: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        ExportConfig.from_mapping(raw)
    return info.value


# -- building from a mapping, TOML and JSON ---------------------------------------------------------


def test_section_11_example_builds_equal_from_mapping_toml_and_json(tmp_path: Path) -> None:
    toml_path = tmp_path / "export.toml"
    toml_path.write_text(SECTION_11_TOML, encoding="utf-8")
    json_path = tmp_path / "export.json"
    json_path.write_text(json.dumps(SECTION_11_MAPPING, indent=2), encoding="utf-8")

    from_mapping = ExportConfig.from_mapping(SECTION_11_MAPPING)
    from_toml = ExportConfig.from_file(toml_path)
    from_json = ExportConfig.from_file(json_path)

    assert from_mapping == from_toml == from_json
    config = from_toml
    assert config.name == "daily-profiles"
    assert config.account_id == "100000000"
    assert config.source.kind == "jsonl"
    assert dict(config.source.options) == {"path": "data/profiles.jsonl"}
    assert dict(config.source.mapping) == {"profile_id": "user_id", "email": "email_address"}
    destination = config.destination
    assert destination.url == "s3://bucket/prefix"
    assert destination.folders == "run_date"
    assert destination.folder_template is None
    assert destination.file_name == "profiles-{{Date}}-{{Export-id}}"
    assert (destination.format, destination.compression, destination.parquet_layout) == ("csv", "gzip", "nested")
    assert destination.max_file_mb == 100
    assert destination.max_file_bytes == 100_000_000
    identifiers = config.identifiers
    assert identifiers.select == ("Identity", "Email", "Phone", "crm_id")
    assert identifiers.values == "fallback"
    assert (identifiers.all_identities, identifiers.clevertap_id, identifiers.clevertap_ids) == (False, True, False)
    properties = config.properties
    assert properties.device == ("token",)
    assert properties.comm_prefs == ("MSG-push", "MSG-email", "subscriptionGroups")
    assert properties.user == "all"
    assert dict(properties.rename) == {"Phone": "Phone Number"}
    assert properties.order == ("Name", "Phone")
    assert properties.schema == "append"
    assert (config.schedule.frequency, config.schedule.every_hours, config.schedule.mode) == ("once", 24, "incremental")


def test_section_11_custom_folder_template(tmp_path: Path) -> None:
    text = SECTION_11_TOML.replace(
        'folders = "run_date"           # root | data_type | run_date | export_id | custom',
        'folders = "custom"\nfolder_template = "{{Date}}/run-{{Export-id}}"',
    )
    assert 'folders = "custom"' in text
    path = tmp_path / "custom.toml"
    path.write_text(text, encoding="utf-8")
    raw = json.loads(json.dumps(SECTION_11_MAPPING))
    raw["destination"].update(folders="custom", folder_template="{{Date}}/run-{{Export-id}}")
    json_path = tmp_path / "custom.json"
    json_path.write_text(json.dumps(raw), encoding="utf-8")

    config = ExportConfig.from_file(path)
    assert config == ExportConfig.from_mapping(raw) == ExportConfig.from_file(json_path)
    assert config.destination.folders == "custom"
    assert config.destination.folder_template == "{{Date}}/run-{{Export-id}}"


def test_configuration_objects_are_frozen() -> None:
    config = ExportConfig.from_mapping(SECTION_11_MAPPING)
    for obj, attribute, value in [
        (config, "name", "other"),
        (config, "destination", None),
        (config.source, "kind", "records"),
        (config.destination, "url", "memory://elsewhere"),
        (config.destination, "folders", "root"),
        (config.identifiers, "select", ("Email",)),
        (config.properties, "user", "system"),
        (config.schedule, "every_hours", 4),
    ]:
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            setattr(obj, attribute, value)
    assert config.destination.url == "s3://bucket/prefix"


def test_configuration_holds_tuples_and_read_only_mappings() -> None:
    raw = json.loads(json.dumps(SECTION_11_MAPPING))
    raw["properties"]["user"] = ["Name", "Phone", "Gender"]
    raw["destination"]["storage_options"] = {"anon": True}
    config = ExportConfig.from_mapping(raw)
    for sequence in (
        config.identifiers.select,
        config.properties.device,
        config.properties.comm_prefs,
        config.properties.user,
        config.properties.order,
        config.properties.system,
    ):
        assert isinstance(sequence, tuple)
    for mapping in (
        config.source.mapping,
        config.source.options,
        config.properties.rename,
        config.destination.storage_options,
    ):
        with pytest.raises(TypeError):
            mapping["new"] = "value"  # type: ignore[index]
    # The input is copied: changing it afterwards does not reach the configuration.
    raw["properties"]["rename"]["Phone"] = "Mobile"
    raw["properties"]["user"].append("DOB")
    raw["source"]["mapping"]["phone"] = "mobile"
    assert dict(config.properties.rename) == {"Phone": "Phone Number"}
    assert config.properties.user == ("Name", "Phone", "Gender")
    assert "phone" not in config.source.mapping


def test_integer_account_and_export_ids_from_toml_become_strings(tmp_path: Path) -> None:
    path = tmp_path / "ids.toml"
    path.write_text(
        'account_id = 100000000\nexport_id = 1761651721\n\n[destination]\nurl = "memory://bucket/prefix"\n',
        encoding="utf-8",
    )
    config = ExportConfig.from_file(path)
    assert config.account_id == "100000000"
    assert config.export_id == "1761651721"
    assert ExportConfig.from_mapping(_config(account_id="100000000", export_id="1761651721")) == config


# -- the errors -----------------------------------------------------------------------------------


def test_config_error_is_a_profile_exports_error_and_a_value_error() -> None:
    assert issubclass(ConfigError, ProfileExportsError)
    assert issubclass(ConfigError, ValueError)
    error = _error(_config(schedule={"every_hours": 3}))
    assert isinstance(error, ProfileExportsError)
    assert isinstance(error, ValueError)
    assert error.field == "schedule.every_hours"
    assert str(error).startswith("schedule.every_hours: ")


def test_missing_destination_is_rejected() -> None:
    assert _error({"name": "x"}).field == "destination"


def test_missing_destination_url_is_rejected() -> None:
    assert _error({"destination": {"folders": "root"}}).field == "destination.url"


@pytest.mark.parametrize("url", ["", "   "])
def test_blank_destination_url_is_rejected(url: str) -> None:
    assert _error({"destination": {"url": url}}).field == "destination.url"


# -- identifiers and user properties ---------------------------------------------------------------


def test_at_least_one_identifier() -> None:
    assert _error(_config(identifiers={"select": []})).field == "identifiers.select"


def test_at_least_one_user_property() -> None:
    assert _error(_config(properties={"user": []})).field == "properties.user"


@pytest.mark.parametrize(
    ("user", "index"),
    [
        (["Identity"], 0),
        (["Name", "Identity"], 1),
        (["Name", "Gender", "clevertapId"], 2),
        (["clevertapIds"], 0),
    ],
)
def test_identity_and_clevertap_id_cannot_be_user_properties(user: list[str], index: int) -> None:
    error = _error(_config(identifiers={"select": ["Identity", "Email"]}, properties={"user": user}))
    assert error.field == f"properties.user[{index}]"
    assert user[index] in str(error)


def test_email_and_phone_can_be_identifiers_and_user_properties() -> None:
    config = ExportConfig.from_mapping(
        _config(
            identifiers={"select": ["Identity", "Email", "Phone"]},
            properties={"user": ["Email", "Phone", "Name"], "rename": {"Phone": "Phone Number"}},
        )
    )
    assert config.identifiers.select == ("Identity", "Email", "Phone")
    assert config.properties.user == ("Email", "Phone", "Name")


# -- templates --------------------------------------------------------------------------------------


def _custom(template: str) -> dict[str, Any]:
    return _config(destination={"folders": "custom", "folder_template": template})


@pytest.mark.parametrize(
    ("template", "character", "position"),
    [
        ("run.{{Date}}", ".", 4),
        ("my folder", " ", 3),
        ("a\\b", "\\", 2),
        ("{{Date}}/..", ".", 10),
        ("ab\u0430", "\u0430", 3),  # Cyrillic small a, U+0430
        ("{{Date}}\uff0fx", "\uff0f", 9),  # fullwidth solidus
        ("x/{Date}", "{", 3),
        ("data%20", "%", 5),
    ],
)
def test_template_bad_character_names_the_character_and_its_position(
    template: str, character: str, position: int
) -> None:
    error = _error(_custom(template))
    assert error.field == "destination.folder_template"
    assert repr(character) in str(error)
    assert f"position {position}" in str(error)


def test_file_name_bad_character_names_the_field() -> None:
    error = _error(_config(destination={"file_name": "profiles {{Date}}"}))
    assert error.field == "destination.file_name"
    assert "' '" in str(error)
    assert "position 9" in str(error)


@pytest.mark.parametrize("key", ["folder_template", "file_name"])
def test_unknown_variable_is_rejected(key: str) -> None:
    raw = _custom("{{Foo}}") if key == "folder_template" else _config(destination={"file_name": "x-{{Foo}}"})
    error = _error(raw)
    assert error.field == f"destination.{key}"
    assert "{{Foo}}" in str(error)


@pytest.mark.parametrize("template", ["/{{Date}}", "{{Date}}/", "a//b", "", "   ", "a" * 600])
def test_templates_without_empty_folder_names_and_of_sane_length(template: str) -> None:
    assert _error(_custom(template)).field == "destination.folder_template"


def test_variables_are_case_insensitive() -> None:
    config = ExportConfig.from_mapping(
        _config(
            account_id="100000000",
            destination={
                "folders": "custom",
                "folder_template": "{{date}}/run-{{EXPORT-ID}}",
                "file_name": "p-{{ACCOUNT-ID}}-{{timestamp}}-{{instance-ID}}",
            },
        )
    )
    namer = FileNamer(config, "1761650178", NOW)
    assert namer.folder(0) == "20251003/run-1761650178"
    assert namer.file_name(3, 0, "csv.gz").startswith("p-100000000-1759492800-3-")


def test_folder_template_required_with_custom_folders() -> None:
    assert _error(_config(destination={"folders": "custom"})).field == "destination.folder_template"


@pytest.mark.parametrize("folders", ["root", "data_type", "run_date", "export_id"])
def test_folder_template_rejected_without_custom_folders(folders: str) -> None:
    error = _error(_config(destination={"folders": folders, "folder_template": "{{Date}}"}))
    assert error.field == "destination.folder_template"


def test_file_name_accepts_a_typed_extension() -> None:
    config = ExportConfig.from_mapping(_config(destination={"file_name": "profiles-{{date}}-{{export-id}}.csv.gz"}))
    assert config.destination.file_name == "profiles-{{date}}-{{export-id}}.csv.gz"
    name = FileNamer(config, "1761651721", NOW).file_name(0, 0, "csv.gz")
    assert name == "profiles-20251003-1761651721-1759492800-0-00000.csv.gz"


# -- unknown keys -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "field", "hint"),
    [
        ({"destinaton": {"url": "memory://b"}}, "destinaton", "destination"),
        (_config(acount_id="1"), "acount_id", "account_id"),
        (_config(schedle={"mode": "full"}), "schedle", "schedule"),
        (_config(destination={"fromat": "csv"}), "destination.fromat", "format"),
        (_config(destination={"folder": "root"}), "destination.folder", "folders"),
        (_config(identifiers={"valeus": "all"}), "identifiers.valeus", "values"),
        (_config(identifiers={"clevertap_ids_": True}), "identifiers.clevertap_ids_", "clevertap_ids"),
        (_config(properties={"usr": "all"}), "properties.usr", "user"),
        (_config(properties={"renames": {}}), "properties.renames", "rename"),
        (_config(schedule={"every_hour": 4}), "schedule.every_hour", "every_hours"),
        (_config(schedule={"frequncy": "once"}), "schedule.frequncy", "frequency"),
    ],
)
def test_unknown_keys_are_rejected_with_a_hint(raw: dict[str, Any], field: str, hint: str) -> None:
    error = _error(raw)
    assert error.field == field
    assert f"did you mean {hint!r}" in str(error)


def test_unknown_source_option_is_rejected_with_a_hint(tmp_path: Path) -> None:
    # A source kind's own options are checked by that kind, at the latest when the export opens it.
    raw = _config(source={"kind": "jsonl", "pth": str(tmp_path / "p.jsonl")})
    with pytest.raises(ConfigError) as info:
        preview(ExportConfig.from_mapping(raw))
    assert info.value.field == "source.pth"
    assert "did you mean 'path'" in str(info.value)


def test_misspelt_source_kind_is_rejected_with_a_hint(tmp_path: Path) -> None:
    # "knd" is one of the [source] section's own keys misspelt, not an option of some kind.
    raw = _config(source={"knd": "jsonl", "path": str(tmp_path / "p.jsonl")})
    with pytest.raises(ConfigError) as info:
        preview(ExportConfig.from_mapping(raw))
    assert info.value.field == "source.knd"
    assert "did you mean 'kind'" in str(info.value)


# -- enumerations and ranges ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("destination", "folders", "date"),
        ("destination", "folders", "Root"),
        ("destination", "parquet_layout", "flattened"),
        ("identifiers", "values", "first"),
        ("properties", "schema", "locked"),
        ("schedule", "frequency", "daily"),
        ("schedule", "mode", "delta"),
        ("source", "bad_records", "ignore"),
    ],
)
def test_enumerations_are_checked(section: str, key: str, value: str) -> None:
    error = _error(_config(**{section: {key: value}}))
    assert error.field == f"{section}.{key}"
    assert repr(value) in str(error)


@pytest.mark.parametrize(
    ("section", "key", "values"),
    [
        ("destination", "folders", ["root", "data_type", "run_date", "export_id"]),
        ("destination", "parquet_layout", ["nested", "flat"]),
        ("identifiers", "values", ["fallback", "all"]),
        ("properties", "schema", ["append", "lock"]),
        ("schedule", "frequency", ["once", "recurring"]),
        ("schedule", "mode", ["incremental", "full"]),
        ("source", "bad_records", ["fail", "skip"]),
    ],
)
def test_every_documented_choice_is_accepted(section: str, key: str, values: list[str]) -> None:
    for value in values:
        config = ExportConfig.from_mapping(_config(**{section: {key: value}}))
        assert getattr(getattr(config, section), key) == value


def test_schema_lock_only_with_all_properties() -> None:
    error = _error(_config(properties={"user": ["Name"], "schema": "lock"}))
    assert error.field == "properties.schema"


@pytest.mark.parametrize("hours", [4, 24])
def test_every_hours_bounds_are_accepted(hours: int) -> None:
    config = ExportConfig.from_mapping(_config(schedule={"frequency": "recurring", "every_hours": hours}))
    assert config.schedule.every_hours == hours


@pytest.mark.parametrize("hours", [0, 3, 25, 48, -4, 4.5, "24", True])
def test_every_hours_outside_4_to_24_is_rejected(hours: Any) -> None:
    error = _error(_config(schedule={"frequency": "recurring", "every_hours": hours}))
    assert error.field == "schedule.every_hours"


@pytest.mark.parametrize("mb", [0, -1, -0.5, 0.0, float("nan"), "100", True])
def test_max_file_mb_must_be_above_zero(mb: Any) -> None:
    assert _error(_config(destination={"max_file_mb": mb})).field == "destination.max_file_mb"


@pytest.mark.parametrize("mb", [0.001, 1, 100, 2048.5])
def test_max_file_mb_above_zero_is_accepted(mb: float) -> None:
    config = ExportConfig.from_mapping(_config(destination={"max_file_mb": mb}))
    assert config.destination.max_file_mb == mb
    assert config.destination.max_file_bytes >= 1


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", "../etc/passwd", "UTC+5", 5])
def test_bad_timezone_is_rejected(zone: Any) -> None:
    assert _error(_config(destination={"timezone": zone})).field == "destination.timezone"


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata", "America/Los_Angeles"])
def test_good_timezone_is_accepted(zone: str) -> None:
    assert ExportConfig.from_mapping(_config(destination={"timezone": zone})).destination.timezone == zone


@pytest.mark.parametrize(
    ("sections", "field"),
    [
        ({"source": {"mapping": 5}}, "source.mapping"),
        ({"source": {"mapping": ["user_id"]}}, "source.mapping"),
        ({"properties": {"rename": ["Phone"]}}, "properties.rename"),
        ({"properties": {"rename": 5}}, "properties.rename"),
        ({"identifiers": {"select": 5}}, "identifiers.select"),
    ],
)
def test_a_value_of_the_wrong_kind_is_a_config_error_naming_the_setting(sections: dict[str, Any], field: str) -> None:
    assert _error(_config(**sections)).field == field


def test_the_python_api_applies_the_same_checks(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        build_config([], str(tmp_path), {"fromat": "csv"})
    assert info.value.field == "fromat"
    assert "did you mean 'format'" in str(info.value)
    with pytest.raises(ConfigError) as info:
        build_config([], str(tmp_path), {"folders": "custom", "folder_template": "run.{{Date}}"})
    assert info.value.field == "destination.folder_template"
    with pytest.raises(ConfigError) as info:
        build_config([], str(tmp_path), {"schedule": {"frequency": "recurring", "every_hours": 2}})
    assert info.value.field == "schedule.every_hours"


# -- property: templates are safe or rejected -------------------------------------------------------

_ALLOWED_CHARS = "abcxyzABCXYZ0189/-_"
_GOOD_VARIABLES = ["{{Date}}", "{{date}}", "{{EXPORT-ID}}", "{{Account-id}}", "{{timestamp}}", "{{Instance-Id}}"]
_BAD_PIECES = [
    ".",
    " ",
    "\\",
    "..",
    "\u0430",  # Cyrillic a
    "\u0435",  # Cyrillic e
    "\uff0f",  # fullwidth solidus
    "\u2215",  # division slash
    "\uff0d",  # fullwidth hyphen-minus
    "\u00e9",
    "\t",
    "\n",
    "\x00",
    ":",
    "*",
    "%2F",
    "{",
    "}",
    "{{",
    "}}",
    "{{Foo}}",
    "{{}}",
    "{{Date}",
    "{{Dat\u0435}}",
    "~",
]
_good_token = st.one_of(
    st.sampled_from(list(_ALLOWED_CHARS)).map(lambda c: (True, c)),
    st.sampled_from(_GOOD_VARIABLES).map(lambda v: (True, v)),
)
_bad_token = st.one_of(
    st.sampled_from(_BAD_PIECES).map(lambda b: (False, b)),
    st.text(max_size=3).map(lambda t: (False, t)),
)
_token = st.one_of(_good_token, _good_token, _bad_token)
# Half of the templates from good pieces only, so that a fair share is accepted and its output checked.
_tokens = st.one_of(st.lists(_good_token, max_size=12), st.lists(_token, max_size=12))


# The widest each variable renders (account ids are up to 64 characters, export ids 20 digits, ...).
_WIDEST = {"account-id": 64, "export-id": 20, "timestamp": 20, "instance-id": 10, "date": 8}


def _fits_when_rendered(template: str) -> bool:
    """Every name between '/' at most 200 characters and the whole at most 512, variables at their widest."""
    widest = re.sub(r"\{\{\s*([^{}]*?)\s*\}\}", lambda m: "v" * _WIDEST[m.group(1).lower()], template)
    return len(widest) <= 512 and all(len(name) <= 200 for name in widest.split("/"))


@settings(max_examples=400, deadline=None)
@given(tokens=_tokens, instance=st.integers(min_value=0, max_value=23))
def test_templates_render_only_allowed_characters_or_are_rejected(
    tokens: list[tuple[bool, str]], instance: int
) -> None:
    template = "".join(text for _, text in tokens)
    only_good = all(good for good, _ in tokens)
    try:
        config = ExportConfig.from_mapping(
            _config(
                account_id="100000000",
                destination={"folders": "custom", "folder_template": template},
            )
        )
    except ConfigError as exc:
        event("rejected")
        assert exc.field == "destination.folder_template"
        well_formed = bool(template) and not (template.startswith("/") or template.endswith("/") or "//" in template)
        assert not (only_good and well_formed and _fits_when_rendered(template)), (
            f"a good template was rejected: {template!r}: {exc}"
        )
        return
    event("accepted")
    rendered = FileNamer(config, "1761651721", NOW).folder(instance)
    assert rendered
    assert ALLOWED_OUTPUT.fullmatch(rendered), f"{template!r} rendered as {rendered!r}"
    assert not rendered.startswith("/")
    assert not rendered.endswith("/")
    assert "//" not in rendered


# -- the command line -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            '[destination]\nurl = "{out}"\nfolders = "custom"\nfolder_template = "run.{{{{Date}}}}"\n',
            "destination.folder_template",
        ),
        (
            '[destination]\nurl = "{out}"\n\n[schedule]\nfrequency = "recurring"\nevery_hours = 2\n',
            "schedule.every_hours",
        ),
        ('[destinaton]\nurl = "{out}"\n', "destinaton"),
        ('[destination]\nurl = "{out}"\n\n[identifiers]\nvaleus = "all"\n', "identifiers.valeus"),
        ('[destination]\nurl = "{out}"\n\n[source]\nmapping = 5\n', "source.mapping"),
    ],
)
def test_cli_run_with_a_bad_configuration_exits_2_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, field: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(body.format(out=(tmp_path / "out").as_posix()), encoding="utf-8")
    assert main(["run", str(path)]) == 2
    captured = capsys.readouterr()
    assert field in captured.err
    assert not (tmp_path / "out").exists()


def test_cli_preview_prints_the_columns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    path = tmp_path / "preview.toml"
    path.write_text(
        'name = "preview"\naccount_id = 100000000\n\n[source]\nkind = "synthetic"\ncount = 20\n\n'
        f'[destination]\nurl = "{out.as_posix()}"\n',
        encoding="utf-8",
    )
    assert main(["preview", str(path)]) == 0
    captured = capsys.readouterr()
    columns_line = next(line for line in captured.out.splitlines() if line.startswith("columns:"))
    columns = [c.strip() for c in columns_line.split(":", 1)[1].split(",")]
    assert columns[:2] == ["identity", "clevertapId"]
    assert "Name" in columns
    assert re.search(r"100000000-\d+-\d+-0-00000\.csv\.gz", captured.out)
    assert not out.exists() or not any(out.iterdir())  # a preview writes nothing


def test_cli_run_with_an_invalid_json_line_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "profiles.jsonl"
    data.write_text('{"profile_id": "p1", "Name": "Ada"}\n{"profile_id": "p2", "Name": \n', encoding="utf-8")
    path = tmp_path / "run.toml"
    path.write_text(
        f'[source]\nkind = "jsonl"\npath = "{data.as_posix()}"\n\n'
        f'[destination]\nurl = "{(tmp_path / "out").as_posix()}"\n',
        encoding="utf-8",
    )
    assert main(["run", str(path)]) == 1
    captured = capsys.readouterr()
    assert "line 2" in captured.err
    out = tmp_path / "out"
    assert not out.exists() or not [p for p in out.rglob("*") if p.is_file()]


def test_cli_run_with_a_good_configuration_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    path = tmp_path / "run.toml"
    path.write_text(
        'account_id = 100000000\nexport_id = 1761651721\n\n[source]\nkind = "synthetic"\ncount = 20\n\n'
        f'[destination]\nurl = "{out.as_posix()}"\nfolders = "export_id"\n',
        encoding="utf-8",
    )
    assert main(["run", str(path)]) == 0
    files = [p for p in out.rglob("*") if p.is_file() and p.parent != out / "_manifests"]
    assert files and list((out / "_manifests").glob("100000000-1761651721-*-manifest.json"))
    assert all(p.parent == out / "1761651721" for p in files)
    assert all(p.name.startswith("100000000-1761651721-") for p in files)


# -- the section classes can be used directly -------------------------------------------------------


def test_section_classes_check_their_own_rules() -> None:
    with pytest.raises(ConfigError) as info:
        DestinationConfig(url="memory://b", folders="custom")
    assert info.value.field == "destination.folder_template"
    with pytest.raises(ConfigError) as info:
        IdentifierConfig(select=())
    assert info.value.field == "identifiers.select"
    with pytest.raises(ConfigError) as info:
        PropertiesConfig(user=("Name", "Identity"))
    assert info.value.field == "properties.user[1]"
    with pytest.raises(ConfigError) as info:
        ScheduleConfig(every_hours=25)
    assert info.value.field == "schedule.every_hours"
    with pytest.raises(ConfigError) as info:
        SourceConfig(bad_records="maybe")  # type: ignore[arg-type]
    assert info.value.field == "source.bad_records"
    config = ExportConfig(destination=DestinationConfig(url="memory://b"))
    assert config == ExportConfig.from_mapping({"destination": {"url": "memory://b"}})
    with pytest.raises(ConfigError) as info:
        attrs.evolve(config.schedule, every_hours=1)
    assert info.value.field == "schedule.every_hours"
