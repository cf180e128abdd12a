"""Trusted-documents mode in the view: a document not in the manifest does not run.

Here rather than in the HTTP layer that resolves ids: every transport reaches
the view (a POST, a GET, a multipart upload, a WebSocket subscription), and
the direct read path only answers documents the view has answered before, so
one check here covers them all.

It refuses as execution starts, by raising (as the field permissions and
the cost limit do): strawberry answers a query, a mutation and a
subscription alike with that error. Earlier hooks would not do: one that
raises as parsing or validation starts escapes a subscription's handling,
and one that raises as the operation starts leaves the operation hooks
entered before it open. So a document outside the manifest is parsed and
validated first (within the query limits; a repeated one comes from the
parser and validation caches): one that does not parse or validate gets
those errors instead.
"""

from __future__ import annotations

from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from crmgraph.observability import request_facts
from crmgraph.persisted_queries.manifest import Manifest

NOT_ALLOWED = "PERSISTED_QUERY_NOT_ALLOWED"


NOT_ALLOWED_MESSAGE = (
    "trusted documents only: this server runs only the documents of its manifest; "
    "send one by its id (documentId) or its exact text"
)


class TrustedDocumentsOnly(SchemaExtension):
    """Give strawberry ``functools.partial(TrustedDocumentsOnly, manifest)``."""

    def __init__(self, manifest: Manifest) -> None:
        self.manifest = manifest

    def on_execute(self) -> Iterator[None]:
        query = self.execution_context.query
        if query is not None and not self.manifest.allows(query):
            request_facts.note_refusal(NOT_ALLOWED)
            raise GraphQLError(NOT_ALLOWED_MESSAGE, extensions={"code": NOT_ALLOWED})
        yield
