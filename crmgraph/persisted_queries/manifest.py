"""A trusted-documents manifest: the only documents the server runs.

Three formats are read, the ones client build tools write:

* GraphQL Codegen's client preset (``persisted-documents.json``) and Relay's
  persisted queries: one JSON object, ``{"<id>": "<document>"}``;
* Apollo's persisted query manifest: ``{"format":
  "apollo-persisted-query-manifest", "version": 1, "operations": [{"id",
  "name", "type", "body"}]}``.

A document is found by the id its tool gave it and by the SHA-256 of its text
(what an APQ client sends), whichever the tool used for ids. Every document
must parse as GraphQL: a manifest that cannot be used stops start-up with a
:class:`ManifestError` naming the file and what is wrong, rather than
refusing every request later.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from graphql import GraphQLError, parse

APOLLO_FORMAT = "apollo-persisted-query-manifest"
# the GraphQL-over-HTTP persisted documents proposal prefixes ids with their hash
ID_PREFIX = "sha256:"


class ManifestError(ValueError):
    """A trusted-documents manifest that cannot be used (start-up stops)."""


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Manifest:
    """The documents of one manifest, by id and by the SHA-256 of their text."""

    path: str
    documents: dict[str, str]  # id or sha256 -> document
    texts: frozenset[str]

    def document(self, document_id: str) -> str | None:
        return self.documents.get(document_id.removeprefix(ID_PREFIX))

    def allows(self, text: str) -> bool:
        """Whether ``text`` is a manifest document (its SHA-256 is in the
        manifest): the same test as the hash's, without hashing each request."""
        return text in self.texts


def load_manifest(path: str | Path) -> Manifest:
    """The manifest at ``path``; ManifestError naming the file and the problem."""
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ManifestError(f"trusted documents manifest {name}: cannot read it ({exc})") from exc
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ManifestError(f"trusted documents manifest {name}: not valid JSON ({exc})") from exc
    try:
        documents = dict(_index(_entries(data)))
    except ManifestError as exc:
        raise ManifestError(f"trusted documents manifest {name}: {exc}") from None
    if not documents:
        raise ManifestError(f"trusted documents manifest {name}: it holds no document")
    return Manifest(name, documents, frozenset(documents.values()))


def _entries(data: Any) -> Iterator[tuple[str, str]]:
    """(id, document) of each entry, in either shape."""
    if not isinstance(data, dict):
        raise ManifestError("expected a JSON object ({id: document} or Apollo's manifest)")
    if "format" in data and "operations" in data:
        yield from _apollo_entries(data)
        return
    for key, value in data.items():
        if not isinstance(value, str):
            raise ManifestError(f"the document of id {key!r} is not a string")
        yield key, value


def _apollo_entries(data: dict[str, Any]) -> Iterator[tuple[str, str]]:
    if data["format"] != APOLLO_FORMAT or data.get("version") != 1:
        raise ManifestError(
            f"unknown manifest format {data['format']!r} version {data.get('version')!r} "
            f"(expected {APOLLO_FORMAT!r} version 1)"
        )
    operations = data["operations"]
    if not isinstance(operations, list):
        raise ManifestError("'operations' is not a list")
    for number, operation in enumerate(operations):
        if not (
            isinstance(operation, dict)
            and isinstance(operation.get("id"), str)
            and isinstance(operation.get("body"), str)
        ):
            raise ManifestError(f"operations[{number}] needs a string 'id' and 'body'")
        yield operation["id"], operation["body"]


def _index(entries: Iterator[tuple[str, str]]) -> Iterator[tuple[str, str]]:
    """Each entry by its id and by its SHA-256; a document that does not
    parse, or an id given two documents, is refused."""
    seen: dict[str, str] = {}
    for document_id, text in entries:
        if seen.setdefault(document_id, text) != text:
            raise ManifestError(f"id {document_id!r} is given two different documents")
        try:
            parse(text)
        except GraphQLError as exc:
            problem = f"the document of id {document_id!r} does not parse: {exc.message}"
            raise ManifestError(problem) from None
        yield document_id.removeprefix(ID_PREFIX), text
        yield sha256_hex(text), text
