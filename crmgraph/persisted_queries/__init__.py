"""Persisted queries: Apollo's automatic persisted queries and trusted documents.

A client may send a document's SHA-256 instead of its text (Apollo's APQ:
``extensions.persistedQuery``), or, with a trusted-documents manifest, the id
a build step gave it (``documentId``, Relay's ``doc_id``). One ASGI layer
(:mod:`.resolve`), inside authentication and outside the direct read path,
turns such a request into the ordinary one that carries the text, so
everything after it (the direct reads above all) sees a plain GraphQL
request. Where the texts are kept: :mod:`.store` (APQ) and :mod:`.manifest`
(trusted documents); :mod:`.trusted` refuses any other document in the view,
where every transport (POST, GET, multipart, WebSocket) passes.

No library: Apollo's protocol is a dozen lines of JSON handling, and the
Python GraphQL servers' APQ support lives inside their own views, after the
point where crmgraph's direct reads answer.
"""

from __future__ import annotations

from crmgraph.persisted_queries.manifest import Manifest, ManifestError, load_manifest
from crmgraph.persisted_queries.resolve import PersistedQueries
from crmgraph.persisted_queries.store import DocumentStore
from crmgraph.persisted_queries.trusted import TrustedDocumentsOnly

__all__ = [
    "DocumentStore",
    "Manifest",
    "ManifestError",
    "PersistedQueries",
    "TrustedDocumentsOnly",
    "load_manifest",
]
