"""Team work in SQL: notes and the users they mention, tasks, and each
customer's timeline. Portable SQL (PostgreSQL and SQLite), batched per
customer like :mod:`crmgraph.db.queries`, so a page of customers with their
notes, tasks or timeline costs one statement per list whatever its size.

Mentions are written ``@`` followed by the user's e-mail address, e.g.
``Call back tomorrow, @ana@example.com``: what people already know of each
other, readable in the plain text, and unambiguous (e-mails are unique).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence
from typing import Any

from crmgraph.db import queries, writes
from crmgraph.db.engine import Database
from crmgraph.db.queries import CustomerScope, Where

# "@" + an e-mail address, not preceded by a word character or another "@"
# (so the middle of "bob@example.com" is not a mention). A trailing dot ends
# a sentence, not the domain.
MENTION = re.compile(r"(?<![\w@.])@([\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,})")

TASK_STATUSES = ("OPEN", "IN_PROGRESS", "DONE", "CANCELLED")
OPEN_TASK_STATUSES = ("OPEN", "IN_PROGRESS")

# Tasks without a due date sort after every dated one in ``my_tasks``; a bound
# value rather than NULLS LAST so the keyset comparison stays one expression.
NO_DUE_DATE = datetime.datetime(9999, 12, 31, tzinfo=datetime.UTC)

# Timeline kind -> (table, timestamp column, extra condition). The kinds are
# the GraphQL enum's values; their first letters differ, so every collation
# orders them alike (the tie-break must be the same on both engines).
TIMELINE_SOURCES: dict[str, tuple[str, str, str]] = {
    "AUDIT": ("audit_entry", "at", ""),
    "INTERACTION": ("interaction", "occurred_at", ""),
    "NOTE": ("note", "created_at", " AND deleted_at IS NULL"),
    "STAGE_CHANGE": ("stage_change", "at", ""),
    "TASK": ("task", "created_at", ""),
}


def mentioned_emails(body: str) -> list[str]:
    """The e-mail addresses mentioned in ``body``, lower-cased, each once, in order."""
    seen: dict[str, None] = {}
    for match in MENTION.finditer(body):
        seen.setdefault(match.group(1).lower(), None)
    return list(seen)


async def users_by_email(db: Database, emails: Sequence[str]) -> dict[str, int]:
    """Lower-cased e-mail -> user id, for the users that exist."""
    if not emails:
        return {}
    where = Where()
    where.add_in("LOWER(email)", emails)
    rows = await db.fetch(f"SELECT id, email FROM crm_user WHERE {where.sql()}", *where.args)
    return {row["email"].lower(): row["id"] for row in rows}


async def set_mentions(db: Database, note_pk: int, user_ids: Sequence[int]) -> None:
    """Replace a note's mentions (in the caller's transaction)."""
    await db.fetch("DELETE FROM note_mention WHERE note = {}", note_pk)
    for user_id in user_ids:
        await writes.insert(db, "note_mention", {"note": note_pk, "mentioned": user_id})


async def mentions_of(db: Database, note_ids: Sequence[int]) -> list[dict[str, Any]]:
    """The users each note mentions, with the note's id as ``mention_note``."""
    where = Where()
    where.add_in("m.note", note_ids)
    return await db.fetch(
        "SELECT m.note AS mention_note, u.* FROM note_mention m "
        f"JOIN crm_user u ON u.id = m.mentioned WHERE {where.sql()} "
        "ORDER BY m.note, u.name, u.id",
        *where.args,
    )


async def newest_pages(
    db: Database,
    table: str,
    customer_ids: Sequence[int],
    limit: int,
    statuses: Sequence[str],
    before: tuple[datetime.datetime, int] | None,
) -> list[dict[str, Any]]:
    """Newest-first notes or tasks (``table``) of many customers in one
    statement: up to ``limit`` rows per customer, ranked by a window function.
    ``statuses`` filters tasks; deleted notes are left out."""
    where = Where()
    where.add_in("t.customer", customer_ids)
    if table == "note":
        where.add("t.deleted_at IS NULL")
    if statuses:
        where.add_in("t.status", statuses)
    if before is not None:
        at, pk = before
        where.add("(t.created_at < {} OR (t.created_at = {} AND t.id < {}))", at, at, pk)
    sql = (
        "SELECT * FROM (SELECT t.*, ROW_NUMBER() OVER (PARTITION BY t.customer "
        "ORDER BY t.created_at DESC, t.id DESC) AS rank_in_customer "
        f"FROM {table} t WHERE {where.sql()}) ranked WHERE rank_in_customer <= {{}} "
        "ORDER BY customer, created_at DESC, id DESC"
    )
    return await db.fetch(sql, *where.args, limit)


async def tasks_of_needs(db: Database, need_ids: Sequence[int]) -> list[dict[str, Any]]:
    return await queries.rows_by_column(db, "task", "need", need_ids, order="created_at, id")


async def my_tasks(
    db: Database,
    assignee: int,
    scope: CustomerScope | None,
    statuses: Sequence[str],
    due_before: datetime.datetime | None,
    limit: int,
    after: tuple[datetime.datetime, int] | None,
) -> list[dict[str, Any]]:
    """Tasks assigned to a user on customers they may see (not deleted),
    soonest due first, undated last, then by id."""
    where = Where()
    where.add("t.assignee = {}", assignee)
    where.add("c.deleted_at IS NULL")
    if scope is not None:
        scope.sql(where)
    if statuses:
        where.add_in("t.status", statuses)
    if due_before is not None:
        where.add("t.due_at < {}", due_before)
    due = "COALESCE(t.due_at, {})"
    args: list[Any] = [NO_DUE_DATE]
    if after is not None:
        at, pk = after
        where.add(
            f"({due} > {{}} OR ({due} = {{}} AND t.id > {{}}))",
            NO_DUE_DATE,
            at,
            NO_DUE_DATE,
            at,
            pk,
        )
    sql = (
        f"SELECT t.*, {due} AS due_key FROM task t JOIN customer c ON c.id = t.customer "
        f"WHERE {where.sql()} ORDER BY due_key, t.id LIMIT {{}}"
    )
    rows = await db.fetch(sql, *args, *where.args, limit)
    for row in rows:
        row["due_key"] = queries.read_timestamp(row["due_key"])
    return rows


async def timeline_pages(
    db: Database,
    customer_ids: Sequence[int],
    limit: int,
    kinds: Sequence[str],
    after: tuple[datetime.datetime, str, int] | None,
) -> list[dict[str, Any]]:
    """Timeline keys (customer, at, kind, id) of many customers, newest first,
    up to ``limit`` per customer: one UNION ALL of the kinds asked for, ranked
    by (at DESC, kind, id DESC), the same SQL on both engines. The records
    themselves load through the row loader, one statement per kind."""
    branches, args = [], []
    for kind in sorted(kinds):
        table, column, extra = TIMELINE_SOURCES[kind]
        inner = Where()
        inner.add_in("customer", customer_ids)
        branches.append(
            f"SELECT customer, {column} AS at, '{kind}' AS kind, id FROM {table} "
            f"WHERE {inner.sql()}{extra}"
        )
        args.extend(inner.args)
    if not branches:
        return []
    outer = Where()
    if after is not None:
        at, kind, pk = after
        outer.add(
            "(at < {} OR (at = {} AND (kind > {} OR (kind = {} AND id < {}))))",
            at,
            at,
            kind,
            kind,
            pk,
        )
    sql = (
        "SELECT customer, at, kind, id FROM (SELECT items.*, ROW_NUMBER() OVER "
        "(PARTITION BY customer ORDER BY at DESC, kind, id DESC) AS rank_in_customer "
        f"FROM ({' UNION ALL '.join(branches)}) items WHERE {outer.sql()}) ranked "
        "WHERE rank_in_customer <= {} ORDER BY customer, at DESC, kind, id DESC"
    )
    rows = await db.fetch(sql, *args, *outer.args, limit)
    for row in rows:
        row["at"] = queries.read_timestamp(row["at"])
    return rows
