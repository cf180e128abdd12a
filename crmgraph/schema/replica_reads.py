"""Let an HTTP query operation read from the replica (crmgraph.db.replica has the rule).

On only with ``CRMGRAPH_DATABASE_READ_URL``, and first among the extensions,
so the compiled reads' extension (last) runs inside it. A mutation, a
subscription (WebSocket) or a query asking for the primary with
``X-CRMGraph-Read: primary`` runs without it: every read goes to the primary.
"""

from __future__ import annotations

from collections.abc import Iterator

from graphql import OperationType
from graphql.utilities import get_operation_ast
from strawberry.extensions import SchemaExtension

from crmgraph.db.replica import replica_reads, wants_primary


class ReplicaReads(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        with replica_reads(self._allowed()):
            yield

    def _allowed(self) -> bool:
        context = self.execution_context
        request = getattr(context.context, "request", None)
        scope = getattr(request, "scope", None) or {}
        if scope.get("type") != "http" or wants_primary(scope.get("headers", ())):
            return False
        document = context.graphql_document
        if document is None:
            return False
        operation = get_operation_ast(document, context.operation_name)
        return operation is not None and operation.operation is OperationType.QUERY
