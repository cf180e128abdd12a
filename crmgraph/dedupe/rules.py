"""Which duplicate rule applies to a customer type: what its plugin declares
(``CustomerType.duplicate_rule``), unless ``CRMGRAPH_DUPLICATE_RULES``
(``supplier=block,client=warn``) says otherwise."""

from __future__ import annotations

from collections.abc import Mapping

from crmgraph.customer_types import DUPLICATE_RULES, CustomerType
from crmgraph.registry import Catalog, PluginError

WARN, BLOCK = DUPLICATE_RULES


def duplicate_rule(descriptor: CustomerType, overrides: Mapping[str, str]) -> str:
    return overrides.get(descriptor.key, descriptor.duplicate_rule)


def check_duplicate_rules(catalog: Catalog, overrides: Mapping[str, str]) -> None:
    """Start-up: an override naming an unknown type or rule is a mistake, not a no-op."""
    known = {d.key for d in catalog.customer_types}
    for kind, rule in sorted(overrides.items()):
        if kind not in known:
            raise PluginError(
                "crmgraph settings",
                f"CRMGRAPH_DUPLICATE_RULES: unknown customer type {kind!r} "
                f"(types: {', '.join(sorted(known))})",
            )
        if rule not in DUPLICATE_RULES:
            raise PluginError(
                "crmgraph settings",
                f"CRMGRAPH_DUPLICATE_RULES: rule {rule!r} for {kind!r} must be one of "
                f"{', '.join(DUPLICATE_RULES)}",
            )
