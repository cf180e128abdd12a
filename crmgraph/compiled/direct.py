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
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import orjson

from crmgraph.access import Policy
from crmgraph.auth import ANONYMOUS, Principal
from crmgraph.body_limit import BodySizeLimit
from crmgraph.compiled.extension import (
    CompiledReads,
    constant_data,
    directive_values,
    fetch_json,
    statement_key,
)
from crmgraph.coordinates import CoordinateCache
from crmgraph.db.engine import Database, StatementCounter, current_counter
from crmgraph.lru import MISSING
from crmgraph.query_cost import CostCache, QueryLimits, cost_refusal, cost_results
from crmgraph.rate_limit import Charge, CostBudget

logger = logging.getLogger("crmgraph.compiled")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# debugging and tests: which path answered (only with CRMGRAPH_EXPOSE_SQL_COUNT)
ANSWERED_HEADER = b"x-crmgraph-answered"


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
    def __init__(
        self,
        app: ASGIApp,
        compiled: CompiledReads,
        checks: Checks,
        db: Database,
        expose_sql_count: bool = False,
    ) -> None:
        self.app = app
        self.compiled = compiled
        self.checks = checks
        self.db = db
        self.expose_sql_count = expose_sql_count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or not is_plain_json(scope):
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        if body is None:
            return  # the client left
        answer = await self.answer(scope, body)
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

    async def answer(self, scope: Scope, body: bytes) -> bytes | None:
        """The response body, or None to let the view answer."""
        request = parse_request(body)
        if request is None:
            return None
        query, operation_name, variables = request
        compiled, checks = self.compiled, self.checks
        entry = compiled.cache.peek((query, operation_name))
        if entry is None or not entry.answered:
            return None
        values = directive_values(entry, variables)
        plan = compiled.cache.peek_plan(entry, values)
        if plan is None or plan.partial:
            return None
        principal: Principal = scope.get("state", {}).get("principal", ANONYMOUS)
        access = checks.policy.access(principal)
        if checks.policy.guarded_fields:
            coordinates = checks.coordinates.peek(query)
            if coordinates is None or access.denied_fields(set(coordinates)):
                return None  # the view works them out, or refuses naming the fields
        cost_key = checks.costs.key(query, operation_name, variables)
        cost = MISSING if cost_key is None else checks.costs.peek(cost_key)
        if cost is MISSING or cost_refusal(cost, checks.limits) is not None:
            return None
        constant = constant_data(plan)
        statement = None
        if constant is None:
            key = statement_key(plan, access.scope, variables)
            statement = None if key is None else compiled.statements.get(key, plan)
            if statement is None:
                return None  # rendered (and checked) by the view first
        charge: Charge | None = None
        if checks.budget is not None and cost is not None:
            charge = await checks.budget.charge(
                getattr(principal, "key_prefix", None) or "anonymous", cost.requested
            )
            if not charge.allowed:
                return None
        counter = StatementCounter()
        if statement is None:
            assert constant is not None
            data = orjson.Fragment(constant)
        else:
            token = current_counter.set(counter)
            try:
                data = orjson.Fragment(await fetch_json(self.db, compiled.dialect, *statement))
            except Exception:
                logger.exception("compiled query failed; answering it with resolvers from now on")
                compiled.cache.forget(entry, values)
                return None
            finally:
                current_counter.reset(token)
        extensions: dict[str, Any] = {}
        if self.expose_sql_count:
            extensions["sqlStatements"] = counter.count
        extensions.update(cost_results(cost, checks.limits, charge))
        response: dict[str, Any] = {"data": data}
        if extensions:
            response["extensions"] = extensions
        return orjson.dumps(response)


def is_plain_json(scope: Scope) -> bool:
    """A JSON body, and a client that wants one JSON answer (not a stream)."""
    content_type = accept = b""
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            content_type = value
        elif name == b"accept":
            accept = value
    return content_type.lower().startswith(b"application/json") and not (
        b"multipart" in accept or b"event-stream" in accept
    )


async def read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
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
