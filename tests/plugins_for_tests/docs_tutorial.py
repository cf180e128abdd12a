"""What docs/plugins.md's hook examples declare beyond the crmgraph-loyalty
plugin (its interaction channel), copied from the page, so
the page's GraphQL examples run against exactly what it shows
(tests/test_docs_examples.py loads it next to ``crmgraph_loyalty.plugin``)."""

from __future__ import annotations

from crmgraph.hookspecs import hookimpl


@hookimpl
def crmgraph_interaction_channels() -> list[str]:
    return ["LOYALTY_APP"]
