"""Plugin loading: one ``PluginManager`` per exporter, built-ins registered like third-party plugins.

Entry points of the ``profile_exports`` group are loaded one at a time: a plugin that fails to
import or to register is skipped with a ``PluginWarning`` naming it (``strict=True`` raises
``PluginError`` instead), so one broken plugin never takes the library down.
"""

from __future__ import annotations

import difflib
import importlib
import warnings
from collections.abc import Iterable, Mapping
from importlib import metadata
from types import MappingProxyType
from typing import Any

import attrs
import pluggy

from . import hookspecs
from .errors import ConfigError, PluginError
from .urls import protocol_of

BUILTIN_PLUGINS = (
    "profile_exports.writers.csv",
    "profile_exports.writers.jsonl",
    "profile_exports.writers.xml",
    "profile_exports.writers.parquet",
    "profile_exports.sinks.fsspec_sink",
    "profile_exports.sinks.s3",
    "profile_exports.sinks.gcs",
    "profile_exports.sinks.azure",
    "profile_exports.sources.records",
    "profile_exports.sources.arrow",
    "profile_exports.sources.files",
    "profile_exports.sources.sql",
    "profile_exports.sources.synthetic",
    "profile_exports.pii",
)
ENTRY_POINT_GROUP = hookspecs.PROJECT_NAME


class PluginWarning(UserWarning):
    """A third-party plugin was skipped because it failed to load or register."""


@attrs.frozen
class Component:
    """A registered writer, sink factory, source factory or transform, and the plugin it came from."""

    kind: str  # "writer" | "sink" | "source" | "transform"
    name: str
    obj: Any
    plugin: str
    distribution: str | None  # "name version" for entry-point plugins, None for built-ins


@attrs.frozen
class Components:
    """What the plugins registered, rebuilt from the hooks for each manager (no global state)."""

    writers: Mapping[str, Component]
    sinks: Mapping[str, Component]  # by URL protocol; "*" is the fallback
    sources: Mapping[str, Component]
    transforms: Mapping[str, Component] = attrs.field(factory=lambda: MappingProxyType({}))

    def all(self) -> list[Component]:
        seen, out = set(), []
        for c in [*self.writers.values(), *self.sinks.values(), *self.sources.values(), *self.transforms.values()]:
            if id(c) not in seen:
                seen.add(id(c))
                out.append(c)
        return out

    def writer(self, name: str) -> Any:
        return _lookup(self.writers, name, "destination.format", "format").obj

    def source(self, name: str) -> Any:
        return _lookup(self.sources, name, "source.kind", "source kind").obj

    def transform(self, name: str, field: str) -> Any:
        return _lookup(self.transforms, name, field, "transform").obj

    def sink_for(self, url: str) -> Any:
        protocol = protocol_of(url)
        component = self.sinks.get(protocol) or self.sinks.get("*")
        if component is None:
            raise ConfigError("destination.url", f"no sink handles {protocol}:// URLs; install a sink plugin")
        return component.obj


def _lookup(table: Mapping[str, Component], name: str, field: str, what: str) -> Component:
    if name in table:
        return table[name]
    close = difflib.get_close_matches(name, list(table), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigError(field, f"unknown {what} {name!r}{hint}; available: {', '.join(sorted(table))}")


class ExportsPluginManager(pluggy.PluginManager):
    """A pluggy manager that also remembers which distribution each entry-point plugin came from."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT_NAME)
        self.distributions: dict[str, str] = {}


def build_plugin_manager(
    *, strict: bool = False, load_entry_points: bool = True, plugins: Iterable[Any] = ()
) -> ExportsPluginManager:
    """A fresh manager: hook specs, built-ins, entry points, then ``plugins`` given by the caller."""
    pm = ExportsPluginManager()
    pm.add_hookspecs(hookspecs)
    for dotted in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(dotted), name=dotted)
    if load_entry_points:
        _load_entry_points(pm, strict)
    for plugin in plugins:
        pm.register(plugin)
    pm.check_pending()
    return pm


def _load_entry_points(pm: ExportsPluginManager, strict: bool) -> None:
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
            continue
        dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist else "unknown distribution"
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
            pm.check_pending()
        except Exception as exc:
            if pm.get_plugin(ep.name) is not None:
                pm.unregister(name=ep.name)
            message = f"plugin {ep.name!r} ({dist}, {ep.value}) failed to load: {type(exc).__name__}: {exc}"
            if strict:
                raise PluginError(message) from exc
            warnings.warn(f"{message}; skipped it", PluginWarning, stacklevel=3)
            continue
        pm.distributions[ep.name] = dist


def collect_components(pm: ExportsPluginManager, *, strict: bool = False) -> Components:
    """Call the registration hooks, one implementation at a time, remembering who registered what."""
    writers: dict[str, Component] = {}
    sinks: dict[str, Component] = {}
    sources: dict[str, Component] = {}
    transforms: dict[str, Component] = {}
    # get_hookimpls() lists implementations in registration order, so later plugins override.
    for hook_name, kind in (
        ("register_writers", "writer"),
        ("register_sinks", "sink"),
        ("register_sources", "source"),
        ("register_transforms", "transform"),
    ):
        caller = getattr(pm.hook, hook_name)
        for impl in caller.get_hookimpls():
            plugin_name = impl.plugin_name
            distribution = pm.distributions.get(plugin_name)
            collected: list[Component] = []

            def register(
                obj: Any,
                _kind: str = kind,
                _name: str = plugin_name,
                _dist: str | None = distribution,
                _into: list[Component] = collected,
            ) -> None:
                name = getattr(obj, "name", None)
                if not isinstance(name, str) or not name:
                    raise PluginError(f"plugin {_name!r} registered a {_kind} without a name")
                _into.append(Component(_kind, name, obj, _name, _dist))

            try:
                # An implementation may take fewer arguments than the spec offers.
                impl.function(**{arg: register for arg in impl.argnames if arg == "register"})
            except Exception as exc:
                message = f"plugin {plugin_name!r} failed in {hook_name}: {type(exc).__name__}: {exc}"
                if strict or distribution is None:
                    raise PluginError(message) from exc
                warnings.warn(f"{message}; skipped its {kind}s", PluginWarning, stacklevel=2)
                continue
            for component in collected:
                if kind == "writer":
                    writers[component.name] = component
                elif kind == "source":
                    sources[component.name] = component
                elif kind == "transform":
                    transforms[component.name] = component
                else:
                    for protocol in getattr(component.obj, "protocols", ("*",)):
                        sinks[protocol] = component
    return Components(
        MappingProxyType(writers), MappingProxyType(sinks), MappingProxyType(sources), MappingProxyType(transforms)
    )


def load_components(
    *, strict: bool = False, load_entry_points: bool = True, plugins: Iterable[Any] = ()
) -> tuple[ExportsPluginManager, Components]:
    pm = build_plugin_manager(strict=strict, load_entry_points=load_entry_points, plugins=plugins)
    return pm, collect_components(pm, strict=strict)
