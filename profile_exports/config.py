"""Configuration: frozen classes for every setting, built from a mapping, TOML or JSON.

The keys are a public contract (docs/configuration.md). ``ExportConfig.from_mapping`` reports the
dotted path of the first bad field; unknown keys get a "did you mean" hint.
"""

from __future__ import annotations

import difflib
import json
import re
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from .canonical import COMM_PREF_NAMES, validate_mapping
from .errors import ConfigError
from .templates import Template, parse_template
from .urls import check_destination_url, redact_url

ACCOUNT_IDENTITIES = ("Identity", "Email", "Phone")
SUBSCRIPTION_GROUPS_NAME = "subscriptionGroups"
COMM_PREF_CHOICES = (*COMM_PREF_NAMES, SUBSCRIPTION_GROUPS_NAME)
DEFAULT_SYSTEM_PROPERTIES = (
    "Name",
    "Email",
    "Phone",
    "Gender",
    "DOB",
    "Photo",
    "Employed",
    "Education",
    "Married",
    "Age",
    "Location",
    "Timezone",
)
# Output columns the identifiers and the system id own; no user property may take these names.
RESERVED_PROPERTY_NAMES = (
    "Identity",
    "identity",
    "clevertapId",
    "clevertapIds",
    "profile_id",
    "all_identities",
)
FOLDER_LAYOUTS = ("root", "data_type", "run_date", "export_id", "custom")
_ACCOUNT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_EXPORT_ID = re.compile(r"[0-9]{1,20}")


def _frozen_map(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


def _tuple(value: Any) -> tuple[Any, ...]:
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def _str_or_tuple(value: Any) -> str | tuple[Any, ...]:
    return value if isinstance(value, str) else tuple(value)


def _one_of(field: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(
            field, f"must be one of {', '.join(map(repr, choices))}; got {value!r}{_hint(value, choices)}"
        )


def _hint(value: Any, choices: tuple[str, ...] | list[str]) -> str:
    if not isinstance(value, str):
        return ""
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    if not close:
        close = [c for c in choices if c.lower() == value.lower()]
    return f" (did you mean {close[0]!r}?)" if close else ""


def _validator(field: str, choices: tuple[str, ...]) -> Any:
    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        _one_of(field, value, choices)

    return check


@attrs.frozen(kw_only=True)
class SourceConfig:
    """Where profiles come from: a source kind, its own options, and the field mapping."""

    kind: str = attrs.field(
        default="records", metadata={"doc": "The source: a registered source kind (a plugin may add one)."}
    )
    options: Mapping[str, Any] = attrs.field(
        factory=dict,
        converter=_frozen_map,
        repr=False,
        metadata={
            "key": "other keys",
            "doc": "The kind's own options (`path`, `url`, `query`, `count`, ...), checked by that kind.",
        },
    )
    mapping: Mapping[str, str] = attrs.field(
        factory=dict,
        converter=_frozen_map,
        metadata={
            "doc": "`{canonical field: source column}`; targets: `profile_id`, `profile_ids`, `identity`, "
            "`email`, `phone`, `subscription_groups`, `updated_at`, `device`, `comm_prefs`, `properties`, "
            "`device.<attr>`, `comm_prefs.<name>`, `properties.<name>`."
        },
    )
    bad_records: Literal["fail", "skip"] = attrs.field(
        default="fail",
        validator=_validator("source.bad_records", ("fail", "skip")),
        metadata={
            "doc": "A record without a profile id or with a field of the wrong kind: `fail` stops the run with "
            "a `DataError` naming it; `skip` leaves it out and counts it in the result."
        },
    )
    batch_size: int = attrs.field(
        default=16_384, metadata={"doc": "Rows per Arrow batch; memory is bounded by it, not by the profile count."}
    )

    @mapping.validator
    def _check_mapping(self, attribute: Any, value: Mapping[str, str]) -> None:
        validate_mapping(value)

    @batch_size.validator
    def _check_batch_size(self, attribute: Any, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10_000_000:
            raise ConfigError("source.batch_size", f"must be a whole number from 1 to 10000000; got {value!r}")


@attrs.frozen(kw_only=True)
class DestinationConfig:
    """Storage and file details: where files go, how folders and files are named, the format."""

    url: str = attrs.field(
        repr=lambda url: repr(redact_url(url)),  # user info and signed queries hidden
        metadata={
            "doc": "Where files go: a path, `file://`, `memory://` or any fsspec URL (`s3://bucket/prefix`, "
            "`gs://`, `az://`). No credentials: user info (`user:secret@`), a query or a fragment is refused "
            "(credentials go in `storage_options`), but for Azure's `az://container@account.host/` and SAS query."
        },
    )
    folders: str = attrs.field(
        default="root",
        validator=_validator("destination.folders", FOLDER_LAYOUTS),
        metadata={
            "doc": "The folder under the URL: none (`root`), `profile/` (`data_type`), the run date `yyyymmdd` "
            "(`run_date`), the export id (`export_id`), or `folder_template` (`custom`)."
        },
    )
    folder_template: str | None = attrs.field(
        default=None,
        metadata={
            "doc": 'Required with `folders = "custom"`, refused otherwise: letters, digits, `/ - _` and the '
            "variables `{{Account-id}}`, `{{Export-id}}`, `{{Timestamp}}`, `{{Instance-id}}`, `{{Date}}`."
        },
    )
    file_name: str | None = attrs.field(
        default=None,
        metadata={
            "default": "`<account-id>-<export-id>-<timestamp>-<instance-id>-<part>.<ext>`",
            "doc": "A file-name template with the rules of `folder_template`; `-<timestamp>-<instance-id>-<part>` "
            "is appended, and a typed extension (`.csv.gz`) is dropped, not doubled.",
        },
    )
    format: str = attrs.field(default="csv", metadata={"doc": "The file format: a registered format name."})
    compression: str | None = attrs.field(
        default=None,
        metadata={
            "default": "the format's first (`gzip` for text, `zstd` for Parquet)",
            "doc": "One of the format's compressions. Parquet compresses its pages inside the file (`none`, "
            "`snappy`, `zstd`, `gzip`) and stays `.parquet`, except `gzip`, named `.parquet.gz` as in the "
            "reference product; text formats are gzip streams (`.csv.gz`) or plain (`none`).",
        },
    )
    parquet_layout: Literal["nested", "flat"] = attrs.field(
        default="nested",
        validator=_validator("destination.parquet_layout", ("nested", "flat")),
        metadata={
            "doc": "Parquet: `nested` groups columns in the structs `profileIdentities`, `device`, `commPrefs`, "
            "`profileProps`; `flat` writes one typed top-level column per output column."
        },
    )
    max_file_mb: float = attrs.field(
        default=100,
        metadata={
            "doc": "The cap on bytes actually written per file (compressed bytes for gzip): above 0, "
            "at most 1,000,000. Rows are never split across files."
        },
    )
    spreadsheet_safe: bool = attrs.field(
        default=True,  # CSV: cells that a spreadsheet would run as formulas get a leading '
        metadata={
            "doc": "CSV: text cells starting with `=`, `+`, `-`, `@`, tab or carriage return get a leading `'` "
            "so a spreadsheet shows them as text instead of running them; a cell that is one whole number "
            "literal (an E.164 phone `+15551234567`, `-3`) passes unchanged. `false` writes every value exactly."
        },
    )
    transcoding: bool = attrs.field(
        default=False,
        metadata={
            "doc": "`false`: gzip files are stored as what they are (`Content-Type: application/gzip`, no "
            "`Content-Encoding`), so every SDK's default download gives the bytes the manifest lists. `true` "
            "stores them with `Content-Encoding: gzip`, so HTTP clients and the GCS and Azure SDKs hand back "
            "decompressed bytes (decompressive transcoding); their downloads then no longer match the "
            "manifest's sha256."
        },
    )
    json_non_finite: Literal["null", "string"] = attrs.field(
        default="null",
        validator=_validator("destination.json_non_finite", ("null", "string")),
        metadata={
            "doc": "JSON: how NaN, Infinity and -Infinity floats are written. `null` (JSON has no numbers for "
            "them; engines reading the files keep the column numeric) counts them in "
            '`ExportResult.non_finite_as_null`; `string` writes the strings `"NaN"`, `"Infinity"`, '
            '`"-Infinity"`, which make engines type the column as text. CSV and XML always write the words.'
        },
    )
    timezone: str = attrs.field(
        default="UTC", metadata={"doc": "An IANA time zone for `{{Date}}` and `run_date` folders."}
    )
    max_retries: int = attrs.field(
        default=5,
        metadata={
            "doc": "Retries of each remote call (per part) on throttling, 5xx and dropped connections, with "
            "exponential backoff and jitter; 403 and 404 are never retried."
        },
    )
    storage_options: Mapping[str, Any] = attrs.field(
        factory=dict,
        converter=_frozen_map,
        repr=False,
        metadata={
            "doc": "The sink's own settings, credentials among them (never shown in reprs or messages); "
            'a value written `"${NAME}"` is read from the environment variable `NAME` at run time.'
        },
    )

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.url, str) or not self.url.strip():
            raise ConfigError("destination.url", "must be a URL (s3://bucket/prefix, file:///path) or a path")
        check_destination_url(self.url)  # credentials go in storage_options, never in the URL
        if self.folders == "custom":
            if self.folder_template is None:
                raise ConfigError("destination.folder_template", 'is required when folders = "custom"')
            parse_template(self.folder_template, "destination.folder_template")
            if self.folder_template.split("/")[0].lower() == "_manifests":
                raise ConfigError(
                    "destination.folder_template",
                    "must not start with '_manifests/': that folder holds the run manifests; choose another name",
                )
        elif self.folder_template is not None:
            raise ConfigError(
                "destination.folder_template",
                f'is used only with folders = "custom" (folders is {self.folders!r})',
            )
        if self.file_name is not None:
            self.file_name_template()
        if not isinstance(self.spreadsheet_safe, bool):
            raise ConfigError("destination.spreadsheet_safe", f"must be true or false; got {self.spreadsheet_safe!r}")
        if not isinstance(self.transcoding, bool):
            raise ConfigError("destination.transcoding", f"must be true or false; got {self.transcoding!r}")
        if not isinstance(self.format, str) or not re.fullmatch(r"[a-z][a-z0-9_-]*", self.format):
            raise ConfigError("destination.format", f"must be a format name like 'csv'; got {self.format!r}")
        if (
            isinstance(self.max_file_mb, bool)
            or not isinstance(self.max_file_mb, int | float)
            or not (0 < self.max_file_mb <= 1_000_000)
        ):
            raise ConfigError("destination.max_file_mb", f"must be a number of MB above 0; got {self.max_file_mb!r}")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise ConfigError("destination.timezone", f"unknown time zone {self.timezone!r}; use e.g. 'UTC'") from None

    @max_retries.validator
    def _check_retries(self, attribute: Any, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 20:
            raise ConfigError("destination.max_retries", f"must be a whole number from 0 to 20; got {value!r}")

    @property
    def max_file_bytes(self) -> int:
        """``max_file_mb`` in bytes (1 MB = 1,000,000 bytes), at least 1."""
        return max(1, int(self.max_file_mb * 1_000_000))

    def file_name_template(self) -> Template | None:
        """The parsed ``file_name`` template without a typed extension of the format; None without one."""
        if self.file_name is None:
            return None
        # The reference lets users type the extension ("profiles-{{Date}}.csv.gz"); it is not doubled.
        # Only the format's own extension is dropped: any other dot is refused by the template check.
        stem = re.sub(rf"\.{re.escape(self.format)}(\.[A-Za-z0-9]{{1,8}})?$", "", self.file_name)
        return parse_template(stem, "destination.file_name")


@attrs.frozen(kw_only=True)
class IdentifierConfig:
    """Which identifiers go out, in which priority, as one value with fallback or all values."""

    select: tuple[str, ...] = attrs.field(
        default=ACCOUNT_IDENTITIES,
        converter=_tuple,
        metadata={
            "doc": "Identifiers in priority order: `Identity`, `Email`, `Phone` (the account identities) or the "
            "name of a user property (`crm_id`). At least one, none twice, not the system id."
        },
    )
    values: Literal["fallback", "all"] = attrs.field(
        default="fallback",
        validator=_validator("identifiers.values", ("fallback", "all")),
        metadata={
            "doc": "`fallback`: `identity` is the first selected identifier a profile has; `all`: the list of "
            "every one it has, in priority order."
        },
    )
    all_identities: bool = attrs.field(
        default=False,
        metadata={"doc": "Add the `all_identities` column: the profile's Identity values, Email and Phone."},
    )
    clevertap_id: bool = attrs.field(default=True, metadata={"doc": "Add the `clevertapId` column: the profile id."})
    clevertap_ids: bool = attrs.field(
        default=False,
        metadata={"doc": "Add the `clevertapIds` column: the profile's historical ids (else a list of its own id)."},
    )

    @select.validator
    def _check_select(self, attribute: Any, value: tuple[str, ...]) -> None:
        if not value:
            raise ConfigError("identifiers.select", 'select at least one identifier, e.g. ["Identity", "Email"]')
        seen: set[str] = set()
        for i, name in enumerate(value):
            field = f"identifiers.select[{i}]"
            if not isinstance(name, str) or not name.strip():
                raise ConfigError(field, "must be a non-empty name")
            if name in ("clevertapId", "clevertapIds", "profile_id"):
                raise ConfigError(
                    field, "the system id is exported with identifiers.clevertap_id, not as an identifier"
                )
            key = name.lower() if name.lower() in ("identity", "email", "phone") else name
            if key in seen:
                raise ConfigError(field, f"{name!r} is selected twice")
            seen.add(key)

    def __attrs_post_init__(self) -> None:
        for flag in ("all_identities", "clevertap_id", "clevertap_ids"):
            if not isinstance(getattr(self, flag), bool):
                raise ConfigError(f"identifiers.{flag}", "must be true or false")

    @property
    def resolved(self) -> tuple[str, ...]:
        """Selected names with the account identities spelt canonically (``email`` -> ``Email``)."""
        canonical = {n.lower(): n for n in ACCOUNT_IDENTITIES}
        return tuple(canonical.get(n.lower(), n) for n in self.select)


@attrs.frozen(kw_only=True)
class PropertiesConfig:
    """Device attributes, communication preferences and user properties, with names and order."""

    device: tuple[str, ...] = attrs.field(
        default=("token",),
        converter=_tuple,
        metadata={"doc": "Device attributes in the `device` column (none: no `device` column)."},
    )
    comm_prefs: tuple[str, ...] = attrs.field(
        default=(),
        converter=_tuple,
        metadata={
            "doc": "Communication preference columns, in this order, none twice.",
            "choices": COMM_PREF_CHOICES,
        },
    )
    user: str | tuple[str, ...] = attrs.field(
        default="all",
        converter=_str_or_tuple,
        metadata={
            "doc": "`all` (every property in the data), `system` (the `system` set present in the data), or a "
            "non-empty list of property names; not `Identity` or the system id."
        },
    )
    rename: Mapping[str, str] = attrs.field(
        factory=dict,
        converter=_frozen_map,
        metadata={"doc": "`{property: column name}`; not onto a fixed column's name, not an identifier column."},
    )
    order: tuple[str, ...] = attrs.field(
        default=(),
        converter=_tuple,
        metadata={
            "doc": "These columns first (old or new names), the rest keep their places; with a list `user`, "
            "only selected properties."
        },
    )
    schema: Literal["append", "lock"] = attrs.field(
        default="append",
        validator=_validator("properties.schema", ("append", "lock")),
        metadata={
            "doc": "Across the runs of a managed export: `append` adds properties new in the data as columns at "
            'the end, `lock` keeps the stored columns. `lock` only with `user = "all"`.'
        },
    )
    system: tuple[str, ...] = attrs.field(
        default=DEFAULT_SYSTEM_PROPERTIES,
        converter=_tuple,
        metadata={"doc": 'The system property set that `user = "system"` exports.'},
    )
    phone_format: Literal["as_is", "e164"] = attrs.field(
        default="as_is",
        validator=_validator("properties.phone_format", ("as_is", "e164")),
        metadata={
            "doc": "`e164` parses phones (the `phone` field and a text `Phone` property) with Google's libphonenumber "
            "(extra `[phones]`) and writes them in E.164 (`+15551234567`); a value that is not a possible number "
            "is kept as given. Every run counts phones that are not E.164 in `ExportResult.phones_not_e164`."
        },
    )
    phone_region: str | None = attrs.field(
        default=None,  # for phones without a country code, with phone_format = "e164"
        metadata={
            "doc": 'With `e164`: the two-letter region (`"US"`, `"IN"`) of numbers written without a country '
            "code; without it such numbers are kept and counted."
        },
    )

    def __attrs_post_init__(self) -> None:
        if self.phone_region is not None and (
            not isinstance(self.phone_region, str) or not re.fullmatch(r"[A-Z]{2}", self.phone_region)
        ):
            raise ConfigError(
                "properties.phone_region", f"must be a two-letter region code like 'US'; got {self.phone_region!r}"
            )
        for i, name in enumerate(self.device):
            if not isinstance(name, str) or not name:
                raise ConfigError(f"properties.device[{i}]", "must be a device attribute name such as 'token'")
        for i, name in enumerate(self.comm_prefs):
            _one_of(f"properties.comm_prefs[{i}]", name, COMM_PREF_CHOICES)
        if len(set(self.comm_prefs)) != len(self.comm_prefs):
            raise ConfigError("properties.comm_prefs", "lists a preference twice")
        if isinstance(self.user, str):
            _one_of("properties.user", self.user, ("all", "system"))
        else:
            if not self.user:
                raise ConfigError("properties.user", 'select at least one user property, or use "all"')
            for i, name in enumerate(self.user):
                if not isinstance(name, str) or not name:
                    raise ConfigError(f"properties.user[{i}]", "must be a property name")
                if name in RESERVED_PROPERTY_NAMES or name.lower() == "identity":
                    raise ConfigError(
                        f"properties.user[{i}]",
                        f"{name!r} is exported through identifiers; it cannot also be a user property",
                    )
        if self.schema == "lock" and self.user != "all":
            raise ConfigError("properties.schema", 'applies only with user = "all"; remove it')
        reserved_outputs = {*RESERVED_PROPERTY_NAMES, "device", *COMM_PREF_CHOICES}
        for source, target in self.rename.items():
            if not isinstance(target, str) or not target.strip():
                raise ConfigError(f"properties.rename.{source}", "must be the new, non-empty column name")
            if target in reserved_outputs:
                raise ConfigError(f"properties.rename.{source}", f"{target!r} is the name of a fixed column")
            if source in RESERVED_PROPERTY_NAMES:
                raise ConfigError(f"properties.rename.{source}", "identifier columns cannot be renamed here")
        selected = set(self.user) if isinstance(self.user, tuple) else None
        for i, name in enumerate(self.order):
            if not isinstance(name, str):
                raise ConfigError(f"properties.order[{i}]", "must be a property name")
            if selected is not None and name not in selected and name not in set(self.rename.values()):
                raise ConfigError(f"properties.order[{i}]", f"{name!r} is not a selected user property")
        if len(set(self.order)) != len(self.order):
            raise ConfigError("properties.order", "lists a property twice")


@attrs.frozen(kw_only=True)
class ScheduleConfig:
    """When a managed export runs and what each run writes; ``export()`` always runs once, in full."""

    frequency: Literal["once", "recurring"] = attrs.field(
        default="once",
        validator=_validator("schedule.frequency", ("once", "recurring")),
        metadata={"doc": "`once`, or `recurring` every `every_hours`."},
    )
    every_hours: int = attrs.field(default=24, metadata={"doc": "Hours between the runs of a recurring export."})
    mode: Literal["incremental", "full"] = attrs.field(
        default="incremental",
        validator=_validator("schedule.mode", ("incremental", "full")),
        metadata={
            "doc": "`incremental`: the first run exports every profile, later runs only new or changed ones; "
            "`full`: every profile every run."
        },
    )

    @every_hours.validator
    def _check_hours(self, attribute: Any, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not 4 <= value <= 24:
            raise ConfigError("schedule.every_hours", f"must be a whole number of hours from 4 to 24; got {value!r}")


EXECUTORS = ("auto", "serial", "processes", "dask")


@attrs.frozen(kw_only=True)
class ExecutionConfig:
    """Where partitions run: in this process, in worker processes, or on a Dask cluster."""

    executor: Literal["auto", "serial", "processes", "dask"] = attrs.field(
        default="auto",
        validator=_validator("execution.executor", EXECUTORS),
        metadata={
            "doc": "`auto`: worker processes when the source has more than one partition, else this process; "
            "`serial`: this process; `processes`: worker processes; `dask`: a Dask cluster (extra `[dask]`)."
        },
    )
    workers: int = attrs.field(
        default=0,  # processes: at most this many at once (0: one per core)
        metadata={"doc": "Worker processes at once; 0: one per core."},
    )
    dask_address: str | None = attrs.field(
        default=None,  # dask: an existing scheduler (default: a LocalCluster)
        metadata={
            "default": "none: the `dask_client=` given to `Exporter`, else a `LocalCluster` started for the run",
            "doc": 'A Dask scheduler address such as `"tcp://10.0.0.5:8786"`.',
        },
    )

    @workers.validator
    def _check_workers(self, attribute: Any, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1024:
            raise ConfigError(
                "execution.workers", f"must be a whole number from 0 (one per core) to 1024; got {value!r}"
            )

    @dask_address.validator
    def _check_address(self, attribute: Any, value: str | None) -> None:
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ConfigError("execution.dask_address", 'must be a scheduler address such as "tcp://10.0.0.5:8786"')


_TRANSFORM_NAME = re.compile(r"[a-z][a-z0-9_-]*")


@attrs.frozen(kw_only=True)
class TransformsConfig:
    """PII controls on output columns (names as exported, after renames), applied before anything is
    written or fingerprinted: ``hash`` (salted SHA-256), ``drop``, or a plugin's transform (``apply``).
    """

    hash: tuple[str, ...] = attrs.field(
        default=(),
        converter=_tuple,
        metadata={
            "doc": "Columns whose values become the lowercase hex SHA-256 of `salt` + the value's UTF-8 text; "
            "missing values stay missing. Needs `salt`."
        },
    )
    drop: tuple[str, ...] = attrs.field(
        default=(),
        converter=_tuple,
        metadata={"doc": "Columns left out of the files (at least one column must remain)."},
    )
    salt: str | None = attrs.field(
        default=None,
        repr=False,  # a credential: never shown
        metadata={
            "doc": 'Required with `hash`: a secret of your own, best `"${EXPORT_SALT}"`; withheld from the '
            "registry and never shown."
        },
    )
    apply: Mapping[str, Any] = attrs.field(
        factory=dict,
        converter=_frozen_map,  # transform name -> columns
        metadata={"doc": 'A plugin\'s transforms: `{ mask = ["Email"] }` runs the transform `mask` on those columns.'},
    )
    options: Mapping[str, Any] = attrs.field(
        factory=dict,
        converter=_frozen_map,
        repr=False,  # name -> table
        metadata={"doc": "`[transforms.options.mask]`: a table handed to the transform `mask`."},
    )

    def __attrs_post_init__(self) -> None:
        claimed: dict[str, str] = {}
        for field, name, column in self.steps():
            if not isinstance(column, str) or not column.strip():
                raise ConfigError(field, "must be the name of an output column, e.g. 'Email'")
            if column in claimed:
                raise ConfigError(
                    field, f"{column!r} already goes through {claimed[column]}; a column takes one transform"
                )
            claimed[column] = f"transforms.{name}" if name in ("hash", "drop") else f"transforms.apply.{name}"
        for name, columns in self.apply.items():
            if not isinstance(name, str) or not _TRANSFORM_NAME.fullmatch(name):
                raise ConfigError(f"transforms.apply.{name}", "must be a transform name like 'mask_email'")
            if isinstance(columns, str) or not isinstance(columns, list | tuple):
                raise ConfigError(f"transforms.apply.{name}", "must be a list of output column names")
        for name, table in self.options.items():
            if not isinstance(table, Mapping):
                raise ConfigError(f"transforms.options.{name}", "must be a table of the transform's options")
        if self.salt is not None and (not isinstance(self.salt, str) or not self.salt):
            raise ConfigError("transforms.salt", 'must be a non-empty text (a secret: write it as "${NAME}")')
        if self.uses("hash") and self.salt is None:
            raise ConfigError(
                "transforms.salt",
                'is required to hash columns: a secret of your own, best from the environment: salt = "${EXPORT_SALT}"',
            )

    def steps(self) -> list[tuple[str, str, str]]:
        """(setting, transform name, column) for every column named, in the order given."""
        out = [(f"transforms.hash[{i}]", "hash", c) for i, c in enumerate(self.hash)]
        out += [(f"transforms.drop[{i}]", "drop", c) for i, c in enumerate(self.drop)]
        for name, columns in self.apply.items():
            if isinstance(columns, list | tuple):
                out += [(f"transforms.apply.{name}[{i}]", str(name), c) for i, c in enumerate(columns)]
        return out

    def uses(self, name: str) -> bool:
        return any(step[1] == name for step in self.steps())


_SECTIONS = {
    "source": SourceConfig,
    "destination": DestinationConfig,
    "identifiers": IdentifierConfig,
    "properties": PropertiesConfig,
    "schedule": ScheduleConfig,
    "execution": ExecutionConfig,
    "transforms": TransformsConfig,
}
_TOP_KEYS = ("name", "account_id", "export_id", *_SECTIONS)
_SOURCE_KEYS = ("kind", "mapping", "bad_records", "batch_size")


@attrs.frozen(kw_only=True)
class ExportConfig:
    """Everything one export needs. Immutable; ``attrs.evolve`` re-runs every check."""

    name: str = attrs.field(default="export", metadata={"doc": "The export's name; not empty."})
    account_id: str = attrs.field(
        default="0",
        metadata={"doc": "1-64 of `a-z A-Z 0-9 - _` (it goes into file names); a TOML integer is accepted."},
    )
    export_id: str | None = attrs.field(
        default=None,
        metadata={
            "default": "the run's start in epoch seconds (export center: the creation time)",
            "doc": 'A numeric string such as `"1761651721"`, unique in an export center.',
        },
    )
    source: SourceConfig = attrs.field(factory=SourceConfig)
    destination: DestinationConfig
    identifiers: IdentifierConfig = attrs.field(factory=IdentifierConfig)
    properties: PropertiesConfig = attrs.field(factory=PropertiesConfig)
    schedule: ScheduleConfig = attrs.field(factory=ScheduleConfig)
    execution: ExecutionConfig = attrs.field(factory=ExecutionConfig)
    transforms: TransformsConfig = attrs.field(factory=TransformsConfig)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigError("name", "must be a non-empty name for the export")
        if not isinstance(self.account_id, str) or not _ACCOUNT_ID.fullmatch(self.account_id):
            raise ConfigError("account_id", "must be 1-64 characters from a-z A-Z 0-9 - _ (it goes into file names)")
        if self.export_id is not None and (
            not isinstance(self.export_id, str) or not _EXPORT_ID.fullmatch(self.export_id)
        ):
            raise ConfigError("export_id", 'must be a numeric string such as "1761651721"')

    # -- building -------------------------------------------------------------------------------

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> ExportConfig:
        """Build from the plain structure of a configuration file (a ``dict`` of settings and sections).

        Every rule is checked; the first violation raises ``ConfigError`` naming the setting's dotted path.
        """
        if not isinstance(raw, Mapping):
            raise ConfigError("", "the configuration must be a table of settings")
        _reject_unknown("", raw, _TOP_KEYS)
        top = {k: raw[k] for k in ("name", "account_id", "export_id") if k in raw}
        for key in ("account_id", "export_id"):
            if isinstance(top.get(key), int) and not isinstance(top.get(key), bool):
                top[key] = str(top[key])  # a TOML user may well write account_id = 100000000
        sections: dict[str, Any] = {}
        if "destination" not in raw:
            raise ConfigError("destination", "is required: at least destination.url")
        for name, klass in _SECTIONS.items():
            if name not in raw:
                continue
            value = raw[name]
            if isinstance(value, klass):
                sections[name] = value
                continue
            if not isinstance(value, Mapping):
                raise ConfigError(name, "must be a table of settings")
            _check_keys(name, value)
            sections[name] = _build_section(name, klass, value)
        return cls(**top, **sections)

    def to_mapping(self) -> dict[str, Any]:
        """Plain settings (lists, tables, strings) that ``from_mapping`` turns back into this config.

        Values are as given, credentials included: see ``secrets.withhold`` before storing them.
        """
        raw: dict[str, Any] = {"name": self.name, "account_id": self.account_id}
        if self.export_id is not None:
            raw["export_id"] = self.export_id
        source = self.source
        raw["source"] = {
            "kind": source.kind,
            **_plain(source.options),
            "mapping": _plain(source.mapping),
            "bad_records": source.bad_records,
            "batch_size": source.batch_size,
        }
        for name in ("destination", "identifiers", "properties", "schedule", "execution", "transforms"):
            section = getattr(self, name)
            raw[name] = {a.name: _plain(getattr(section, a.name)) for a in attrs.fields(type(section))}
            raw[name] = {k: v for k, v in raw[name].items() if v is not None}
        return raw

    @classmethod
    def from_file(cls, path: str | Path) -> ExportConfig:
        """Read a ``.toml`` or ``.json`` file (JSON with the same structure as the TOML), UTF-8 with or
        without a byte order mark. Every error is a ``ConfigError`` whose message names the file."""
        path = Path(path)
        raw = _parse_config(path, _config_text(path))
        try:
            _check_parsed(raw)
            return cls.from_mapping(raw)
        except ConfigError as exc:
            raise ConfigError(exc.field, f"{exc.reason} (in {path})") from None


# A configuration is a few KB nested a few levels; these bounds are far above any real one, and keep
# a hostile file from exhausting memory (/dev/zero) or the interpreter's recursion limit (196 KB of
# '[' crash the TOML and JSON parsers, and a few hundred levels crash deepcopy and repr later on).
MAX_CONFIG_BYTES = 16_000_000
MAX_CONFIG_DEPTH = 100


def _config_text(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except IsADirectoryError:
        raise ConfigError("", f"{path} is a directory; pass the path of a .toml or .json file") from None
    except OSError as exc:
        raise ConfigError(
            "", f"cannot read configuration file {path}: {exc.strerror or exc}; check the path and its permissions"
        ) from None
    except ValueError:  # a path holding a NUL character
        raise ConfigError("", f"cannot read configuration file {str(path)!r}: not a valid path") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(
            "",
            f"{path} is larger than {MAX_CONFIG_BYTES // 1_000_000} MB; a configuration is a few KB: "
            "keep profiles in a source file (source.path)",
        )
    try:
        return data.decode("utf-8-sig")  # Windows editors start UTF-8 files with a byte order mark
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - data.rfind(b"\n", 0, exc.start)
        raise ConfigError(
            "",
            f"{path} is not UTF-8 text (byte 0x{data[exc.start]:02x} at line {line}, column {column}); "
            "save it as UTF-8",
        ) from None


class _RepeatedKeys(dict[str, Any]):
    """A JSON object that names a key twice (JSON keeps the last silently; a setting would be lost)."""

    repeated: str = ""


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    table = dict(pairs)
    if len(table) == len(pairs):
        return table
    marked, seen = _RepeatedKeys(table), set()
    for key, _ in pairs:
        if key in seen:
            marked.repeated = key
            break
        seen.add(key)
    return marked


def _parse_config(path: Path, text: str) -> Any:
    kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
    if not text.strip():
        raise ConfigError("", f'{path} is empty; a configuration needs at least [destination] url = "..."')
    try:
        raw = json.loads(text, object_pairs_hook=_json_object) if kind == "JSON" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError("", f"{path} is not valid {kind}: {exc}") from None
    except RecursionError:
        raise ConfigError(
            "", f"{path} nests arrays or tables too deeply to read; a configuration nests a few levels"
        ) from None
    except ValueError as exc:
        if "digits" not in str(exc):
            raise ConfigError("", f"{path} is not valid {kind}: {exc}") from None
        # int() refuses numbers longer than sys.get_int_max_str_digits(), and its advice is for programs
        limit = sys.get_int_max_str_digits()
        raise ConfigError("", f"{path} holds a number of more than {limit} digits, which no setting takes") from None
    return raw


def _check_parsed(raw: Any) -> None:
    """Refuse what parsed but is not settings: nesting deeper than any configuration, a JSON key given
    twice, and lone UTF-16 surrogates (JSON's "\\ud800"), which are not text and fail every write."""
    stack: list[tuple[Any, str, int]] = [(raw, "", 0)]
    while stack:
        value, field, depth = stack.pop()
        if depth > MAX_CONFIG_DEPTH:
            raise ConfigError(field, f"nests more than {MAX_CONFIG_DEPTH} levels deep; a configuration nests a few")
        if isinstance(value, str):
            _check_text(field, value, "the value")
        elif isinstance(value, list):
            stack += [(item, field, depth + 1) for item in value]
        elif isinstance(value, dict):
            if isinstance(value, _RepeatedKeys):
                raise ConfigError(_join(field, value.repeated, 0), "is given twice; keep one")
            for key, item in value.items():
                _check_text(field, key, "a key")
                stack.append((item, _join(field, key, depth), depth + 1))


def _join(field: str, key: str, depth: int) -> str:
    # Deep paths are cut after four names: the field is for a person to find, not a full address.
    if depth >= 4:
        return field
    return f"{field}.{key}" if field else key


def _check_text(field: str, text: str, what: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ConfigError(
            field,
            f"{what} holds a lone surrogate (\\u{ord(text[exc.start]):04x}), half of a UTF-16 pair, which is not "
            "text; write the character itself",
        ) from None


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _reject_unknown(prefix: str, raw: Mapping[str, Any], known: tuple[str, ...]) -> None:
    for key in raw:
        if key not in known:
            path = f"{prefix}.{key}" if prefix else str(key)
            raise ConfigError(path, f"unknown setting{_hint(key, known)}; known settings: {', '.join(known)}")


def _check_keys(name: str, table: Mapping[Any, Any]) -> None:
    """Names where names belong: TOML and JSON keys are text, a Python caller's need not be (and its
    tables may even contain themselves)."""
    stack: list[tuple[str, Mapping[Any, Any], int]] = [(name, table, 1)]
    while stack:
        prefix, current, depth = stack.pop()
        if depth > MAX_CONFIG_DEPTH:
            raise ConfigError(prefix, f"nests more than {MAX_CONFIG_DEPTH} levels deep; a configuration nests a few")
        for key, value in current.items():
            if not isinstance(key, str):
                raise ConfigError(prefix, f"has the key {key!r}, which is not a name; keys are text")
            if isinstance(value, Mapping) and (prefix, key) != ("source", "data"):  # data, not settings
                stack.append((_join(prefix, key, depth), value, depth + 1))


def _check_kinds(name: str, klass: type, raw: Mapping[str, Any]) -> None:
    """Tables where tables belong and lists where lists belong, before converters see them."""
    for a in attrs.fields(klass):
        if a.name not in raw or raw[a.name] is None:
            continue
        value = raw[a.name]
        if a.converter is _frozen_map and not isinstance(value, Mapping):
            raise ConfigError(f"{name}.{a.name}", f"must be a table of name = value pairs, not {type(value).__name__}")
        if a.converter in (_tuple, _str_or_tuple) and not isinstance(value, str | list | tuple):
            raise ConfigError(f"{name}.{a.name}", f"must be a list of names, not {type(value).__name__}")


def _build_section(name: str, klass: type, raw: Mapping[str, Any]) -> Any:
    if klass is SourceConfig:
        # Keys other than the common ones are the source kind's own options, checked by that kind;
        # a near miss of a common key is surely a typo, not an option.
        for key in raw:
            close = difflib.get_close_matches(str(key), _SOURCE_KEYS, n=1, cutoff=0.75)
            if key not in _SOURCE_KEYS and close:
                raise ConfigError(f"source.{key}", f"unknown setting (did you mean {close[0]!r}?)")
        common = {k: raw[k] for k in _SOURCE_KEYS if k in raw}
        kind = common.get("kind", "records")
        if not isinstance(kind, str) or not kind.strip():  # it is looked up among the plugins' kinds
            raise ConfigError("source.kind", f"must be the name of a source kind such as 'jsonl'; got {kind!r}")
        options = {k: v for k, v in raw.items() if k not in _SOURCE_KEYS}
        if "options" in options and isinstance(options["options"], Mapping):
            options = {**options.pop("options"), **options}
        _check_kinds(name, klass, common)
        return SourceConfig(**common, options=options)
    known = tuple(a.name for a in attrs.fields(klass))
    _reject_unknown(name, raw, known)
    required = [a.name for a in attrs.fields(klass) if a.default is attrs.NOTHING]
    for key in required:
        if key not in raw:
            raise ConfigError(f"{name}.{key}", "is required")
    _check_kinds(name, klass, raw)
    try:
        return klass(**raw)
    except TypeError as exc:  # a converter met a value of the wrong kind deeper inside
        raise ConfigError(name, f"has a value of the wrong kind: {exc}") from None
