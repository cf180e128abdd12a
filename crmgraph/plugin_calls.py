"""Calling plugin hooks at run time, one implementation at a time.

pluggy aborts a whole hook call when one implementation raises and does not
say which; at run time we call each implementation ourselves so that a broken
plugin becomes a clean error naming it (the mutation's transaction rolls back
and the server keeps serving). Start-up hooks are called directly and fail loudly.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable
from typing import Any

import pluggy
from graphql import GraphQLError

logger = logging.getLogger("crmgraph.plugins")


class PluginFailure(GraphQLError):
    """A plugin raised while serving a request."""

    def __init__(self, plugin: str, where: str, error: BaseException) -> None:
        super().__init__(
            f"plugin {plugin!r} failed in {where}: {type(error).__name__}: {error}",
            extensions={"code": "PLUGIN_ERROR", "plugin": plugin},
        )
        self.plugin = plugin


async def await_me_maybe(value: Any) -> Any:
    """Hooks and guards may be plain or async functions (Datasette's habit)."""
    if inspect.isawaitable(value):
        return await value
    return value


async def call_guarded(plugin: str, where: str, function: Any, **kwargs: Any) -> Any:
    try:
        return await await_me_maybe(function(**kwargs))
    except PluginFailure:
        raise
    except Exception as exc:
        logger.exception("plugin %r failed in %s", plugin, where)
        raise PluginFailure(plugin, where, exc) from exc


async def call_each(
    pm: pluggy.PluginManager, hook_name: str, **kwargs: Any
) -> list[tuple[str, Any]]:
    """Call every implementation of ``hook_name`` in a stable order (by plugin
    name), passing each only the arguments it declares; return (plugin, result)."""
    hook = getattr(pm.hook, hook_name)
    impls = sorted(hook.get_hookimpls(), key=lambda impl: impl.plugin_name)
    results = []
    for impl in impls:
        args = {name: kwargs[name] for name in impl.argnames if name in kwargs}
        result = await call_guarded(impl.plugin_name, hook_name, impl.function, **args)
        results.append((impl.plugin_name, result))
    return results


def reasons(value: Iterable[str] | str | None) -> list[str]:
    """A guard's or validator's answer as a list of reasons (None/empty = pass)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    return [str(reason) for reason in value if reason]
