"""Every extension point of crmgraph, one documented hookspec each.

Plugins implement these with ``@crmgraph.hookimpl``. Built-in customer types
under ``crmgraph/plugins/`` use exactly the same hooks as a partner's package.
See ``docs/plugins.md`` for a worked example of each.
"""

from __future__ import annotations

import pluggy

from crmgraph.customer_types import CustomerType

hookspec = pluggy.HookspecMarker("crmgraph")
hookimpl = pluggy.HookimplMarker("crmgraph")


@hookspec
def crmgraph_customer_types() -> list[CustomerType]:
    """Return the customer types this plugin adds.

    Each :class:`crmgraph.customer_types.CustomerType` becomes a concrete GraphQL
    type implementing ``Customer``, a ``CustomerKind`` value and a typed attribute
    input. Start-up fails, naming the plugin, if a key or GraphQL name is taken.

    Example::

        @hookimpl
        def crmgraph_customer_types():
            return [CustomerType(key="distributor", graphql_name="Distributor", ...)]
    """


@hookspec
def crmgraph_interaction_channels() -> list[str]:
    """Return extra interaction channels (upper-case names) this plugin adds to
    the ``InteractionChannel`` enum, e.g. ``["WHATSAPP"]``."""
