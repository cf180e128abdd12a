"""The error a broken plugin raises at start-up: part of the plugin contract, on
the ground floor so that every layer (the catalog, the migrations of plugin
apps, the schema builder) can name the plugin at fault."""

from __future__ import annotations


class PluginError(RuntimeError):
    """A plugin is broken; the message names it and says what is wrong."""

    def __init__(self, plugin: str, message: str) -> None:
        super().__init__(f"plugin {plugin!r}: {message}")
        self.plugin = plugin
