"""The plan cache: query document (and operation name) -> plan, bounded (LRU).

A plan depends on the document and on the values of the variables that
``@skip``/``@include`` read, nothing else: the caller's row scope and every
argument are bound when the plan is rendered, never written into it. A
document that cannot be compiled is remembered too (as None), so it costs
one look-up, not a new attempt, per request.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from threading import Lock
from typing import Any

from crmgraph.compiled.plan import Plan

# plans kept per document for different @skip/@include variable values
PLANS_PER_DOCUMENT = 16


@dataclass
class DocumentPlans:
    directive_variables: tuple[str, ...]
    plans: OrderedDict[Hashable, Plan | None] = field(default_factory=OrderedDict)
    # Set once the whole request path (parsing, validation, limits, field
    # permissions, cost) has let the document through and one statement
    # answered it: the (type, field) pairs it selects, which field permissions
    # check for each caller. Until then the direct path leaves it alone.
    answered: frozenset[tuple[str, str]] | None = None


class PlanCache:
    def __init__(self, size: int = 1000) -> None:
        self.size = size
        self._documents: OrderedDict[tuple[str, str | None], DocumentPlans] = OrderedDict()
        self._lock = Lock()

    def document(
        self, key: tuple[str, str | None], make: Callable[[], DocumentPlans]
    ) -> DocumentPlans:
        with self._lock:
            found = self._documents.get(key)
            if found is not None:
                self._documents.move_to_end(key)
                return found
        made = make()
        with self._lock:
            self._documents[key] = made
            if len(self._documents) > self.size:
                self._documents.popitem(last=False)
        return made

    def peek(self, key: tuple[str, str | None]) -> DocumentPlans | None:
        """The document's plans if kept; never makes them."""
        with self._lock:
            found = self._documents.get(key)
            if found is not None:
                self._documents.move_to_end(key)
            return found

    @staticmethod
    def peek_plan(document: DocumentPlans, values: Hashable) -> Plan | None:
        """The plan kept for these directive values, None if none is (or it
        does not compile); never plans."""
        return document.plans.get(values)

    def plan(
        self, document: DocumentPlans, values: Hashable, make: Callable[[], Plan | None]
    ) -> Plan | None:
        with self._lock:
            if values in document.plans:
                document.plans.move_to_end(values)
                return document.plans[values]
        made = make()
        with self._lock:
            document.plans[values] = made
            if len(document.plans) > PLANS_PER_DOCUMENT:
                document.plans.popitem(last=False)
        return made

    def forget(self, document: DocumentPlans, values: Hashable) -> None:
        """A plan that failed to run is not tried again."""
        with self._lock:
            document.plans[values] = None

    def __len__(self) -> int:
        return len(self._documents)


class StatementCache:
    """(plan, caller's row scope, the request's variables) -> the rendered
    statement and its values, bounded (LRU): the same request again costs a
    look-up instead of rendering (most clients send a few documents with a few
    variable values)."""

    def __init__(self, size: int = 1000) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, tuple[Plan, str, list[Any]]] = OrderedDict()
        self._lock = Lock()

    def get(self, key: Hashable, plan: Plan) -> tuple[str, list[Any]] | None:
        with self._lock:
            found = self._items.get(key)
            if found is None or found[0] is not plan:  # a plan forgotten and made again
                return None
            self._items.move_to_end(key)
            return found[1], found[2]

    def put(self, key: Hashable, plan: Plan, sql: str, args: list[Any]) -> None:
        with self._lock:
            self._items[key] = (plan, sql, args)
            if len(self._items) > self.size:
                self._items.popitem(last=False)
