"""One built schema per plugin set, shared by the apps of a process that load
the same plugins.

Why: building the schema (the plugins' hooks, then strawberry's conversion
and validation of every type) costs about 150 ms of CPU, at every app start;
the test suite starts some 900 apps, most with the built-in plugins only.

What makes sharing safe:

- :func:`~crmgraph.schema.build.build_schema` reads only the catalog and the
  plugin manager's hooks: settings never reach it (they select the plugins,
  which the key holds), and resolvers read the app's own state (database,
  plugin manager, settings, loaders) from ``info.context``, never from the
  build (a resolver that needs the catalog closes over one equal to the app's).
- The key holds the registered plugins and the implementations of the two
  schema hooks (``crmgraph_graphql``, ``crmgraph_customer_fields``) by
  identity, kept alive by the cache so that no other object can take their
  ``id``, and the catalog by equality. A plugin instance a test makes, a
  module whose hook is replaced, another plugin list or a disabled plugin:
  another key, another build.
- The extensions are the app's own (its limits, caches, rate budget and
  compiled reads): each app gets a shallow copy of the schema object with
  its extensions; the copies share the converted GraphQL schema, which
  nothing changes after the build.
"""

import copy
import dataclasses
import threading
from collections import OrderedDict
from typing import Any

import pluggy

from crmgraph.registry import Catalog
from crmgraph.schema.build import build_schema
from crmgraph.schema.crm_schema import CRMSchema
from crmgraph.schema.schema_types import SchemaTypes

# the hooks build_schema calls: what their implementations answer is the schema
SCHEMA_HOOKS = ("crmgraph_graphql", "crmgraph_customer_fields")
# plugin sets kept: a test run uses a handful; a server, one
CACHE_SIZE = 8


class SchemaKey:
    """What a built schema depends on (see the module's docstring)."""

    def __init__(self, pm: pluggy.PluginManager, catalog: Catalog) -> None:
        # a blocked (disabled) name is listed with None: part of the key too
        self.plugins = tuple(pm.list_name_plugin())
        # a plugin object's method is a new bound method in each manager: its function
        self.impls = tuple(
            (impl.plugin_name, getattr(impl.function, "__func__", impl.function))
            for hook in SCHEMA_HOOKS
            for impl in getattr(pm.hook, hook).get_hookimpls()
        )
        self.catalog = catalog
        self._hash = hash(
            (
                tuple((name, id(plugin)) for name, plugin in self.plugins),
                tuple((name, id(function)) for name, function in self.impls),
            )
        )

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SchemaKey):
            return NotImplemented
        return (
            _same(self.plugins, other.plugins)
            and _same(self.impls, other.impls)
            and self.catalog == other.catalog
        )


def _same(mine: tuple[tuple[str, Any], ...], theirs: tuple[tuple[str, Any], ...]) -> bool:
    # by identity: two plugin objects that compare equal may still answer differently
    return len(mine) == len(theirs) and all(
        a_name == b_name and a is b for (a_name, a), (b_name, b) in zip(mine, theirs, strict=True)
    )


_built: OrderedDict[SchemaKey, tuple[CRMSchema, SchemaTypes]] = OrderedDict()
# held while building: two apps starting at once build a plugin set once
_lock = threading.Lock()


def shared_schema(
    catalog: Catalog, pm: pluggy.PluginManager, extensions: tuple[Any, ...] = ()
) -> tuple[CRMSchema, SchemaTypes]:
    """:func:`~crmgraph.schema.build.build_schema`'s answer, built once per
    plugin set; the schema object is the app's own, with ``extensions``."""
    key = SchemaKey(pm, catalog)
    with _lock:
        built = _built.get(key)
        if built is None:
            built = build_schema(catalog, pm)
            _built[key] = built
            while len(_built) > CACHE_SIZE:
                _built.popitem(last=False)
        else:
            _built.move_to_end(key)
    schema, types = built
    return with_extensions(schema, extensions), dataclasses.replace(types, catalog=catalog)


def with_extensions(schema: CRMSchema, extensions: tuple[Any, ...]) -> CRMSchema:
    """A copy of ``schema`` running ``extensions`` after its own (the parser
    and validation caches): strawberry reads them off the schema object at
    each operation (``Schema.get_extensions``), and nothing else of it differs
    from one app to another."""
    own = copy.copy(schema)
    own.extensions = (*schema.extensions, *extensions)
    return own
