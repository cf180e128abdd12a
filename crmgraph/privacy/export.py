"""A party's personal data as one machine-readable JSON document (the right of
access): every row about it in every core table, and each plugin's section
(``crmgraph_personal_data_export``), read in one transaction so the parts
agree with each other.

Rows come as stored (column names, ISO 8601 times, amounts as decimal
strings, JSON columns parsed); ``customers`` holds the party's record first,
then the records merged into it. Relationships are listed at either end, with
the other party's id and kind only: its data is not the requester's.
"""

from __future__ import annotations

from typing import Any

import pluggy

from crmgraph.db import writes
from crmgraph.db.engine import Database
from crmgraph.ids import encode_id
from crmgraph.plugin_calls import call_each
from crmgraph.plugin_names import stable_plugin_name
from crmgraph.privacy.party import marks, party_ids, plain_rows

FORMAT = "crmgraph.personal-data-export"
FORMAT_VERSION = 1
HOOK = "crmgraph_personal_data_export"

# section -> (SELECT over the party, ``{ids}`` standing for its ids; JSON columns)
SECTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "customers": (
        "SELECT * FROM customer WHERE id IN ({ids}) ORDER BY merged_into IS NOT NULL, id",
        ("attributes",),
    ),
    # every role: the primary kind's row and each further one (its typed
    # attributes, added_at / ended_at); their moves are in stageHistory by kind
    "roles": (
        "SELECT * FROM customer_role WHERE customer IN ({ids}) ORDER BY id",
        ("attributes",),
    ),
    "contacts": ("SELECT * FROM contact WHERE customer IN ({ids}) ORDER BY id", ()),
    "interactions": ("SELECT * FROM interaction WHERE customer IN ({ids}) ORDER BY id", ()),
    "needs": ("SELECT * FROM need WHERE customer IN ({ids}) ORDER BY id", ()),
    "relationships": (
        "SELECT r.id, r.kind, r.from_customer, r.to_customer, r.attributes, r.created_at, "
        "o.kind AS other_kind FROM relationship r JOIN customer o ON o.id = "
        "CASE WHEN r.from_customer IN ({ids}) THEN r.to_customer ELSE r.from_customer END "
        "WHERE r.from_customer IN ({ids}) OR r.to_customer IN ({ids}) ORDER BY r.id",
        ("attributes",),
    ),
    "notes": ("SELECT * FROM note WHERE customer IN ({ids}) ORDER BY id", ()),
    "noteMentions": (
        "SELECT m.id, m.note, m.mentioned FROM note_mention m JOIN note n ON n.id = m.note "
        "WHERE n.customer IN ({ids}) ORDER BY m.id",
        (),
    ),
    "tasks": ("SELECT * FROM task WHERE customer IN ({ids}) ORDER BY id", ()),
    "stageHistory": ("SELECT * FROM stage_change WHERE customer IN ({ids}) ORDER BY id", ()),
    "consents": ("SELECT * FROM consent_change WHERE customer IN ({ids}) ORDER BY id", ()),
    "auditTrail": (
        "SELECT * FROM audit_entry WHERE customer IN ({ids}) ORDER BY id",
        ("changes",),
    ),
    "events": (
        "SELECT id, type, customer, payload, created_at, delivered_at FROM event "
        "WHERE customer IN ({ids}) ORDER BY id",
        ("payload",),
    ),
    "matchKeys": ("SELECT * FROM customer_match_key WHERE customer IN ({ids}) ORDER BY id", ()),
    "merges": (
        "SELECT * FROM customer_merge WHERE survivor IN ({ids}) OR merged IN ({ids}) ORDER BY id",
        (
            "field_choices",
            "survivor_before",
            "merged_before",
            "moved",
            "moved_counts",
            "plugin_state",
        ),
    ),
    "erasures": (
        "SELECT * FROM customer_erasure WHERE customer IN ({ids}) ORDER BY id",
        ("customers", "counts"),
    ),
}


async def export_document(db: Database, pm: pluggy.PluginManager, pk: int) -> dict[str, Any]:
    """Everything about customer ``pk`` (already checked visible to the caller)."""
    async with db.transaction():
        party = await party_ids(db, pk)
        ids = marks(party)
        document: dict[str, Any] = {
            "format": FORMAT,
            "formatVersion": FORMAT_VERSION,
            "generatedAt": writes.now().isoformat(),
            "customerId": encode_id("Customer", pk),
            "customerIds": [encode_id("Customer", member) for member in party],
        }
        for section, (sql, json_columns) in SECTIONS.items():
            rows = await db.fetch(sql.format(ids=ids), *party * sql.count("{ids}"))
            document[section] = plain_rows(rows, json_columns)
        document["plugins"] = {  # by stable name: the same however the plugin was loaded
            stable_plugin_name(pm, plugin): section
            for plugin, section in await call_each(
                pm, HOOK, db=db, customer_pk=pk, customer_pks=tuple(party)
            )
            if section is not None
        }
    return document
