"""Abuse limits on GraphQL operations: depth, aliases, tokens and a calculated cost.

Everything here is decided before a resolver runs: tokens while parsing, depth,
aliases and introspection while validating, and the cost just before execution
(it needs the variables, which validation does not see). A refused operation
therefore never reaches the database.

The cost is the number of objects a response can hold at most, in the spirit of
GitHub's node limit and Shopify's calculated cost: every object field counts
once per parent instance, a connection's page (``edges``/``nodes``) counts
``first`` items, a plain list counts a fixed estimate, and nested connections
multiply. It is reported in ``extensions.cost`` so clients can see how close
they are to the limit before they hit it.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSyntaxError,
    InlineFragmentNode,
    Node,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)
from graphql.validation import NoSchemaIntrospectionCustomRule, OverlappingFieldsCanBeMergedRule
from graphql.validation.validate import ValidationAbortedError
from strawberry.extensions import SchemaExtension

from crmgraph.observability import request_facts
from crmgraph.query_cost import (
    CostCache,
    QueryCost,
    QueryLimits,
    cost_refusal,
    cost_results,
    limit_error,
    query_cost,
)
from crmgraph.rate_limit import Charge, CostBudget
from crmgraph.schema.error_masking import MaskUnexpectedErrors

# graphql-core's did_you_mean() appends " Did you mean 'a', 'b', or 'c'?" to a
# message; names cannot contain '?', so the first '?' ends the suggestion.
SUGGESTION = re.compile(r" Did you mean [^?]*\?")
TOKEN_LIMIT_MESSAGE = "tokens. Parsing aborted."

# The codes of errors that refuse a request rather than answer it: each is
# noted in the request's facts (crmgraph.observability.request_facts), which
# the metrics count by code. Any other code (BAD_USER_INPUT, NOT_FOUND, ...)
# is an answer with errors.
REFUSAL_CODES = frozenset(
    {
        "QUERY_TOO_DEEP",
        "TOO_MANY_ALIASES",
        "QUERY_TOO_LARGE",
        "QUERY_TOO_COMPLEX",
        "TOO_MANY_TOKENS",
        "INTROSPECTION_DISABLED",
        "QUERY_TOO_EXPENSIVE",
        "RATE_LIMITED",
        "FORBIDDEN",
        "UNAUTHENTICATED",
        "PERSISTED_QUERY_NOT_ALLOWED",  # crmgraph.persisted_queries: not a trusted document
    }
)


# ---------------------------------------------------------------------------
# Validation rules: the size of a document (depth, aliases, selections), introspection


@dataclass(frozen=True)
class DocumentSize:
    """How big an operation is with its fragments spread as written (each
    spread counted in full, as a naive walker would expand it).

    ``depth``: the level of the deepest field (root fields are level 0; the
    selections of ``__schema``/``__type`` are not counted, as strawberry's
    depth limiter does not); ``aliases``: aliased fields; ``selections``:
    field selections; ``repeats``: pairs of fields written in one selection
    set under one response name, which graphql-core's overlapping-fields rule
    compares pairwise; ``visited``: selection nodes this measure visited,
    which is at most the number the document holds, whatever it expands to."""

    depth: int = -1
    aliases: int = 0
    selections: int = 0
    repeats: int = 0
    visited: int = 0


class _SizeWalker:
    """Measures each fragment once and reuses the measure at every spread.

    A fragment that spreads another twice doubles its size but not the work:
    ``fragment Fi { ...F(i-1) ...F(i-1) }`` 29 levels deep is 2^30 field
    selections measured in 60 steps. Iterative, so neither a long chain of
    fragments nor deep nesting reaches Python's recursion limit. A fragment in
    a cycle, or an unknown one, measures nothing: validation refuses them."""

    def __init__(self, document: DocumentNode) -> None:
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.measured: dict[str, DocumentSize] = {}
        self.visited = 0

    def operation(self, operation: OperationDefinitionNode) -> DocumentSize:
        for name in self.spread_order(operation.selection_set):
            self.measured[name] = self.body(self.fragments[name].selection_set)
        size = self.body(operation.selection_set)
        return DocumentSize(size.depth, size.aliases, size.selections, size.repeats, self.visited)

    def spread_order(self, root: SelectionSetNode) -> list[str]:
        """The fragments ``root`` reaches that are not measured yet, each
        after those it spreads (a depth-first post-order, kept on a stack)."""
        order: list[str] = []
        state: dict[str, bool] = {}  # False: being walked; True: placed in order
        stack: list[tuple[str | None, Iterator[str]]] = [(None, self.spreads(root))]
        while stack:
            name, pending = stack[-1]
            child = next(pending, None)
            if child is None:
                stack.pop()
                if name is not None:
                    state[name] = True
                    order.append(name)
                continue
            if child in state or child in self.measured or child not in self.fragments:
                continue  # done, a cycle (being walked), or unknown
            state[child] = False
            stack.append((child, self.spreads(self.fragments[child].selection_set)))
        return order

    def spreads(self, root: SelectionSetNode) -> Iterator[str]:
        """Names of the fragments spread anywhere below ``root`` (not through them)."""
        sets = [root]
        while sets:
            for selection in sets.pop().selections:
                if isinstance(selection, FragmentSpreadNode):
                    yield selection.name.value
                elif selection.selection_set is not None:  # a field or an inline fragment
                    sets.append(selection.selection_set)

    def body(self, root: SelectionSetNode) -> DocumentSize:
        """One selection set, with the fragments it spreads already measured."""
        depth, aliases, selections, repeats = -1, 0, 0, 0
        # (selection set, level of its fields); level None below introspection
        sets: list[tuple[SelectionSetNode, int | None]] = [(root, 0)]
        while sets:
            selection_set, level = sets.pop()
            seen: dict[str, int] = {}  # response name -> fields so far in this set
            for selection in selection_set.selections:
                self.visited += 1
                if isinstance(selection, FieldNode):
                    key = (selection.alias or selection.name).value
                    repeats += seen.get(key, 0)
                    seen[key] = seen.get(key, 0) + 1
                    selections += 1
                    aliases += selection.alias is not None
                    if level is not None:
                        depth = max(depth, level)
                    if selection.selection_set is not None:
                        below = None if level is None or is_introspection(selection) else level + 1
                        sets.append((selection.selection_set, below))
                elif isinstance(selection, InlineFragmentNode):
                    sets.append((selection.selection_set, level))
                elif isinstance(selection, FragmentSpreadNode):
                    spread = self.measured.get(selection.name.value)
                    if spread is None:
                        continue
                    aliases += spread.aliases
                    selections += spread.selections
                    repeats += spread.repeats
                    if level is not None and spread.depth >= 0:
                        depth = max(depth, level + spread.depth)
        return DocumentSize(depth, aliases, selections, repeats)


def is_introspection(field: FieldNode) -> bool:
    return field.name.value.startswith("__")


def document_sizes(document: DocumentNode) -> list[tuple[OperationDefinitionNode, DocumentSize]]:
    """The size of each operation of ``document`` (fragments measured once for all)."""
    walker = _SizeWalker(document)
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    return [(operation, walker.operation(operation)) for operation in operations]


class DocumentRefused(ValidationAbortedError):
    """A document too big to walk: raised as validation starts its visit, so
    it is the one error the document gets and no other rule walks it."""


def size_refusal(
    sizes: list[tuple[OperationDefinitionNode, DocumentSize]], limits: QueryLimits
) -> DocumentRefused | None:
    """The first limit an operation of the document breaks (depth, aliases,
    then selections), if any."""
    for operation, size in sizes:
        if 0 < limits.max_depth < size.depth:
            return DocumentRefused(
                f"Query is nested deeper than the maximum of {limits.max_depth} levels.",
                operation,
                extensions={"code": "QUERY_TOO_DEEP", "maxDepth": limits.max_depth},
            )
        if 0 < limits.max_aliases < size.aliases:
            return DocumentRefused(
                f"Query uses {size.aliases} aliases; at most {limits.max_aliases} are allowed.",
                operation,
                extensions={
                    "code": "TOO_MANY_ALIASES",
                    "aliases": size.aliases,
                    "maxAliases": limits.max_aliases,
                },
            )
        if 0 < limits.max_selections < size.selections:
            return DocumentRefused(
                f"Query expands to {size.selections} field selections once its fragments "
                f"are spread; at most {limits.max_selections} are allowed: spread a "
                "fragment once where it is needed rather than nesting spreads of spreads.",
                operation,
                extensions={
                    "code": "QUERY_TOO_LARGE",
                    "selections": size.selections,
                    "maxSelections": limits.max_selections,
                },
            )
        if 0 < limits.max_field_comparisons < size.repeats:
            return query_too_complex(limits.max_field_comparisons, operation)
    return None


def size_rule(limits: QueryLimits) -> type[ValidationRule]:
    """Depth, aliases and expanded size, from one linear measure of the document."""

    class DocumentSizeRule(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.refusal = size_refusal(document_sizes(context.document), limits)

        def enter_document(self, *_: object) -> None:
            if self.refusal is not None:
                raise self.refusal

    return DocumentSizeRule


class NoIntrospectionRule(NoSchemaIntrospectionCustomRule):
    """graphql-core's rule (``__schema``/``__type`` refused, ``__typename``
    still allowed), with a code clients can test for, once per document (the
    rule itself reports every field of an introspection type)."""

    reported = False

    def report_error(self, error: GraphQLError) -> None:
        if self.reported:
            return
        self.reported = True
        super().report_error(
            GraphQLError(
                "Introspection is disabled on this server.",
                error.nodes,
                extensions={"code": "INTROSPECTION_DISABLED"},
            )
        )


@functools.cache
def validation_rules(limits: QueryLimits) -> tuple[type[ValidationRule], ...]:
    """Built once per limits, so the same classes reach the ValidationCache."""
    rules: list[type[ValidationRule]] = []
    if max(limits.max_depth, limits.max_aliases, limits.max_selections) > 0:
        rules.append(size_rule(limits))
    if not limits.introspection:
        rules.append(NoIntrospectionRule)
    return tuple(rules)


@functools.cache
def bounded_overlap_rule(budget: int) -> type[ValidationRule]:
    """graphql-core's OverlappingFieldsCanBeMergedRule with a smaller work
    budget than its default (500,000 units, seconds of CPU): it compares every
    pair of fields that share a response name, so 300 copies of
    ``customers { nodes { id } } `` (within every other limit) cost 400,000
    units. Realistic documents spend under 100; past the budget graphql-core
    aborts validation, which :func:`too_complex` words for the client."""

    class BoundedOverlappingFieldsRule(OverlappingFieldsCanBeMergedRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.rule_context.remaining_complexity_budget = budget

    return BoundedOverlappingFieldsRule


@functools.cache
def operation_rules(
    limits: QueryLimits, rules: tuple[type[ValidationRule], ...]
) -> tuple[type[ValidationRule], ...]:
    """``rules`` (strawberry's, the specified ones) with ours first, so a
    document refused for its size is walked by no other rule, and the overlap
    rule bounded. The same tuple for the same input: the ValidationCache keys on it."""
    if limits.max_field_comparisons <= 0:
        return (*validation_rules(limits), *rules)
    overlap = bounded_overlap_rule(limits.max_field_comparisons)
    bounded = (overlap if rule is OverlappingFieldsCanBeMergedRule else rule for rule in rules)
    return (*validation_rules(limits), *bounded)


# ---------------------------------------------------------------------------
# The extensions


def strip_suggestions(error: GraphQLError) -> GraphQLError:
    message = SUGGESTION.sub("", error.message)
    if message == error.message:
        return error
    return GraphQLError(
        message,
        error.nodes,
        error.source,
        error.positions,
        error.path,
        error.original_error,
        error.extensions,
    )


def too_many_tokens(error: GraphQLError, max_tokens: int) -> GraphQLError:
    if not isinstance(error, GraphQLSyntaxError) or TOKEN_LIMIT_MESSAGE not in error.message:
        return error
    return GraphQLError(
        f"Query has more than {max_tokens} tokens.",
        error.nodes,
        error.source,
        error.positions,
        extensions={"code": "TOO_MANY_TOKENS", "maxTokens": max_tokens},
    )


def too_complex(error: GraphQLError, budget: int) -> GraphQLError:
    """graphql-core's bare "Validation aborted." (its work budget ran out, or
    fragments nested past the recursion limit), said with a code."""
    if type(error) is not ValidationAbortedError or error.message != "Validation aborted.":
        return error
    return query_too_complex(budget)


def query_too_complex(budget: int, *nodes: Node) -> DocumentRefused:
    return DocumentRefused(
        "Query is too complex to validate: it repeats fields under one response name "
        "too often (or nests fragments too deeply); ask for each field once.",
        list(nodes) or None,
        extensions={"code": "QUERY_TOO_COMPLEX", "maxFieldComparisons": budget},
    )


class QueryLimitsExtension(SchemaExtension):
    """Adds the validation rules, refuses an operation whose cost is above the
    limit before it executes, and reports the cost in ``extensions.cost``.

    It also sets the parser's token limit (what strawberry's MaxTokensLimiter
    does, without a second extension's per-request hooks).

    Give strawberry a factory (``functools.partial(QueryLimitsExtension, limits)``):
    it builds one instance per request."""

    def __init__(
        self,
        limits: QueryLimits | None = None,
        budget: CostBudget | None = None,
        costs: CostCache | None = None,
    ) -> None:
        self.limits = limits or QueryLimits()
        self.budget = budget
        self.costs = costs
        self.cost: QueryCost | None = None
        self.charge: Charge | None = None

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        if self.limits.max_tokens > 0:
            context.parse_options["max_tokens"] = self.limits.max_tokens
        context.validation_rules = operation_rules(self.limits, tuple(context.validation_rules))
        try:
            yield
        except GraphQLSyntaxError as error:
            # ParserCache parses inside its own hook, so a token-limit error
            # escapes as an exception instead of landing in the result.
            raise note_refusal(self.rewrite(error)) from None
        except GraphQLError as error:  # raised by on_execute: cost, budget, field permissions
            raise note_refusal(error) from None
        finally:
            note_operation(context)
        result = context.result
        if result is not None and getattr(result, "errors", None):
            # a new list: the old one may be the ValidationCache's cached list
            result.errors = [note_refusal(self.rewrite(e)) for e in result.errors]

    def rewrite(self, error: GraphQLError) -> GraphQLError:
        error = too_many_tokens(error, self.limits.max_tokens)
        error = too_complex(error, self.limits.max_field_comparisons)
        if not self.limits.introspection:
            # suggestions name fields introspection would have shown
            error = strip_suggestions(error)
        return error

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context
        assert context.graphql_document is not None
        if context.result is not None:  # an earlier extension set the result: nothing to cost
            yield
            return
        document = context.graphql_document

        def compute() -> QueryCost | None:
            return query_cost(
                context.schema._schema,
                document,
                context.variables,
                context.operation_name,
                self.limits,
            )

        costs, key = self.costs, None
        if costs is not None and context.query is not None:
            key = costs.key(context.query, context.operation_name, context.variables)
        self.cost = compute() if costs is None or key is None else costs.get(key, compute)
        if self.cost is not None:
            request_facts.note_cost(self.cost.requested)
        error = self.refusal()
        if error is None and self.cost is not None and self.budget is not None:
            error = await self.spend(self.budget, self.cost.requested)
        if error is not None:
            # Raised, not set as the context's result: strawberry answers a
            # query or mutation with the error (no data, extensions kept) and
            # ends a subscription with it, so one check refuses all three
            # alike. A result set beforehand skips a query's execution but
            # not a subscription's, which is how subscriptions escaped it.
            raise error
        yield

    def refusal(self) -> GraphQLError | None:
        return cost_refusal(self.cost, self.limits)

    async def spend(self, budget: CostBudget, cost: int) -> GraphQLError | None:
        """Charge the caller's key; a refusal says when to come back (also in
        the Retry-After header)."""
        context = self.execution_context.context
        principal = getattr(context, "principal", None)
        key = getattr(principal, "key_prefix", None) or "anonymous"
        self.charge = await budget.charge(key, cost)
        if self.charge.allowed:
            return None
        if is_http(context):  # a WebSocket has no response headers to add to
            context.response.headers["Retry-After"] = str(self.charge.retry_after)
        return limit_error(
            f"Rate limit: this API key may spend {budget.limit} cost points per "
            f"{budget.window_seconds} s and has {self.charge.remaining} left; this query "
            f"costs {cost}. Retry after {self.charge.retry_after} s.",
            "RATE_LIMITED",
            cost=cost,
            limit=budget.limit,
            remaining=self.charge.remaining,
            windowSeconds=budget.window_seconds,
            retryAfterSeconds=self.charge.retry_after,
        )

    def get_results(self) -> dict[str, Any]:
        return cost_results(self.cost, self.limits, self.charge)


def note_refusal(error: GraphQLError) -> GraphQLError:
    """Notes ``error``'s code in the request's facts if it refuses the request.

    Here, where every operation's errors pass (validation's, those raised
    before execution, a resolver's FORBIDDEN), rather than where each is made:
    a document refused once is refused again from the ValidationCache, where
    no rule runs. On the direct path a refusal never happens: it hands what
    it would refuse to the view, which refuses it here."""
    code = (error.extensions or {}).get("code")
    if code in REFUSAL_CODES:
        request_facts.note_refusal(code)
    return error


def note_operation(context: Any) -> None:
    """Notes, in the request's facts, the operation the full path ran (or
    refused): its name, its type when the document names one, and whether
    its answer has errors."""
    facts = request_facts.current()
    if facts is None:
        return
    kind = None
    if context.graphql_document is not None:
        # RuntimeError: no such operation in the document (graphql-core says so)
        with contextlib.suppress(RuntimeError):
            kind = context.operation_type.value
    request_facts.note_operation(context.operation_name, kind, "full")
    result = context.result
    if result is not None and getattr(result, "errors", None) and facts.outcome == "ok":
        facts.outcome = "errors"


def is_http(context: Any) -> bool:
    request = getattr(context, "request", None)
    return (
        getattr(context, "response", None) is not None
        and getattr(request, "scope", {}).get("type") == "http"
    )


def limit_extensions(
    settings: Any, budget: CostBudget | None = None, costs: CostCache | None = None
) -> list[Callable[[], SchemaExtension]]:
    """The extension factories to add to ``build_schema``'s extensions;
    ``costs``: the app's cost cache, when something else reads it too."""
    limits = QueryLimits.from_settings(settings)
    found: list[Callable[[], SchemaExtension]] = [
        functools.partial(QueryLimitsExtension, limits, budget, costs or CostCache())
    ]
    if getattr(settings, "mask_errors", True):
        found.append(MaskUnexpectedErrors)
    return found
