"""What every resolver can reach through ``info.context``."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pluggy

from crmgraph.access import Access
from crmgraph.auth import Principal
from crmgraph.db.engine import Database
from crmgraph.events import EventDispatcher
from crmgraph.lifecycle import Lifecycles
from crmgraph.live import Subscribers
from crmgraph.registry import Catalog
from crmgraph.schema.loaders import Loaders
from crmgraph.settings import Settings

if TYPE_CHECKING:
    from crmgraph.schema.build import SchemaTypes


@dataclass
class Context:
    db: Database
    catalog: Catalog
    settings: Settings
    types: SchemaTypes
    plugin_manager: pluggy.PluginManager
    lifecycles: Lifecycles
    events: EventDispatcher
    principal: Principal
    access: Access
    live: Subscribers | None = None
    request: Any = None
    response: Any = None
    # graphql-transport-ws: the connection_init payload (strawberry sets it)
    connection_params: dict[str, Any] | None = None

    @functools.cached_property
    def loaders(self) -> Loaders:
        """Made on first use, so that a request loading nothing through them
        (a compiled read, ``{ __typename }``) builds none of the DataLoaders."""
        return Loaders(self.db)
