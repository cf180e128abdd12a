"""``churn_basis``: for each customer whose primary role is retained or
expanding (the churn list's candidates, ``PHASES``), one row holding what
its churn signals are computed from and that does not depend on the moment
they are computed as of, kept by triggers in the writing transaction
(PostgreSQL only; SQLite ranks from the interactions, crmgraph.analytics.churn):

- its tally key (``deleted``, ``kind``, ``stage``, ``phase``, ``further``),
  copied from ``customer_tally_key`` (crmgraph.db.customer_counts), so a
  filter the customer tally answers selects the candidates from this table
  alone (``t.phase IN (...)`` and so on, the tally's own conditions);
- its last interaction and last purchase (``customer_activity``'s);
- its ratings of the ``RATING_DAYS`` before its last rating, as two arrays:
  their times in order (``rated_at``) and the running sum of their scores
  (``rating_cum``, one longer: ``rating_cum[k + 1]`` is the sum of the
  first ``k``). A window's number of ratings and their sum are then two
  binary searches (``width_bucket`` counts the times at or before a moment)
  and two subscripts, for any window that starts at most ``RATING_DAYS``
  before a moment after the customer's last rating; older ratings can be in
  no such window, so they are not kept.

Why: the list counts every candidate at or above a minimum score, so every
candidate is scored (a quarter of the customers), and the satisfaction
windows are relative to the moment: reading them took a hash aggregate of
every rating of the last 180 days (1,750,000 at a million customers) joined
with the role holders, and the recency a join with ``customer_activity``,
most of the churn page's 2.2 s. With this table a candidate is one row read
in one scan, its signals computed from its own columns.

Triggers, not code, for the reasons of crmgraph.db.activity: statement
triggers on ``interaction`` (its rows' customers) and on
``customer_tally_key`` (a customer entering or leaving the phases, changing
kind, deleted) recompute the affected customers' rows from ``interaction``
(``ix_interaction_customer_analytics``, index-only). Each first locks the
customers' tally keys in id order (as crmgraph.db.customer_counts does), so
the statement that then reads ``interaction`` sees what a concurrent writer
of the same customer committed: two writers of one customer never both
write a row computed without the other's interaction.
"""

from __future__ import annotations

from crmgraph.db import customer_counts
from crmgraph.db.trigger_sql import function

TABLE = "churn_basis"
PHASES = ("RETENTION", "EXPANSION")  # crmgraph.analytics.rules.CHURN_PHASES when made
RATING_DAYS = 180  # the widest window ending after the last rating that is read
KEY = ("deleted", "kind", "stage", "phase", "further")
COLUMNS = (*KEY, "last_contact_at", "last_purchase_at", "rated_at", "rating_cum")
KEYS = customer_counts.KEYS
# no ratings (written without braces, which the statements' placeholders are)
NO_RATINGS = "CAST(ARRAY[] AS TIMESTAMPTZ[])"
NO_SUMS = "ARRAY[0]"

# the customers of the interactions an update changed, on the ``side`` o(ld) or n(ew)
_CHANGED = (
    "SELECT {side}.customer FROM old_rows o JOIN new_rows n ON n.id = o.id "
    "WHERE ({o}) IS DISTINCT FROM ({n})"
)
_WATCHED = ("customer", "occurred_at", "amount", "satisfaction")


def _changed_interactions() -> str:
    old = ", ".join(f"o.{c}" for c in _WATCHED)
    new = ", ".join(f"n.{c}" for c in _WATCHED)
    return " UNION ".join(_CHANGED.format(side=s, o=old, n=new) for s in ("o", "n"))


# (trigger, table, event, the customers it changed, as a subquery)
TRIGGERS = (
    ("churn_basis_interaction_insert", "interaction", "INSERT", "SELECT customer FROM new_rows"),
    ("churn_basis_interaction_delete", "interaction", "DELETE", "SELECT customer FROM old_rows"),
    ("churn_basis_interaction_update", "interaction", "UPDATE", _changed_interactions()),
    ("churn_basis_key_insert", KEYS, "INSERT", "SELECT customer FROM new_rows"),
    ("churn_basis_key_delete", KEYS, "DELETE", "SELECT customer FROM old_rows"),
    (
        "churn_basis_key_update",
        KEYS,
        "UPDATE",
        "SELECT customer FROM old_rows UNION SELECT customer FROM new_rows",
    ),
)


# the ratings' order: by time, ties by score (the index's columns, so the
# ratings are read index-only). Equal ratings of one moment are peers, given
# the same running sum (the default frame), so their order in the arrays
# does not matter; a window's ends count every rating of a moment.
ORDER = "q.occurred_at, q.satisfaction"


def rows_of(ids: str | None) -> str:
    """The rows of the customers ``ids`` (a subquery; None: every customer)
    as they are now: those whose tally key is in ``PHASES``."""
    phases = ", ".join(f"'{p}'" for p in PHASES)
    chosen = f" AND k.customer IN ({ids})" if ids is not None else ""
    key = ", ".join(f"k.{c}" for c in KEY)
    return (
        f"SELECT k.customer, {key}, x.last_contact_at, x.last_purchase_at, "
        f"COALESCE(r.rated_at, {NO_RATINGS}) AS rated_at, "
        f"COALESCE(r.rating_cum, {NO_SUMS}) AS rating_cum "
        f"FROM {KEYS} k LEFT JOIN LATERAL (SELECT MAX(i.occurred_at) AS last_contact_at, "
        "MAX(CASE WHEN i.amount IS NOT NULL THEN i.occurred_at END) AS last_purchase_at, "
        "MAX(CASE WHEN i.satisfaction IS NOT NULL THEN i.occurred_at END) AS last_rated_at "
        "FROM interaction i WHERE i.customer = k.customer) x ON true "
        f"LEFT JOIN LATERAL (SELECT array_agg(q.occurred_at ORDER BY {ORDER}) AS rated_at, "
        f"ARRAY[0] || array_agg(CAST(q.cum AS INTEGER) ORDER BY {ORDER}) AS rating_cum "
        "FROM (SELECT i.occurred_at, i.satisfaction, SUM(i.satisfaction) OVER "
        f"(ORDER BY {ORDER.replace('q.', 'i.')}) AS cum "
        "FROM interaction i WHERE i.customer = k.customer "
        "AND i.satisfaction IS NOT NULL AND i.occurred_at >= x.last_rated_at - "
        f"INTERVAL '{RATING_DAYS} days') q) r ON true WHERE k.phase IN ({phases}){chosen}"
    )


def refresh(ids: str) -> list[str]:
    """The statements bringing the rows of the customers ``ids`` up to
    date: the rows of those no longer in the phases (or gone) deleted, the
    others written over in place (an update that changes no indexed column,
    so PostgreSQL can keep it on the row's page)."""
    phases = ", ".join(f"'{p}'" for p in PHASES)
    changed = ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS)
    return [
        customer_counts.lock_keys(ids),
        f"DELETE FROM {TABLE} b WHERE b.customer IN ({ids}) AND NOT EXISTS (SELECT 1 FROM "
        f"{KEYS} k WHERE k.customer = b.customer AND k.phase IN ({phases}))",
        f"INSERT INTO {TABLE} (customer, {', '.join(COLUMNS)}) {rows_of(ids)} "
        f"ON CONFLICT (customer) DO UPDATE SET {changed}",
    ]


def _triggers() -> list[str]:
    made = []
    for name, table, event, changed in TRIGGERS:
        side = "OLD TABLE AS old_rows" if event == "DELETE" else "NEW TABLE AS new_rows"
        if event == "UPDATE":
            side = "OLD TABLE AS old_rows NEW TABLE AS new_rows"
        ids = f"SELECT DISTINCT customer FROM ({changed}) c WHERE customer IS NOT NULL"
        made.append(function(name, refresh(ids)))
        made.append(
            f"CREATE TRIGGER {name} AFTER {event} ON {table} REFERENCING {side} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
        )
    cleared = f"rated_at = {NO_RATINGS}, rating_cum = {NO_SUMS}"
    emptied = [
        (
            "churn_basis_interaction_truncate",
            "interaction",
            f"UPDATE {TABLE} SET last_contact_at = NULL, last_purchase_at = NULL, {cleared}",
        ),
        ("churn_basis_key_truncate", KEYS, f"DELETE FROM {TABLE}"),
    ]
    for name, table, statement in emptied:
        made.append(function(name, [statement]))
        made.append(
            f"CREATE TRIGGER {name} AFTER TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
        )
    return made


TRUNCATE_TRIGGERS = (
    ("churn_basis_interaction_truncate", "interaction"),
    ("churn_basis_key_truncate", KEYS),
)


def rebuild() -> list[str]:
    """Every row computed again (after a load with the triggers off, as the
    benchmark's seed does)."""
    return [
        f"DELETE FROM {TABLE}",
        f"INSERT INTO {TABLE} (customer, {', '.join(COLUMNS)}) {rows_of(None)}",
        f"ANALYZE {TABLE}",
    ]


def create_statements(engine_type: str) -> list[str]:
    """The table, its triggers, every row computed once (PostgreSQL only)."""
    if engine_type != "postgres":
        return []
    table = (
        f"CREATE TABLE {TABLE} (customer BIGINT PRIMARY KEY, deleted INTEGER NOT NULL, "
        "kind TEXT NOT NULL, stage TEXT NOT NULL, phase TEXT NOT NULL, further TEXT NOT NULL, "
        "last_contact_at TIMESTAMPTZ, last_purchase_at TIMESTAMPTZ, "
        "rated_at TIMESTAMPTZ[] NOT NULL, rating_cum INTEGER[] NOT NULL)"
    )
    return [table, *_triggers(), *rebuild()]


def drop_statements(engine_type: str) -> list[str]:
    if engine_type != "postgres":
        return []
    named = [(name, table) for name, table, _, _ in TRIGGERS] + list(TRUNCATE_TRIGGERS)
    triggers = [f"DROP TRIGGER {name} ON {table}" for name, table in named]
    functions = [f"DROP FUNCTION {name}()" for name, _ in named]
    return [*triggers, *functions, f"DROP TABLE {TABLE}"]
