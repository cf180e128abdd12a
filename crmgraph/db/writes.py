"""Writes, each meant to run inside one ``Database.transaction()``.

They take values already validated and raise :class:`UserInputError` for
expected failures (missing record, version conflict), which rolls the
transaction back and becomes ``userErrors``.
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextvars import ContextVar
from typing import Any

import orjson

from crmgraph.db import queries, text_keys
from crmgraph.db.engine import Database
from crmgraph.db.write_batch import Statement
from crmgraph.ids import encode_id
from crmgraph.validation import UserInputError, camel

# How many merges deep a global ID is followed (A into B into C ...).
MAX_CHAIN = 50
# Customer columns an update may set, mapped from validated input names.
UPDATABLE_CUSTOMER_COLUMNS = ("name", "email", "phone", "owner", "team")


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def dump_json(value: dict[str, Any]) -> str:
    return orjson.dumps(value).decode()


async def insert(db: Database, table: str, values: dict[str, Any], keep: bool = False) -> int:
    """Insert a row; its pk. In a transaction that queues its writes
    (``Database.write_queue``) the row is queued under a pk handed out now,
    and sent with the transaction's next read or before its commit; ``keep``
    keeps the row as written for ``Database.written_row`` (a payload)."""
    values = text_keys.with_text_keys(table, values)  # a name's folded copies, if it has one
    queue = db.write_queue()
    if queue is not None:
        pk = await db.next_id(table)
        if pk is not None:
            queue.insert(table, {"id": pk, **values}, keep)
            return pk
    columns = ", ".join(values)
    marks = ", ".join("{}" for _ in values)
    rows = await db.fetch(
        f"INSERT INTO {table} ({columns}) VALUES ({marks}) RETURNING id", *values.values()
    )
    return int(rows[0]["id"])


async def insert_unread(db: Database, table: str, values: dict[str, Any]) -> None:
    """Insert a row nobody reads back in this write (an audit entry, an
    event): queued as it is, its pk given by the table's default, when the
    transaction queues its writes."""
    queue = db.write_queue()
    if queue is None:
        await insert(db, table, values)
    else:
        queue.insert(table, text_keys.with_text_keys(table, values))


async def update_row(db: Database, table: str, pk: int, values: dict[str, Any]) -> None:
    values = text_keys.with_text_keys(table, values)
    assignments = ", ".join(f"{column} = {{}}" for column in values)
    await run_or_queue(
        db, table, f"UPDATE {table} SET {assignments} WHERE id = {{}}", (*values.values(), pk)
    )


async def run_or_queue(
    db: Database,
    table: str,
    sql: str,
    args: Sequence[Any],
    expect: tuple[int, Exception] | None = None,
) -> None:
    """A statement on ``table`` whose rows are not read: queued when the
    transaction queues its writes, run at once otherwise. ``expect`` is the
    number of rows it must touch and the error raised when it does not."""
    queue = db.write_queue()
    if queue is not None:
        queue.add(Statement(table, sql=sql, args=tuple(args), expect=expect))
        return
    if expect is None:
        await db.fetch(sql, *args)
        return
    rows = await db.fetch(f"{sql} RETURNING 1 AS touched", *args)
    if len(rows) != expect[0]:
        raise expect[1]


Visible = Callable[[dict[str, Any]], bool]


# how every writer locks a customer's row (lock_parties, locked_customers,
# hold_live_customer): one mode, so that they queue on one another
PARTY_LOCK = "FOR NO KEY UPDATE"


async def lock_parties(db: Database, pks: Iterable[int]) -> None:
    """The party lock: every write that touches a customer (its row or a row
    hanging off it) takes it, inside its transaction, before reading the
    customer's state; so does a merge, for both customers, and an import for
    each customer it writes to. A merge and a write to the merged customer
    thus run one after the other: the write lands before the merge moves the
    customer's rows (and moves with them), or it reads the customer merged and
    is refused (MERGED). Locks are taken in ascending id order in one
    statement, so two writers of the same customers (two merges of a pair in
    opposite directions) queue instead of deadlocking.

    PostgreSQL: row locks (``SELECT … FOR NO KEY UPDATE``), held to the end
    of the transaction. Not FOR UPDATE: that also blocks the foreign key checks
    (FOR KEY SHARE) of rows merely referring to the customer, and a screening
    create inserting a ``duplicate_pair`` with it, holding its match keys'
    advisory locks, deadlocked with a delete of it waiting for the same keys
    (tests/test_screening_deadlock.py). SQLite: nothing to do; its write
    transactions are IMMEDIATE (:meth:`Database.transaction`), so one writer
    runs at a time and every read inside one already sees the customer's last
    committed state."""
    if not db.in_transaction:
        raise RuntimeError("a party lock is taken inside the write's transaction")
    ids = sorted({pk for pk in pks if pk})
    if not ids or db.is_sqlite:
        return
    marks = ", ".join("{}" for _ in ids)
    await db.fetch(f"SELECT id FROM customer WHERE id IN ({marks}) ORDER BY id {PARTY_LOCK}", *ids)


def row_locks(db: Database) -> str:
    """What ends a subquery choosing, ``ORDER BY id``, the rows an UPDATE
    changes, so that they are locked in id order: two background passes
    updating the same rows (the outbox's events: delivered, published,
    claimed for webhooks) then queue instead of deadlocking, as they did in
    their UPDATE's own scan order. SQLite serialises writers: nothing to lock."""
    return "" if db.is_sqlite else " FOR NO KEY UPDATE"


async def locked_customers(db: Database, pks: Sequence[int]) -> list[dict[str, Any]]:
    """Customer rows read with their party lock (:func:`lock_parties`) taken
    by the same statement: PostgreSQL locks them in id order as it reads."""
    if not db.in_transaction:
        raise RuntimeError("a party lock is taken inside the write's transaction")
    marks = ", ".join("{}" for _ in pks)
    locking = "" if db.is_sqlite else f" ORDER BY c.id {PARTY_LOCK} OF c"
    return await db.fetch(
        f"SELECT {queries.CUSTOMER_COLUMNS} FROM {queries.CUSTOMER_FROM} "
        f"WHERE c.id IN ({marks}){locking}",
        *pks,
    )


async def locked_row(
    db: Database, table: str, pk: int, ends: Sequence[str] = ("customer",)
) -> dict[str, Any] | None:
    """Row ``pk`` of a table hanging off customers (its ``ends`` columns name
    them), read with those customers' party lock held; None when there is no
    such row. A merge that moved the row meanwhile moved it to the survivor:
    the row is read again and the survivor locked, so the write follows it."""
    row = await _row(db, table, pk)
    for _ in range(MAX_PARTY_HOPS):
        if row is None:
            return None
        parties = [row[end] for end in ends]
        await lock_parties(db, parties)
        if db.is_sqlite:
            return row  # the write lock was held before the read
        again = await _row(db, table, pk)
        if again is None or [again[end] for end in ends] == parties:
            return again
        row = again
    raise UserInputError.single(
        None, "the record kept moving between customers; try again", "VERSION_CONFLICT"
    )


# How often a row's customers may change under a write before it gives up.
MAX_PARTY_HOPS = 5


async def _row(db: Database, table: str, pk: int) -> dict[str, Any] | None:
    rows = await db.fetch(f"SELECT * FROM {table} WHERE id = {{}}", pk)
    return rows[0] if rows else None


def _everyone(row: dict[str, Any]) -> bool:
    return True


async def visible_customer(
    db: Database, pk: int, field: str = "id", sees: Visible = _everyone
) -> dict[str, Any]:
    """The customer row a write applies to, deleted or not, read with its
    party lock held (:func:`lock_parties`): the shared place every write
    resolves its customer. One not visible to the caller (``sees``) is
    reported exactly like one that does not exist, so writes do not reveal
    what reads hide."""
    rows = await locked_customers(db, [pk])
    if not rows or not sees(rows[0]):
        raise UserInputError.single(field, "customer not found", "NOT_FOUND")
    return rows[0]


async def live_customer(
    db: Database, pk: int, field: str = "id", sees: Visible = _everyone
) -> dict[str, Any]:
    """The visible, not deleted customer a write applies to."""
    row = await visible_customer(db, pk, field, sees)
    check_live(row, field)
    return row


async def hold_live_customer(
    db: Database, pk: int, field: str, sees: Visible, scope: queries.CustomerScope | None
) -> None:
    """What :func:`live_customer` makes sure of, for a write that does not
    need the row: the customer is there, live and visible to the caller
    (``sees``; ``scope`` is the same row scope as SQL, None: every customer),
    its party lock held to the end of the write. In a lazy transaction that
    has sent nothing yet (``Database.guarding``) this is a guard in the
    write's one statement; a customer that fails it has the write run again
    the ordinary way, which refuses it exactly as :func:`live_customer` does."""
    queue = db.guarding()
    if queue is None:
        await live_customer(db, pk, field, sees)
        return
    where = queries.Where()
    where.add("c.id = {}", pk)
    where.add("c.deleted_at IS NULL AND c.merged_into IS NULL AND c.erased_at IS NULL")
    if scope is not None:
        scope.sql(where)
    # locked as lock_parties locks it
    queue.guard(
        "customer",
        f"SELECT c.id FROM customer c WHERE {where.sql()} {PARTY_LOCK}",
        *where.args,
    )


def check_live(row: dict[str, Any], field: str) -> None:
    """Refuse a write to a merged, erased or deleted customer (its row in hand)."""
    merged_refusal(row, field)
    erased_refusal(row, field)
    if row["deleted_at"] is not None:
        raise UserInputError.single(field, "customer is deleted; restore it first", "DELETED")


async def survivor(
    row: dict[str, Any] | None, load: Callable[[int], Awaitable[dict[str, Any] | None]]
) -> dict[str, Any] | None:
    """The customer ``row`` stands for: itself, or the one its merges lead to
    (A into B into C: C); None when there is none. ``load`` reads a customer
    row by id (a DataLoader's ``load``, or a batch's cache)."""
    for _ in range(MAX_CHAIN):
        if row is None or row["merged_into"] is None:
            break
        row = await load(row["merged_into"])
    return row


def merged_refusal(row: dict[str, Any], field: str) -> None:
    """Writes to a merged customer are refused, not redirected: the caller's
    view of it (its version, its fields) is not the survivor's."""
    if row.get("merged_into") is not None:
        survivor = encode_id("Customer", row["merged_into"])
        raise UserInputError.single(
            field, f"customer was merged into {survivor}; write to that customer", "MERGED"
        )


def erased_refusal(row: dict[str, Any], field: str) -> None:
    """An erased customer (crmgraph.privacy.erasure) stays only as the
    anonymous carrier of its facts: nothing about a person may be written to
    it again, so no write applies to it."""
    if row.get("erased_at") is not None:
        raise UserInputError.single(
            field,
            "this customer's personal data was erased; nothing more can be recorded about it",
            "ERASED",
        )


async def row_exists(db: Database, table: str, pk: int) -> bool:
    return bool(await db.fetch(f"SELECT id FROM {table} WHERE id = {{}}", pk))


def check_version(current: dict[str, Any], expected_version: int) -> None:
    if current["version"] != expected_version:
        raise version_conflict(current["version"], expected_version)


async def update_customer(
    db: Database,
    pk: int,
    expected_version: int,
    changes: dict[str, Any],
    attributes: dict[str, Any] | None,
) -> None:
    """Compare-and-set on ``version``: the UPDATE only matches the version the
    caller read, so of two writers with the same expectation exactly one wins
    (PostgreSQL re-checks the WHERE after waiting on the row lock; SQLite
    serialises writers with IMMEDIATE transactions)."""
    values = {column: changes[column] for column in UPDATABLE_CUSTOMER_COLUMNS if column in changes}
    if attributes is not None:
        values["attributes"] = dump_json(attributes)
    values["updated_at"] = now()
    sql, args = compare_and_set_statement(pk, expected_version, values)
    await run_or_queue(db, "customer", sql, args, (1, version_conflict(None, expected_version)))


def compare_and_set_statement(
    pk: int, expected_version: int, values: dict[str, Any], live_only: bool = True
) -> tuple[str, list[Any]]:
    """The UPDATE of :func:`compare_and_set`, without its RETURNING."""
    values = text_keys.with_text_keys("customer", values)
    assignments = "".join(f"{column} = {{}}, " for column in values)
    alive = " AND deleted_at IS NULL" if live_only else ""
    sql = (
        f"UPDATE customer SET {assignments}version = version + 1 "
        f"WHERE id = {{}} AND version = {{}}{alive}"
    )
    return sql, [*values.values(), pk, expected_version]


async def compare_and_set(
    db: Database, pk: int, expected_version: int, values: dict[str, Any], live_only: bool = True
) -> int | None:
    """Set ``values`` on a customer and bump its version, only if it is still
    at ``expected_version`` (and, with ``live_only``, not deleted); the new
    version, or None when it was not (someone else wrote first)."""
    sql, args = compare_and_set_statement(pk, expected_version, values, live_only)
    rows = await db.fetch(f"{sql} RETURNING version", *args)
    return int(rows[0]["version"]) if rows else None


def version_conflict(current: int | None, expected: int) -> UserInputError:
    detail = f" (it is now at version {current})" if current is not None else ""
    return UserInputError.single(
        "expectedVersion",
        f"customer was changed by someone else since version {expected}{detail}; "
        "reload it and apply your change again",
        "VERSION_CONFLICT",
    )


async def set_deleted(
    db: Database, pk: int, deleted: bool, expected_version: int | None, sees: Visible = _everyone
) -> dict[str, list[Any]]:
    current = await visible_customer(db, pk, "id", sees)
    merged_refusal(current, "id")  # undoMerge brings a merged customer back
    if deleted and current["deleted_at"] is not None:
        raise UserInputError.single("id", "customer is already deleted", "DELETED")
    if not deleted and current["deleted_at"] is None:
        raise UserInputError.single("id", "customer is not deleted", "NOT_DELETED")
    if expected_version is not None:
        check_version(current, expected_version)
    at = now()
    await db.fetch(
        "UPDATE customer SET deleted_at = {}, updated_at = {}, version = version + 1 WHERE id = {}",
        at if deleted else None,
        at,
        pk,
    )
    return {"deletedAt": [jsonable(current["deleted_at"]), jsonable(at if deleted else None)]}


async def contact_row(db: Database, pk: int) -> dict[str, Any]:
    """A contact a write applies to, its customer locked (:func:`locked_row`)."""
    row = await locked_row(db, "contact", pk)
    if row is None:
        raise UserInputError.single("id", "contact not found", "NOT_FOUND")
    return row


async def contact_of(db: Database, contact_pk: int, customer_pk: int) -> dict[str, Any]:
    """The contact row an input names alongside a customer, refused when it is
    another customer's contact."""
    row = await _row(db, "contact", contact_pk)  # its customer is locked when it is ours
    if row is None:
        raise UserInputError.single("contactId", "contact not found", "NOT_FOUND")
    if row["customer"] != customer_pk:
        raise UserInputError.single("contactId", "contact belongs to another customer", "INVALID")
    return row


async def clear_primary_contact(db: Database, customer_pk: int, except_pk: int | None) -> None:
    await db.fetch(
        "UPDATE contact SET is_primary = {} WHERE customer = {} AND id <> {}",
        False,
        customer_pk,
        except_pk or 0,
    )


def contact_added_payload(customer_pk: int, contact_pk: int) -> dict[str, Any]:
    """The ``contact.added`` event's payload (addContact, imports)."""
    return {
        "customerId": encode_id("Customer", customer_pk),
        "contactId": encode_id("Contact", contact_pk),
    }


def interaction_logged_payload(
    customer_pk: int, interaction_pk: int, values: dict[str, Any]
) -> dict[str, Any]:
    """The ``interaction.logged`` event's payload (logInteraction, imports)."""
    return {
        "customerId": encode_id("Customer", customer_pk),
        "interactionId": encode_id("Interaction", interaction_pk),
        "channel": values["channel"],
        "amount": str(values["amount"] or "") or None,
    }


async def outbox(db: Database, event_type: str, customer_pk: int | None, payload: dict) -> None:
    """Record an event in the same transaction as the change it describes."""
    at = now()
    await insert_unread(
        db,
        "event",
        {
            "type": event_type,
            "customer": customer_pk,
            "payload": dump_json({**payload, "at": at.isoformat()}),
            "created_at": at,
        },
    )


def jsonable(value: Any) -> Any:
    """A column value as the audit trail stores it (JSON text for dates, money)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    return str(value)


def field_changes(before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, list[Any]]:
    """``{field: [old, new]}`` for every field of ``after`` whose value differs."""
    changes = {}
    for name, new in after.items():
        old = (before or {}).get(name)
        if jsonable(old) != jsonable(new):
            changes[name] = [jsonable(old), jsonable(new)]
    return changes


# The user a write is made for; set around each mutation's transaction
# (``acting_as``) so every audit entry it leaves names them.
current_actor: ContextVar[int | None] = ContextVar("crmgraph_actor", default=None)


@contextlib.contextmanager
def acting_as(user_id: int | None) -> Iterator[None]:
    token = current_actor.set(user_id)
    try:
        yield
    finally:
        current_actor.reset(token)


async def audit(
    db: Database,
    action: str,
    entity_type: str,
    entity_id: int,
    customer_pk: int | None,
    changes: dict[str, list[Any]],
    by: int | None = None,
) -> None:
    """One audit entry in the caller's transaction: it commits or rolls back
    with the change it records. ``by`` defaults to the current actor."""
    await insert_unread(
        db,
        "audit_entry",
        {
            "at": now(),
            "by": by if by is not None else current_actor.get(),
            "action": action,
            "entity_type": entity_type,
            "entity_id": entity_id,
            "customer": customer_pk,
            "changes": dump_json(changes),
        },
    )


async def record_change(
    db: Database,
    action: str,
    entity: tuple[str, int],
    customer_pk: int | None,
    changes: dict[str, list[Any]],
    payload: dict[str, Any],
    by: int | None = None,
) -> None:
    """The two traces every write leaves in its transaction: an audit entry
    (who changed which fields from what to what) and an outbox event
    (``action`` is the event type) for handlers, subscribers and webhooks."""
    entity_type, entity_id = entity
    await audit(db, action, entity_type, entity_id, customer_pk, changes, by)
    await outbox(db, action, customer_pk, payload)


def api_names(values: dict[str, Any]) -> dict[str, Any]:
    """Column names as the API spells them, for audit entries and events."""
    return {camel(k): val for k, val in values.items()}


async def insert_recorded(
    db: Database,
    node: str,
    customer_pk: int,
    values: dict[str, Any],
    action: str,
    payload: Callable[[int], dict[str, Any]],
) -> int:
    """Insert a row of customer ``customer_pk`` into ``node``'s table (the
    type's name in lower case: ``Contact``, ``Need``) with its creation times,
    and record it: every field set, and event ``action`` with ``payload(pk)``."""
    at = now()
    table = node.lower()
    pk = await insert(
        db,
        table,
        {**values, "customer": customer_pk, "created_at": at, "updated_at": at},
        keep=True,
    )
    changes = field_changes(None, api_names(values))
    await record_change(db, action, (node, pk), customer_pk, changes, payload(pk))
    return pk


async def update_recorded(
    db: Database,
    entity: tuple[str, int],
    current: dict[str, Any],
    values: dict[str, Any],
    action: str,
) -> None:
    """Set ``values`` on row ``entity`` (its node type and pk; its table is
    the type's name in lower case) with its update time, and record the
    fields that changed from ``current``; event ``action`` names the row
    (``contactId``, ``needId``) and those fields."""
    node, pk = entity
    await update_row(db, node.lower(), pk, {**values, "updated_at": now()})
    changes = field_changes(api_names({k: current[k] for k in values}), api_names(values))
    event = {f"{node.lower()}Id": encode_id(node, pk), "fields": sorted(changes)}
    await record_change(db, action, entity, current["customer"], changes, event)
