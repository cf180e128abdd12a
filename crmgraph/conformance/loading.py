"""Which module a check is about, and whether it starts: alone (its start-up
hooks called with no other plugin registered) and with every built-in plugin
(the catalog validated and the GraphQL schema built, as ``crmgraph serve``
does). A broken plugin is reported by the :class:`PluginError` crmgraph raises
for it, which names the plugin."""

from __future__ import annotations

import importlib
import importlib.metadata
from dataclasses import dataclass

from crmgraph.customer_types import CustomerType, descriptor_problems
from crmgraph.plugin_errors import PluginError
from crmgraph.registry import (
    CORE_CUSTOMER_FIELDS,
    DEFAULT_PLUGINS,
    Catalog,
    make_plugin_manager,
    startup_results,
)
from crmgraph.settings import Settings

# The start-up hooks: answered once, when the app is built.
STARTUP_HOOKS = (
    "crmgraph_customer_types",
    "crmgraph_interaction_channels",
    "crmgraph_relationship_kinds",
    "crmgraph_permissions",
    "crmgraph_piccolo_apps",
    "crmgraph_analytics_metrics",
    "crmgraph_event_handlers",
)


def resolve(target: str) -> str:
    """The plugin module for an entry point name (``loyalty``), a
    distribution (``crmgraph-loyalty``) or a module path."""
    for ep in importlib.metadata.entry_points(group="crmgraph"):
        distribution = ep.dist.name if ep.dist is not None else ""
        if target in (ep.name, distribution, distribution.replace("-", "_")):
            return ep.value.split(":")[0]
    return target


def installed() -> list[str]:
    """Every plugin module installed through the ``crmgraph`` entry point group."""
    return sorted(
        {ep.value.split(":")[0] for ep in importlib.metadata.entry_points(group="crmgraph")}
    )


def settings(module: str, alone: bool = False) -> Settings:
    disabled = DEFAULT_PLUGINS if alone else ()
    return Settings(
        plugins=(module,), disabled_plugins=disabled, load_entry_points=False, redis_url=None
    )


def load_alone(module: str) -> list[CustomerType]:
    """The plugin on its own: imported, each start-up hook answered, each
    customer type well formed (references to other plugins' types are left to
    the load with the built-ins). Raises PluginError naming the plugin."""
    try:
        importlib.import_module(module)
    except Exception as exc:
        raise PluginError(module, f"cannot be imported: {exc!r}") from exc
    pm = make_plugin_manager(settings(module, alone=True))
    for hook in STARTUP_HOOKS:
        startup_results(pm, hook)
    types = [d for _, found in startup_results(pm, "crmgraph_customer_types") for d in found or ()]
    for descriptor in types:
        problems = descriptor_problems(descriptor, CORE_CUSTOMER_FIELDS)
        if problems:
            raise PluginError(module, f"customer type {descriptor.key!r}: " + "; ".join(problems))
    return types


@dataclass(frozen=True)
class Loaded:
    catalog: Catalog
    types: tuple[CustomerType, ...]  # the plugin's own
    sdl: str


def load_with_builtins(module: str) -> Loaded:
    """The plugin beside every built-in: catalog and schema, as at start-up."""
    from crmgraph.schema.build import build_schema

    pm = make_plugin_manager(settings(module))
    catalog = Catalog.from_plugin_manager(pm)
    schema, _ = build_schema(catalog, pm)
    own = tuple(t.descriptor for t in catalog.types if t.plugin == module)
    return Loaded(catalog, own, schema.as_str())
