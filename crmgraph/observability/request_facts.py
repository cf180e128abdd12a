"""The facts of one HTTP request, gathered while it runs and read when it ends.

The outermost ASGI layer opens a :class:`RequestFacts` for each request; code
deeper in (the direct read path, the GraphQL extensions, the rate limiter)
records what only it knows: the operation's name, its cost, which path
answered it, why it was refused. When the request ends, every observer (the
access log, the metrics, the request's span) reads the same facts, so they
cannot disagree about a request. Outside a request (CLI, background loops)
:func:`current` returns ``None`` and recording is a no-op.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# "direct": the compiled fast path answered straight from the HTTP request;
# "full": strawberry and graphql-core ran; "none": no GraphQL (GET /healthz, ...)
ANSWER_PATHS = ("direct", "full", "none")


@dataclass
class RequestFacts:
    request_id: str
    method: str
    path: str
    started: float = field(default_factory=time.perf_counter)
    operation_name: str | None = None
    operation_type: str | None = None  # "query", "mutation", "subscription"
    answered_by: str = "none"
    cost: int | None = None
    # the refusal's error code (RATE_LIMITED, QUERY_TOO_COMPLEX, FORBIDDEN, ...)
    refusal: str | None = None
    # "ok", "errors" (a GraphQL answer with errors), "refused", "failed" (5xx)
    outcome: str = "ok"
    status: int | None = None
    # who called: the API key's prefix (its public half) or "anonymous";
    # never a secret. None: no caller was authenticated (a probe, a refusal)
    principal: str | None = None

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started


_current: contextvars.ContextVar[RequestFacts | None] = contextvars.ContextVar(
    "crmgraph_request_facts", default=None
)

# called with each request's facts once it has ended (its response sent)
Observer = Callable[[RequestFacts], None]


def current() -> RequestFacts | None:
    return _current.get()


def begin(facts: RequestFacts) -> contextvars.Token[RequestFacts | None]:
    return _current.set(facts)


def end(token: contextvars.Token[RequestFacts | None]) -> None:
    _current.reset(token)


def note_operation(name: str | None, operation_type: str | None, answered_by: str) -> None:
    facts = _current.get()
    if facts is not None:
        facts.operation_name = name
        facts.operation_type = operation_type
        facts.answered_by = answered_by


def note_principal(principal: str) -> None:
    facts = _current.get()
    if facts is not None:
        facts.principal = principal


def note_cost(cost: int) -> None:
    facts = _current.get()
    if facts is not None:
        facts.cost = cost


def note_refusal(code: str) -> None:
    facts = _current.get()
    if facts is not None and facts.refusal is None:
        facts.refusal = code
        facts.outcome = "refused"
