"""The plan cache: query document (and operation name) -> plan, bounded (LRU).

A plan depends on the document and on the values of the variables that
``@skip``/``@include`` read, nothing else: the caller's row scope and every
argument are bound when the plan is rendered, never written into it. A
document that cannot be compiled is remembered too (as None), so it costs
one look-up, not a new attempt, per request.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from crmgraph.compiled.plan import Plan
from crmgraph.lru import LRU, MISSING

# plans kept per document for different @skip/@include variable values
PLANS_PER_DOCUMENT = 16


@dataclass
class DocumentPlans:
    directive_variables: tuple[str, ...]
    plans: LRU[Hashable, Plan | None] = field(default_factory=lambda: LRU(PLANS_PER_DOCUMENT))
    # Set once the whole request path (parsing, validation, limits, field
    # permissions, cost) has let the document through and one statement
    # answered it. Until then the direct path leaves it alone.
    answered: bool = False


class PlanCache:
    def __init__(self, size: int = 1000) -> None:
        self._documents: LRU[tuple[str, str | None], DocumentPlans] = LRU(size)

    def document(
        self, key: tuple[str, str | None], make: Callable[[], DocumentPlans]
    ) -> DocumentPlans:
        return self._documents.get_or_make(key, make)

    def peek(self, key: tuple[str, str | None]) -> DocumentPlans | None:
        """The document's plans if kept; never makes them."""
        found = self._documents.lookup(key)
        return None if found is MISSING else found

    @staticmethod
    def peek_plan(document: DocumentPlans, values: Hashable) -> Plan | None:
        """The plan kept for these directive values, None if none is (or it
        does not compile); never plans."""
        found = document.plans.lookup(values)
        return None if found is MISSING else found

    @staticmethod
    def plan(
        document: DocumentPlans, values: Hashable, make: Callable[[], Plan | None]
    ) -> Plan | None:
        return document.plans.get_or_make(values, make)

    @staticmethod
    def forget(document: DocumentPlans, values: Hashable) -> None:
        """A plan that failed to run is not tried again."""
        found = document.plans.lookup(values)
        if isinstance(found, Plan):
            found.forgotten = True
        document.plans.put(values, None)

    def __len__(self) -> int:
        return len(self._documents)


class StatementCache:
    """(plan, caller's row scope, the request's variables) -> the rendered
    statement and its values, bounded (LRU): the same request again costs a
    look-up instead of rendering (most clients send a few documents with a few
    variable values)."""

    def __init__(self, size: int = 1000) -> None:
        self._items: LRU[Hashable, tuple[Plan, str, list[Any]]] = LRU(size)

    def get(self, key: Hashable, plan: Plan) -> tuple[str, list[Any]] | None:
        found = self._items.lookup(key)
        if found is MISSING or found[0] is not plan:  # a plan forgotten and made again
            return None
        return found[1], found[2]

    def put(self, key: Hashable, plan: Plan, sql: str, args: list[Any]) -> None:
        self._items.put(key, (plan, sql, args))
