"""Schema extensions of our own."""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any

from strawberry.extensions import SchemaExtension
from strawberry.extensions.context import (
    ExecutingContextManager,
    ExtensionContextManagerBase,
    OperationContextManager,
    ParsingContextManager,
    ValidationContextManager,
    WrappedHook,
)
from strawberry.extensions.runner import SchemaExtensionsRunner

from crmgraph.db.engine import StatementCounter, current_counter


class SQLStatementCount(SchemaExtension):
    """Counts the SQL statements an operation runs and reports the number in
    ``extensions.sqlStatements`` (on when ``CRMGRAPH_EXPOSE_SQL_COUNT`` is set;
    tests assert on it, and it shows N+1 regressions in GraphiQL)."""

    def on_operation(self) -> Iterator[None]:
        self.counter = StatementCounter()
        token = current_counter.set(self.counter)
        try:
            yield
        finally:
            current_counter.reset(token)

    def get_results(self) -> dict[str, Any]:
        return {"sqlStatements": self.counter.count}


# Strawberry works out, for every extension of every request and each of the
# four phases, whether the class overrides the hook and what kind of function
# it is, then decorates the bound method with contextlib (functools.wraps
# each time): about a fifth of a `{ __typename }` request's CPU. The answer
# depends only on the class, so it is worked out once per (class, phase) here
# and a request only binds the ready-made context-manager factory to its
# instance. Entering and exiting the hooks, their order and the sync/async
# checks stay strawberry's own (ExtensionContextManagerBase).

HookFactory = Callable[
    [SchemaExtension], AbstractContextManager[None] | AbstractAsyncContextManager[None]
]
_class_hooks: dict[tuple[type, str], tuple[HookFactory, bool] | None] = {}


def class_hook(cls: type[SchemaExtension], name: str) -> tuple[HookFactory, bool] | None:
    """The context-manager factory for ``cls``'s hook ``name`` and whether it
    is async, or None when the class leaves the hook as SchemaExtension's."""
    key = (cls, name)
    if key not in _class_hooks:
        _class_hooks[key] = _make_class_hook(cls, name)
    return _class_hooks[key]


def _make_class_hook(cls: type[SchemaExtension], name: str) -> tuple[HookFactory, bool] | None:
    function = getattr(cls, name)
    if function is getattr(SchemaExtension, name):
        return None
    if inspect.isgeneratorfunction(function):
        return contextlib.contextmanager(function), False
    if inspect.isasyncgenfunction(function):
        return contextlib.asynccontextmanager(function), True
    if not callable(function):
        raise ValueError(f"Hook {name} on {cls} must be callable, received {function!r}")
    if inspect.iscoroutinefunction(function):

        @contextlib.asynccontextmanager
        async def awaited(extension: SchemaExtension) -> AsyncIterator[None]:
            await function(extension)
            yield

        return awaited, True

    @contextlib.contextmanager
    def called(extension: SchemaExtension) -> Iterator[None]:
        function(extension)
        yield

    return called, False


class _CachedHooks(ExtensionContextManagerBase):
    def __init__(self, extensions: list[SchemaExtension]) -> None:
        self.hooks = []
        for extension in extensions:
            found = class_hook(type(extension), self.HOOK_NAME)
            if found is not None:
                factory, is_async = found
                self.hooks.append(
                    WrappedHook(extension, functools.partial(factory, extension), is_async)
                )


class _Operation(_CachedHooks, OperationContextManager):
    pass


class _Parsing(_CachedHooks, ParsingContextManager):
    pass


class _Validation(_CachedHooks, ValidationContextManager):
    pass


class _Executing(_CachedHooks, ExecutingContextManager):
    pass


class CachedHooksRunner(SchemaExtensionsRunner):
    """Strawberry's runner with the hooks of each extension class looked up
    once per process (streamed results keep strawberry's own lookup)."""

    def operation(self) -> OperationContextManager:
        return _Operation(self.extensions)

    def parsing(self) -> ParsingContextManager:
        return _Parsing(self.extensions)

    def validation(self) -> ValidationContextManager:
        return _Validation(self.extensions)

    def executing(self) -> ExecutingContextManager:
        return _Executing(self.extensions)
