"""Folder and file names of a run (DESIGN section 6).

Default file name: ``<account-id>-<export-id>-<timestamp>-<instance-id>-<part>.<ext>``, the part
zero-padded so names sort in order and a retried run rewrites the same keys. A custom name gets
``-<timestamp>-<instance-id>-<part>`` appended. The timestamp keeps runs apart: the export center's
registry gives every run of an export a second no earlier run holds, and a one-off run without a
fixed start takes a second without a manifest (``Exporter._unused_second``).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import attrs

from .config import ExportConfig
from .templates import parse_template
from .urls import join

PART_DIGITS = 5
_FIXED_FOLDERS = {"root": "", "data_type": "profile", "run_date": "{{Date}}", "export_id": "{{Export-id}}"}


@attrs.frozen
class FileNamer:
    config: ExportConfig
    export_id: str
    started_at: datetime  # aware

    @property
    def timestamp(self) -> str:
        return str(int(self.started_at.timestamp()))

    @property
    def date(self) -> str:
        zone = ZoneInfo(self.config.destination.timezone)
        return self.started_at.astimezone(zone).strftime("%Y%m%d")

    def variables(self, instance: int) -> dict[str, str]:
        return {
            "Account-id": self.config.account_id,
            "Export-id": self.export_id,
            "Timestamp": self.timestamp,
            "Instance-id": str(instance),
            "Date": self.date,
        }

    def folder(self, instance: int) -> str:
        destination = self.config.destination
        text = destination.folder_template if destination.folders == "custom" else _FIXED_FOLDERS[destination.folders]
        if not text:
            return ""
        return parse_template(text, "destination.folder_template").render(self.variables(instance))

    def file_name(self, instance: int, part: int, extension: str) -> str:
        template = self.config.destination.file_name_template()
        suffix = f"{part:0{PART_DIGITS}d}.{extension}"
        if template is None:
            return f"{self.config.account_id}-{self.export_id}-{self.timestamp}-{instance}-{suffix}"
        stem = template.render(self.variables(instance))
        return f"{stem}-{self.timestamp}-{instance}-{suffix}"

    def key(self, instance: int, part: int, extension: str) -> str:
        return join(self.folder(instance), self.file_name(instance, part, extension))
