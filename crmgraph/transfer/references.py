"""Stable references: how the rows of an export name the same record across
its files, and across imports.

Every exported row carries ``ref``: ``<origin>/<global ID>``, where the
origin is a random name this database takes at its first export (kept in
``transfer_origin``, migration 0029). A global ID means something only in
its own database; prefixed with the origin it names one record anywhere.
Contacts, interactions and needs name their customer by ``customer.ref``,
interactions their contact by ``contact.ref``.

An import remembers the ref each record came with (``transfer_ref``), and a
ref of a file from elsewhere may be anything that names a record in the
system it came from (a column of another CRM mapped to ``ref``). So:

- a ref the import has seen names the record it made (or the customer the
  row was found to repeat): rows of other files find it, and the same file
  imported again creates nothing;
- a ref of this database's own origin names its own record by the global ID
  (an export imported back where it came from);
- any other ref is unknown: a customer row then falls back to the duplicate
  matcher (e-mail, phone, tax id), a contact or interaction row naming its
  customer to ``customer.email`` / ``customer.tax_id``. Its ``customer``
  global ID is then another database's ID and is not used.

Two records of one origin with different refs are two records: an import
never folds them together, whatever they share (that origin's word on
which rows are one party is taken).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from crmgraph.db.engine import Database
from crmgraph.db.queries import Where
from crmgraph.ids import InvalidId, decode_id, encode_id

REF = "ref"
SEPARATOR = "/"
PER_STATEMENT = 300
TABLES = {
    "Customer": "customer",
    "Contact": "contact",
    "Interaction": "interaction",
    "Need": "need",
}


async def own_origin(db: Database) -> str:
    """This database's origin, made (once, whoever asks first) when missing."""
    origin = await known_origin(db)
    if origin is not None:
        return origin
    await db.fetch(
        "INSERT INTO transfer_origin (singleton, origin) VALUES (1, {}) "
        "ON CONFLICT (singleton) DO NOTHING",
        uuid.uuid4().hex,
    )
    return str(await known_origin(db))  # ours, or the one a concurrent export made first


async def known_origin(db: Database) -> str | None:
    """This database's origin if it has exported anything (an import only reads it)."""
    rows = await db.fetch("SELECT origin FROM transfer_origin WHERE singleton = 1")
    return str(rows[0]["origin"]) if rows else None


def make_ref(origin: str, type_name: str, pk: int) -> str:
    return f"{origin}{SEPARATOR}{encode_id(type_name, pk)}"


def chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    """``values`` in runs of :data:`PER_STATEMENT`, one statement each."""
    return (values[start : start + PER_STATEMENT] for start in range(0, len(values), PER_STATEMENT))


def origin_of(ref: str) -> str:
    """The origin part of a ref ('' for a ref without one: a plain external key)."""
    head, sep, _ = ref.partition(SEPARATOR)
    return head if sep else ""


class RefBook:
    """The refs of one entity type (``Customer``, ``Contact``…) in one database."""

    def __init__(self, db: Database, type_name: str, origin: str | None) -> None:
        self.db = db
        self.type_name = type_name
        self.origin = origin

    def foreign(self, ref: str) -> bool:
        """Whether ``ref`` comes from another database (or another system)."""
        return self.origin is None or origin_of(ref) != self.origin

    def local_id(self, ref: str) -> int | None:
        """The pk a ref of this database's own origin names."""
        if self.foreign(ref):
            return None
        try:
            type_name, pk = decode_id(ref.partition(SEPARATOR)[2])
        except InvalidId:
            return None
        return pk if type_name == self.type_name else None

    async def resolve(self, refs: Iterable[str]) -> dict[str, int]:
        """The pk each known ref names, for records still there (a ref whose
        record was removed for good is unknown again)."""
        wanted = sorted(set(refs))
        found = {ref: pk for ref in wanted if (pk := self.local_id(ref)) is not None}
        rest = [ref for ref in wanted if ref not in found]
        found |= {row["ref"]: int(row["entity_id"]) for row in await self._ref_rows("ref", rest)}
        there = await self._existing(found.values())
        return {ref: pk for ref, pk in found.items() if pk in there}

    async def _existing(self, pks: Iterable[int]) -> set[int]:
        wanted = sorted(set(pks))
        there: set[int] = set()
        for chunk in chunks(wanted):
            where = Where()
            where.add_in("id", chunk)
            rows = await self.db.fetch(
                f"SELECT id FROM {TABLES[self.type_name]} WHERE {where.sql()}", *where.args
            )
            there |= {int(row["id"]) for row in rows}
        return there

    async def _ref_rows(self, column: str, values: Sequence[Any]) -> list[dict[str, Any]]:
        """The ``transfer_ref`` rows of this type whose ``column`` (``ref`` or
        ``entity_id``) is one of ``values``."""
        rows: list[dict[str, Any]] = []
        for chunk in chunks(values):
            where = Where()
            where.add("entity_type = {}", self.type_name)
            where.add_in(column, chunk)
            rows += await self.db.fetch(
                f"SELECT ref, entity_id FROM transfer_ref WHERE {where.sql()}", *where.args
            )
        return rows

    async def remember(self, pairs: Sequence[tuple[str, int]]) -> None:
        """Keep ``(ref, pk)`` pairs; a ref seen before now names this record
        (its old one is gone). Refs of this database's own origin need no row."""
        kept = sorted({ref: pk for ref, pk in pairs if self.local_id(ref) is None}.items())
        for chunk in chunks(kept):
            marks = ", ".join("({}, {}, {})" for _ in chunk)
            await self.db.fetch(
                f"INSERT INTO transfer_ref (entity_type, ref, entity_id) VALUES {marks} "
                "ON CONFLICT (entity_type, ref) DO UPDATE SET entity_id = excluded.entity_id",
                *(value for ref, pk in chunk for value in (self.type_name, ref, pk)),
            )

    async def refs_of(self, pks: Iterable[int]) -> dict[int, set[str]]:
        """The refs that name each of these records (own-origin ones included
        when this database has an origin)."""
        wanted = sorted(set(pks))
        found: dict[int, set[str]] = {pk: set() for pk in wanted}
        if self.origin is not None:
            for pk in wanted:
                found[pk].add(make_ref(self.origin, self.type_name, pk))
        for row in await self._ref_rows("entity_id", wanted):
            found[int(row["entity_id"])].add(row["ref"])
        return found
