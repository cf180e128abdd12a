"""Which fields an operation selects: the (parent type, field) pairs of a
GraphQL document, worked out once per query text and kept. The field
permissions (crmgraph.schema.permissions) check them before executing; the
direct reads (crmgraph.compiled.direct) look up the ones already worked out."""

from __future__ import annotations

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLSchema,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    visit,
)

from crmgraph.lru import LRU, MISSING

Coordinates = frozenset[tuple[str, str]]


def field_coordinates(schema: GraphQLSchema, document: DocumentNode) -> Coordinates:
    """(parent type, field) of every field selected anywhere in the document."""
    found: set[tuple[str, str]] = set()
    type_info = TypeInfo(schema)

    class Collect(Visitor):
        def enter_field(self, node: FieldNode, *_: object) -> None:
            parent = type_info.get_parent_type()
            if parent is not None:
                found.add((parent.name, node.name.value))

    visit(document, TypeInfoVisitor(type_info, Collect()))
    return frozenset(found)


class CoordinateCache:
    """Query text -> coordinates, bounded, shared by every request of an app."""

    def __init__(self, size: int = 1000) -> None:
        self._items: LRU[str, Coordinates] = LRU(size)

    def get(self, query: str, schema: GraphQLSchema, document: DocumentNode) -> Coordinates:
        return self._items.get_or_make(query, lambda: field_coordinates(schema, document))

    def peek(self, query: str) -> Coordinates | None:
        """The coordinates kept for ``query``, None if none are; never walks."""
        found = self._items.lookup(query)
        return None if found is MISSING else found
