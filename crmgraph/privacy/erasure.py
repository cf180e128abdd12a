"""Erasing a party's personal data on request, in the caller's transaction
(the GraphQL mutation's ``run_write``, or the command line's): everything or,
raising :class:`~crmgraph.validation.UserInputError`, nothing.

1. The customer must exist, be visible to the caller, not be merged into
   another (erase the survivor: that erases every record merged into it) and
   not be erased already. Deleted customers may be erased: they still hold data.
2. Every plugin's ``crmgraph_erase_personal_data`` runs first, while the
   values are still there to find its own rows by; one that raises aborts
   the erasure with a ``PLUGIN_ERROR`` user error naming it.
3. The core anonymises (:func:`anonymise`): names become
   :data:`~crmgraph.privacy.ERASED` (the customer's own
   :data:`~crmgraph.privacy.ERASED_NAME`), e-mails, phones, profiles, typed
   attributes and free text are cleared, in every table; audit entries and
   outbox events keep only their non-personal values
   (:mod:`crmgraph.privacy.scrub`); match keys (and so duplicate pairs) go; delivery logs and
   stored idempotent responses that quote the party are cleared. Counts,
   amounts, channels, stages, dates, outcomes and ratings stay, so every
   analytics total is unchanged.
4. The erasure is recorded (``customer_erasure``: who, when, why, how many
   rows per table; never a value), with an audit entry and a
   ``customer.erased`` event.

Afterwards the customer's ``erased_at`` is set: writes to it are refused
(``ERASED``, :func:`crmgraph.db.writes.live_customer`) and duplicate matching
gives it no keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import pluggy

from crmgraph.db import queries, search, text_keys, writes
from crmgraph.db.engine import Database
from crmgraph.dedupe import matching
from crmgraph.ids import encode_id
from crmgraph.plugin_calls import PluginFailure, call_each
from crmgraph.plugin_names import stable_plugin_name
from crmgraph.privacy import ERASED, ERASED_NAME, scrub
from crmgraph.privacy.party import marks, party_ids
from crmgraph.validation import UserInputError

HOOK = "crmgraph_erase_personal_data"

# The customer's own columns that identify or describe the person.
CUSTOMER_VALUES = ("name", "email", "phone")
# Per table keyed by customer: what each column becomes (None: cleared).
ANONYMISED: dict[str, dict[str, str | None]] = {
    "contact": text_keys.with_text_keys(  # the folded copies of name and e-mail too
        "contact",
        {
            "name": ERASED,
            "email": None,
            "phone": None,
            "job_title": None,
            "notes": None,
            "birthday": None,
            "home_address": None,
        },
    ),
    "interaction": {"subject": ERASED, "notes": None},
    "need": {"title": ERASED, "description": None},
    "note": {"body": ERASED},
    "task": {"title": ERASED, "description": None},
    "consent_change": {"evidence": None},
}
# Columns holding free text in rows that are otherwise history to keep.
CLEARED_IF_SET: dict[str, dict[str, str | None]] = {
    "stage_change": {"reason": ERASED},
}
# Global ID types of rows whose stored responses are about the party.
NODE_TABLES = {
    "Contact": "contact",
    "Interaction": "interaction",
    "Need": "need",
    "Note": "note",
    "Task": "task",
}


@dataclass(frozen=True)
class Erasure:
    id: int
    customer_ids: list[int]
    counts: dict[str, int]


async def erase_personal_data(
    db: Database,
    pm: pluggy.PluginManager,
    pk: int,
    reason: str,
    sees: writes.Visible,
    by_user: int | None,
) -> Erasure:
    """Erase customer ``pk`` and every customer merged into it."""
    row = await writes.visible_customer(db, pk, "customerId", sees)
    writes.merged_refusal(row, "customerId")
    if row["erased_at"] is not None:
        raise UserInputError.single(
            "customerId", "this customer's personal data was already erased", "ERASED"
        )
    party = await party_ids(db, pk)
    counts: dict[str, int] = {}
    for plugin, result in await call_plugins(pm, db, pk, party, reason):
        name = stable_plugin_name(pm, plugin)  # the same however the plugin was loaded
        for what, count in sorted((result or {}).items()):
            counts[f"{name}.{what}"] = int(count)
    at = writes.now()
    counts = {**await anonymise(db, party, at), **counts}
    await search.forget_erased(db)
    erasure_id = await writes.insert(
        db,
        "customer_erasure",
        {
            "customer": pk,
            "erased_by": by_user if by_user is not None else writes.current_actor.get(),
            "erased_at": at,
            "reason": reason,
            "customers": orjson.dumps(party).decode(),
            "counts": writes.dump_json(counts),
        },
    )
    customer_ids = [encode_id("Customer", member) for member in party]
    await writes.record_change(
        db,
        "customer.erased",
        ("Customer", pk),
        pk,
        {"erasedAt": [None, at.isoformat()], "reason": [None, reason]},
        {
            "customerId": encode_id("Customer", pk),
            "erasureId": encode_id("PersonalDataErasure", erasure_id),
            "erasedCustomerIds": customer_ids,
            "reason": reason,
        },
        by_user,
    )
    return Erasure(erasure_id, party, counts)


async def call_plugins(
    pm: pluggy.PluginManager, db: Database, pk: int, party: list[int], reason: str
) -> list[tuple[str, Any]]:
    try:
        return await call_each(
            pm, HOOK, db=db, customer_pk=pk, customer_pks=tuple(party), reason=reason
        )
    except PluginFailure as failure:
        raise UserInputError.single(
            None,
            f"plugin {failure.plugin!r} could not erase its data, so nothing was erased: "
            f"{failure.message}",
            "PLUGIN_ERROR",
        ) from failure


async def anonymise(db: Database, party: list[int], at: Any) -> dict[str, int]:
    """The core's tables; rows changed per table."""
    ids = marks(party)
    quoted = await _quoted_texts(db, party)
    counts: dict[str, int] = {}

    async def update(table: str, assignments: str, where: str, *args: Any) -> None:
        """``where`` names the party with ``{ids}``; ``args`` bind the rest, in order."""
        condition = where.format(ids=ids)
        bound = [*args, *party * where.count("{ids}")]
        rows = await db.fetch(
            f"UPDATE {table} SET {assignments} WHERE {condition} RETURNING id", *bound
        )
        if rows:
            counts[table] = counts.get(table, 0) + len(rows)

    erased = text_keys.with_text_keys("customer", {"name": ERASED_NAME, "email": None})
    await update(
        "customer",
        "name = {}, name_sort = {}, name_folded = {}, email = NULL, email_folded = NULL, "
        "phone = NULL, attributes = {}, erased_at = {}, updated_at = {}, version = version + 1",
        "id IN ({ids})",
        erased["name"],
        erased["name_sort"],
        erased["name_folded"],
        "{}",
        at,
        at,
    )
    for table, columns in ANONYMISED.items():
        assignments = ", ".join(
            f"{column} = NULL" if value is None else f"{column} = {{}}"
            for column, value in columns.items()
        )
        values = [value for value in columns.values() if value is not None]
        await update(table, assignments, "customer IN ({ids})", *values)
    for table, columns in CLEARED_IF_SET.items():
        for column, value in columns.items():
            await update(
                table, f"{column} = {{}}", f"{column} IS NOT NULL AND customer IN ({{ids}})", value
            )
    # a further role's typed attributes (crmgraph.operations.roles)
    await update(
        "customer_role", "attributes = {}", "added_at IS NOT NULL AND customer IN ({ids})", "{}"
    )
    await update(
        "relationship",
        "attributes = {}",
        "from_customer IN ({ids}) OR to_customer IN ({ids})",
        "{}",
    )
    keys = await db.fetch(f"SELECT id FROM customer_match_key WHERE customer IN ({ids})", *party)
    await matching.refresh_match_keys(db, party)  # nothing identifying is left: none
    if keys:
        counts["customer_match_key"] = len(keys)
    for table, column, scrubbed in (
        ("audit_entry", "changes", scrub.scrub_changes),
        ("event", "payload", scrub.scrub_payload),
    ):
        changed = await _rewrite_json(db, table, column, party, scrubbed)
        if changed:
            counts[table] = changed
    for table in ("event", "webhook_delivery"):
        await update(table, "last_error = NULL", "last_error IS NOT NULL AND customer IN ({ids})")
    await update(
        "webhook_attempt",
        "response_body = NULL, error = NULL",
        "(response_body IS NOT NULL OR error IS NOT NULL) AND delivery IN "
        "(SELECT id FROM webhook_delivery WHERE customer IN ({ids}))",
    )
    merges = await _scrub_merges(db, party)
    if merges:
        counts["customer_merge"] = merges
    stored = await scrub.delete_mentioning(db, "idempotency_record", "response", quoted)
    if stored:
        counts["idempotency_record"] = stored
    return counts


async def _quoted_texts(db: Database, party: list[int]) -> list[str]:
    """What a stored response about the party quotes: the global IDs of its
    customers and their records (as JSON strings, quotes included, so one ID
    is never found inside another), and the values that identify it."""
    ids = marks(party)
    texts = [f'"{encode_id("Customer", pk)}"' for pk in party]
    for type_name, table in NODE_TABLES.items():
        rows = await db.fetch(f"SELECT id FROM {table} WHERE customer IN ({ids})", *party)
        texts += [f'"{encode_id(type_name, row["id"])}"' for row in rows]
    customers = await db.fetch(
        f"SELECT name, email, phone, attributes FROM customer WHERE id IN ({ids})", *party
    )
    contacts = await db.fetch(
        f"SELECT name, email, phone FROM contact WHERE customer IN ({ids})", *party
    )
    values: list[Any] = [row[column] for row in customers for column in CUSTOMER_VALUES]
    roles = await db.fetch(
        f"SELECT attributes FROM customer_role WHERE customer IN ({ids})", *party
    )
    values += [
        value
        for row in (*customers, *roles)  # a further role's attributes too
        for value in queries.load_json(row["attributes"]).values()
    ]
    values += [row[column] for row in contacts for column in CUSTOMER_VALUES]
    return texts + scrub.needles(values)


async def _rewrite_json(
    db: Database, table: str, column: str, party: list[int], scrubbed: Any
) -> int:
    rows = await db.fetch(
        f"SELECT id, {column} FROM {table} WHERE customer IN ({marks(party)})", *party
    )
    changed = 0
    for row in rows:
        before = queries.load_json(row[column])
        after = scrubbed(before)
        if after != before:
            await writes.update_row(db, table, row["id"], {column: writes.dump_json(after)})
            changed += 1
    return changed


async def _scrub_merges(db: Database, party: list[int]) -> int:
    """The before-images (and reasons) a merge kept of the party's records."""
    ids = marks(party)
    rows = await db.fetch(
        f"SELECT id, survivor, merged, survivor_before, merged_before, reason "
        f"FROM customer_merge WHERE survivor IN ({ids}) OR merged IN ({ids})",
        *party,
        *party,
    )
    for row in rows:
        values: dict[str, Any] = {"reason": ERASED if row["reason"] is not None else None}
        for end in ("survivor", "merged"):
            if row[end] in party:
                image = scrub.scrub_image(queries.load_json(row[f"{end}_before"]))
                values[f"{end}_before"] = writes.dump_json(image)
        await writes.update_row(db, "customer_merge", row["id"], values)
    return len(rows)
