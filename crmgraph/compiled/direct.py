"""Answer a query the compiled path has answered before, straight from the HTTP request.

Once a document has gone the whole way (strawberry's parsing and validation
with the query limits, field permissions, the cost and the caller's budget)
and one statement answered it (:meth:`CompiledReads.answered`), what the same
document needs on the next request is known: the plan, the statement for the
caller's row scope and variables, the cost for those variables, and the fields
whose permissions to check (all three in the view's own caches). This ASGI
wrapper, around the GraphQL view and inside authentication, does exactly
those per-caller checks and runs the statement, without building a request
context, extension instances or an execution context (about three quarters
of the CPU a small compiled query spent in the server).

Whatever it does not already know it leaves to the view, with the body it
read handed on: a document not yet answered, new variables (a statement not
rendered for them yet), a caller whose scope has no statement yet, a field the
caller may not read, a cost over the limit, a budget that refuses (a refusal
spends nothing, so the view refuses again and says when to come back), a
statement that fails. The view's answer then teaches it the next one. What it
sends is what the view would have: the same ``data`` bytes and the same
``extensions`` (the statement count when ``CRMGRAPH_EXPOSE_SQL_COUNT`` is on,
then ``cost``), which ``tests/test_direct_reads.py`` checks against the view
for every role.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Hashable, MutableMapping
from dataclasses import dataclass
from typing import Any

import orjson

from crmgraph.access import Policy
from crmgraph.auth import ANONYMOUS, Principal
from crmgraph.body_limit import BodySizeLimit
from crmgraph.compiled.cache import DocumentPlans
from crmgraph.compiled.extension import (
    CompiledReads,
    constant_data,
    directive_values,
    fetch_json,
    statement_key,
)
from crmgraph.compiled.plan import Plan
from crmgraph.coordinates import CoordinateCache
from crmgraph.db.engine import Database, StatementCounter, current_counter
from crmgraph.db.replica import replica_reads, wants_primary
from crmgraph.idempotency import HEADER as IDEMPOTENCY_HEADER
from crmgraph.lru import LRU, MISSING
from crmgraph.observability.request_facts import note_cost, note_operation
from crmgraph.query_cost import CostCache, QueryCost, QueryLimits, cost_refusal, cost_results
from crmgraph.rate_limit import Charge, CostBudget

logger = logging.getLogger("crmgraph.compiled")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# debugging and tests: which path answered (only with CRMGRAPH_EXPOSE_SQL_COUNT)
ANSWERED_HEADER = b"x-crmgraph-answered"


# request bodies kept as known requests, and the longest kept (the memory they hold)
KNOWN_BODIES = 1000
MAX_KNOWN_BODY = 4096


@dataclass(frozen=True, slots=True)
class Known:
    """What every request with one body needs, whoever sends it: the plan
    (and where it is kept), the variables, the guarded fields it reads (each
    caller's permissions are checked against them), its cost, and the answer
    when it reads no data. Each is a function of the body alone."""

    entry: DocumentPlans
    values: Hashable
    plan: Plan
    variables: dict[str, Any]
    guarded: frozenset[tuple[str, str]]
    cost: QueryCost | None
    constant: bytes | None
    operation_name: str | None  # for the logs and metrics


@dataclass(frozen=True)
class Checks:
    """What the view's extensions check, shared with them: the cost cache
    and the field permissions' coordinates (filled by the view whenever
    some field is guarded)."""

    policy: Policy
    limits: QueryLimits
    costs: CostCache
    budget: CostBudget | None
    coordinates: CoordinateCache


class DirectReads:
    """``app`` is what answers otherwise: the body limit, idempotent
    requests, the GraphQL view. It stands outside the first two, so it takes
    only a body they would let through untouched: one declared no longer than
    ``max_body_bytes`` (0: no limit), without an ``Idempotency-Key``. The rest
    goes to ``app`` unread."""

    def __init__(
        self,
        app: ASGIApp,
        compiled: CompiledReads,
        checks: Checks,
        db: Database,
        expose_sql_count: bool = False,
        max_body_bytes: int = 0,
    ) -> None:
        self.app = app
        self.compiled = compiled
        self.checks = checks
        self.db = db
        self.expose_sql_count = expose_sql_count
        self.max_body_bytes = max_body_bytes
        self.known: LRU[bytes, Known] = LRU(KNOWN_BODIES)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope.get("method") != "POST"
            or not is_plain_json(scope, self.max_body_bytes)
        ):
            await self.app(scope, receive, send)
            return
        body = await read_body(receive, self.max_body_bytes)
        if body is None:
            return  # the client left
        oversized = 0 < self.max_body_bytes < len(body)
        answer = None if oversized else await self.answer(scope, body)
        if answer is None:
            await self.app(scope, BodySizeLimit.replay(body, receive), send)
            return
        headers = [
            (b"content-length", str(len(answer)).encode()),
            (b"content-type", b"application/json"),
        ]
        if self.expose_sql_count:
            headers.append((ANSWERED_HEADER, b"direct"))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    def learn(self, body: bytes) -> Known | None:
        """What a request with this body needs whoever sends it, if every
        per-document step has been taken for it already; None otherwise (the
        view answers, and takes them)."""
        request = parse_request(body)
        if request is None:
            return None
        query, operation_name, variables = request
        # the view keys its caches by the name strawberry gives the operation:
        # the request's, else the document's (a named query sent without one)
        operation_name = operation_name or document_operation_name(query)
        compiled, checks = self.compiled, self.checks
        entry = compiled.cache.peek((query, operation_name))
        if entry is None or not entry.answered:
            return None
        values = directive_values(entry, variables)
        plan = compiled.cache.peek_plan(entry, values)
        if plan is None or plan.partial:
            return None
        guarded: frozenset[tuple[str, str]] = frozenset()
        if checks.policy.guarded_fields:
            found = checks.coordinates.peek(query)
            if found is None:
                return None  # the view works them out
            guarded = frozenset(c for c in found if c in checks.policy.guarded_fields)
        cost_key = checks.costs.key(query, operation_name, variables)
        cost = MISSING if cost_key is None else checks.costs.peek(cost_key)
        if cost is MISSING or cost_refusal(cost, checks.limits) is not None:
            return None
        constant = constant_data(plan)
        return Known(entry, values, plan, variables, guarded, cost, constant, operation_name)

    def known_request(self, body: bytes) -> Known | None:
        """:meth:`learn`'s answer, kept per body (a client sends the same few
        bodies again and again) until the plan cache forgets its plan. Each of
        its parts is a function of the body, so it stays right when the caches
        it was read from let theirs go."""
        if len(body) > MAX_KNOWN_BODY:
            return self.learn(body)
        known = self.known.lookup(body)
        if known is MISSING or known.plan.forgotten:
            known = self.learn(body)
            if known is None:
                return None
            self.known.put(body, known)
        return known

    async def answer(self, scope: Scope, body: bytes) -> bytes | None:
        """The response body, or None to let the view answer."""
        known = self.known_request(body)
        if known is None:
            return None
        checks, plan = self.checks, known.plan
        principal: Principal = scope.get("state", {}).get("principal", ANONYMOUS)
        denied = known.guarded and checks.policy.access(principal).denied_fields(set(known.guarded))
        if denied:
            return None  # the view refuses, naming the fields
        statement = None
        if known.constant is None:
            access = checks.policy.access(principal)
            key = statement_key(plan, access.scope, known.variables)
            statement = None if key is None else self.compiled.statements.get(key, plan)
            if statement is None:
                return None  # rendered (and checked) by the view first
        cost = known.cost
        charge: Charge | None = None
        if checks.budget is not None and cost is not None:
            charge = await checks.budget.charge(
                getattr(principal, "key_prefix", None) or "anonymous", cost.requested
            )
            if not charge.allowed:
                return None
        statements = 0
        if statement is None:
            assert known.constant is not None
            data = orjson.Fragment(known.constant)
        else:
            counter = StatementCounter()
            token = current_counter.set(counter)
            try:
                with replica_reads(not wants_primary(scope.get("headers", ()))):
                    text = await fetch_json(self.db, self.compiled.dialect, *statement)
                data = orjson.Fragment(text)
            except Exception:
                logger.exception("compiled query failed; answering it with resolvers from now on")
                self.compiled.cache.forget(known.entry, known.values)
                return None
            finally:
                current_counter.reset(token)
            statements = counter.count
        note_operation(known.operation_name, "query", "direct")
        if cost is not None:
            note_cost(cost.requested)
        extensions: dict[str, Any] = {}
        if self.expose_sql_count:
            extensions["sqlStatements"] = statements
        extensions.update(cost_results(cost, checks.limits, charge))
        response: dict[str, Any] = {"data": data}
        if extensions:
            response["extensions"] = extensions
        return orjson.dumps(response)


# a named query's name, after any comments; a shorthand ``{ ... }`` has none
OPERATION_NAME = re.compile(r"(?:\s|,|#[^\n\r]*)*query\s+([_A-Za-z][_0-9A-Za-z]*)")


def document_operation_name(query: str) -> str | None:
    """The name of the (first) operation of a document the view has already
    parsed and answered, read without parsing it again."""
    found = OPERATION_NAME.match(query)
    return found.group(1) if found else None


def is_plain_json(scope: Scope, max_body_bytes: int = 0) -> bool:
    """A JSON body, and a client that wants one JSON answer (not a stream);
    with ``max_body_bytes``, a body declared no longer than that. Never one
    with an ``Idempotency-Key`` (crmgraph.idempotency records its answer)."""
    content_type = accept = b""
    length: bytes | None = None
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            content_type = value
        elif name == b"accept":
            accept = value
        elif name == b"content-length":
            length = value
        elif name == IDEMPOTENCY_HEADER:
            return False
    if max_body_bytes > 0 and not (
        length is not None and length.isdigit() and int(length) <= max_body_bytes
    ):
        return False  # the body limit reads it (and refuses it, or counts a chunked one)
    return content_type.lower().startswith(b"application/json") and not (
        b"multipart" in accept or b"event-stream" in accept
    )


async def read_body(receive: Receive, max_body_bytes: int = 0) -> bytes | None:
    """The whole body; None when the client left. Past ``max_body_bytes``
    (more than was declared) it stops reading: what it read is replayed to
    the body limit, which reads on and refuses it."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False) or (0 < max_body_bytes < size):
            return b"".join(chunks)


def parse_request(body: bytes) -> tuple[str, str | None, dict[str, Any]] | None:
    """(query, operation name, variables) of a single GraphQL request; None
    for anything else (a batch, a persisted-query id, malformed JSON), which
    the view answers, errors included."""
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(request, dict):
        return None
    query, operation_name = request.get("query"), request.get("operationName")
    variables = request.get("variables") or {}
    if (
        not isinstance(query, str)
        or not (operation_name is None or isinstance(operation_name, str))
        or not isinstance(variables, dict)
    ):
        return None
    return query, operation_name, variables
