"""Field permissions, checked on the whole operation before it executes.

A query asking for a guarded field (``Employee.salary``, ``Contact.birthday``)
without the permission guarding it is refused as a whole, naming each field
and permission: no partial answers that differ by row, and no cost per
resolved value. The fields an operation touches are worked out once per
query text and kept (crmgraph.coordinates).
"""

from __future__ import annotations

from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from crmgraph.auth_changes import session_of
from crmgraph.coordinates import CoordinateCache


def forbidden_error(denied: list[tuple[str, str, str]]) -> GraphQLError:
    names = ", ".join(f"{t}.{f} (needs {p})" for t, f, p in denied)
    return GraphQLError(
        f"Your role may not read {names}; ask without these fields or use a key whose role "
        "holds the permission.",
        extensions={
            "code": "FORBIDDEN",
            "fields": [f"{t}.{f}" for t, f, _ in denied],
            "permissions": sorted({p for _, _, p in denied}),
        },
    )


class FieldPermissions(SchemaExtension):
    """Give strawberry ``functools.partial(FieldPermissions, cache)``.

    Over a WebSocket it also watches the connection's principal from its
    first operation on (:func:`crmgraph.auth_changes.session_of`): a revoked
    key's connection is closed, a changed role applies to what follows."""

    def __init__(self, cache: CoordinateCache) -> None:
        self.cache = cache

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        session = session_of(context.context)
        if session is not None and session.closed:
            raise revoked_error()
        access = getattr(context.context, "access", None)
        if access is not None and access.policy.guarded_fields and context.result is None:
            assert context.graphql_document is not None
            coordinates = self.cache.get(
                context.query or "", context.schema._schema, context.graphql_document
            )
            denied = access.denied_fields(set(coordinates))
            if denied:  # raised: refuses queries, mutations and subscriptions alike
                raise forbidden_error(denied)
        yield


def revoked_error() -> GraphQLError:
    return GraphQLError(
        "This connection's API key was revoked.", extensions={"code": "UNAUTHENTICATED"}
    )
