"""Export user profiles to cloud object storage as CSV, JSON, XML or Parquet files."""

from .api import export, preview
from .center import ExportCenter
from .config import (
    DestinationConfig,
    ExportConfig,
    IdentifierConfig,
    PropertiesConfig,
    ScheduleConfig,
    SourceConfig,
)
from .errors import ConfigError, DataError, PluginError, ProfileExportsError, SinkError
from .exporter import Exporter, Preview
from .hookspecs import hookimpl
from .results import CommittedFile, ExportResult, PartitionStats

__all__ = [
    "CommittedFile",
    "ConfigError",
    "DataError",
    "DestinationConfig",
    "ExportCenter",
    "ExportConfig",
    "ExportResult",
    "Exporter",
    "IdentifierConfig",
    "PartitionStats",
    "PluginError",
    "Preview",
    "ProfileExportsError",
    "PropertiesConfig",
    "ScheduleConfig",
    "SinkError",
    "SourceConfig",
    "export",
    "hookimpl",
    "preview",
]
