"""A plugin's stable name: the key of its section in a personal data export
and the prefix of its counts in an erasure.

pluggy names a plugin by how it was loaded: the entry point's name
(``loyalty``) from an installed package, the module's name
(``crmgraph_loyalty.plugin``) from ``CRMGRAPH_PLUGINS`` or a test's plugin
list. Keys that outlive the process (an export a person keeps, the counts
stored with an erasure) must not depend on that, so they use, in order:

1. ``PLUGIN_NAME``, a string the plugin module declares;
2. the name of the ``crmgraph`` entry point that loads the module, if its
   package is installed;
3. the name it was registered under (a module outside any package: its
   module name).

Erasures stored before this rule keep the keys they were written with.
"""

from __future__ import annotations

import functools
from importlib.metadata import entry_points

import pluggy

ENTRY_POINT_GROUP = "crmgraph"


@functools.cache
def entry_point_names() -> dict[str, str]:
    """Module name -> entry point name, for the installed ``crmgraph`` entry
    points that name a module (read once: installing a package needs a restart)."""
    return {ep.value: ep.name for ep in entry_points(group=ENTRY_POINT_GROUP) if not ep.attr}


def stable_plugin_name(pm: pluggy.PluginManager, registered_name: str) -> str:
    """The plugin's name however it was loaded (see the module's docstring)."""
    plugin = pm.get_plugin(registered_name)
    declared = getattr(plugin, "PLUGIN_NAME", None)
    if isinstance(declared, str) and declared:
        return declared
    module_name = getattr(plugin, "__name__", None)
    if isinstance(module_name, str) and module_name in entry_point_names():
        return entry_point_names()[module_name]
    return registered_name
