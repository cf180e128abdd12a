"""The ``customer_activity`` rollup: one row per customer with interactions,
lifetime totals of what the analytics facts aggregate (crmgraph.analytics.facts).

Kept exact by triggers on ``interaction`` in the writing transaction, on both
engines: an insert adds the new rows to their customers' totals; a delete or
an update (which may move rows between customers, as a merge does) counts the
touched customers again from their interactions. PostgreSQL uses statement
triggers with transition tables, so a bulk insert of a million rows updates
each customer once, in customer order (a fixed lock order for concurrent bulk
writers); SQLite has only row triggers.

Amounts are summed in cents, as integers: exact on both engines, where
SQLite's floating-point sums would depend on the order rows were added in.

The totals are lifetime totals, so they answer a question only when its
period holds every interaction; ``covers_every_interaction`` is that test,
for the query to pick this rollup or the interactions themselves.
"""

from __future__ import annotations

COLUMNS = (
    "customer_id, interactions, first_contact_at, last_contact_at, purchases, "
    "purchase_cents, last_purchase_at, rated, rating_sum"
)

TABLE = """CREATE TABLE customer_activity (
    customer_id INTEGER PRIMARY KEY,
    interactions BIGINT NOT NULL,
    first_contact_at TIMESTAMPTZ NOT NULL,
    last_contact_at TIMESTAMPTZ NOT NULL,
    purchases BIGINT NOT NULL,
    purchase_cents BIGINT NOT NULL,
    last_purchase_at TIMESTAMPTZ NULL,
    rated BIGINT NOT NULL,
    rating_sum BIGINT NOT NULL
)"""

# Serves the period test (MIN/MAX of occurred_at) and the recent-satisfaction
# windows, which read the last months of interactions across all customers.
OCCURRED_INDEX = (
    "CREATE INDEX IF NOT EXISTS ix_interaction_occurred ON interaction "
    "(occurred_at, customer, satisfaction)"
)


def totals_select(source: str, where: str = "") -> str:
    """Per-customer totals of the interactions in ``source``, in ``COLUMNS`` order."""
    return (
        "SELECT customer AS customer_id, COUNT(*) AS interactions, "
        "MIN(occurred_at) AS first_contact_at, MAX(occurred_at) AS last_contact_at, "
        "COUNT(amount) AS purchases, "
        "COALESCE(SUM(CAST(ROUND(amount * 100) AS BIGINT)), 0) AS purchase_cents, "
        "MAX(CASE WHEN amount IS NOT NULL THEN occurred_at END) AS last_purchase_at, "
        "COUNT(satisfaction) AS rated, COALESCE(SUM(satisfaction), 0) AS rating_sum "
        f"FROM {source} {where} GROUP BY customer ORDER BY customer"
    )


def recount(customers: str) -> list[str]:
    """Statements that count the customers ``customers`` (a subquery) again."""
    return [
        f"DELETE FROM customer_activity WHERE customer_id IN ({customers})",
        f"INSERT INTO customer_activity ({COLUMNS}) "
        + totals_select("interaction", f"WHERE customer IN ({customers})"),
    ]


_PG_ADD = f"""CREATE FUNCTION customer_activity_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO customer_activity AS a ({COLUMNS})
    {totals_select("new_rows")}
    ON CONFLICT (customer_id) DO UPDATE SET
        interactions = a.interactions + EXCLUDED.interactions,
        first_contact_at = LEAST(a.first_contact_at, EXCLUDED.first_contact_at),
        last_contact_at = GREATEST(a.last_contact_at, EXCLUDED.last_contact_at),
        purchases = a.purchases + EXCLUDED.purchases,
        purchase_cents = a.purchase_cents + EXCLUDED.purchase_cents,
        last_purchase_at = GREATEST(a.last_purchase_at, EXCLUDED.last_purchase_at),
        rated = a.rated + EXCLUDED.rated,
        rating_sum = a.rating_sum + EXCLUDED.rating_sum;
    RETURN NULL;
END $$"""

_PG_DELETED = "SELECT customer FROM old_rows"
_PG_RECOUNT_DELETED = (
    "CREATE FUNCTION customer_activity_deleted() RETURNS trigger LANGUAGE plpgsql AS $$\n"
    "BEGIN\n    " + ";\n    ".join(recount(_PG_DELETED)) + ";\n    RETURN NULL;\nEND $$"
)

_PG_CHANGED = (
    "SELECT o.customer FROM old_rows o JOIN new_rows n ON n.id = o.id "
    "WHERE (o.customer, o.occurred_at, o.amount, o.satisfaction) IS DISTINCT FROM "
    "(n.customer, n.occurred_at, n.amount, n.satisfaction) "
    "UNION SELECT n.customer FROM old_rows o JOIN new_rows n ON n.id = o.id "
    "WHERE (o.customer, o.occurred_at, o.amount, o.satisfaction) IS DISTINCT FROM "
    "(n.customer, n.occurred_at, n.amount, n.satisfaction)"
)
_PG_RECOUNT_UPDATED = (
    "CREATE FUNCTION customer_activity_updated() RETURNS trigger LANGUAGE plpgsql AS $$\n"
    "BEGIN\n    " + ";\n    ".join(recount(_PG_CHANGED)) + ";\n    RETURN NULL;\nEND $$"
)

_PG_CLEAR = """CREATE FUNCTION customer_activity_clear() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE customer_activity;
    RETURN NULL;
END $$"""

POSTGRES = (
    TABLE,
    OCCURRED_INDEX,
    _PG_ADD,
    _PG_RECOUNT_DELETED,
    _PG_RECOUNT_UPDATED,
    _PG_CLEAR,
    "CREATE TRIGGER customer_activity_insert AFTER INSERT ON interaction "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION customer_activity_add()",
    "CREATE TRIGGER customer_activity_delete AFTER DELETE ON interaction "
    "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION customer_activity_deleted()",
    "CREATE TRIGGER customer_activity_update AFTER UPDATE ON interaction "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION customer_activity_updated()",
    "CREATE TRIGGER customer_activity_truncate AFTER TRUNCATE ON interaction "
    "FOR EACH STATEMENT EXECUTE FUNCTION customer_activity_clear()",
)


def _later(column: str) -> str:
    """The later of the stored and the new value, NULL only if both are:
    SQLite's two-argument MAX() is NULL when either is."""
    return (
        f"{column} = CASE WHEN {column} IS NULL OR excluded.{column} > {column} "
        f"THEN excluded.{column} ELSE {column} END"
    )


_SQLITE_ADD = f"""CREATE TRIGGER customer_activity_insert AFTER INSERT ON interaction BEGIN
    INSERT INTO customer_activity ({COLUMNS}) VALUES (
        NEW.customer, 1, NEW.occurred_at, NEW.occurred_at, NEW.amount IS NOT NULL,
        COALESCE(CAST(ROUND(NEW.amount * 100) AS BIGINT), 0),
        CASE WHEN NEW.amount IS NOT NULL THEN NEW.occurred_at END,
        NEW.satisfaction IS NOT NULL, COALESCE(NEW.satisfaction, 0))
    ON CONFLICT (customer_id) DO UPDATE SET
        interactions = interactions + 1,
        first_contact_at = CASE WHEN excluded.first_contact_at < first_contact_at
            THEN excluded.first_contact_at ELSE first_contact_at END,
        {_later("last_contact_at")},
        purchases = purchases + excluded.purchases,
        purchase_cents = purchase_cents + excluded.purchase_cents,
        {_later("last_purchase_at")},
        rated = rated + excluded.rated,
        rating_sum = rating_sum + excluded.rating_sum;
END"""


def _sqlite_recount_trigger(name: str, event: str, customers: str) -> str:
    body = ";\n    ".join(recount(customers))
    return f"CREATE TRIGGER {name} AFTER {event} ON interaction BEGIN\n    {body};\nEND"


SQLITE = (
    TABLE,
    OCCURRED_INDEX,
    _SQLITE_ADD,
    _sqlite_recount_trigger("customer_activity_delete", "DELETE", "OLD.customer"),
    _sqlite_recount_trigger(
        "customer_activity_update",
        "UPDATE OF customer, occurred_at, amount, satisfaction",
        "OLD.customer, NEW.customer",
    ),
)

BACKFILL = f"INSERT INTO customer_activity ({COLUMNS}) " + totals_select("interaction")


def create_statements(engine_type: str) -> tuple[str, ...]:
    """Table, index and triggers for the engine, then the existing history."""
    return (*(POSTGRES if engine_type == "postgres" else SQLITE), BACKFILL)


def drop_statements(engine_type: str) -> tuple[str, ...]:
    if engine_type == "postgres":
        triggers = [
            f"DROP TRIGGER customer_activity_{t} ON interaction"
            for t in ("insert", "delete", "update", "truncate")
        ]
        functions = [
            f"DROP FUNCTION customer_activity_{f}()" for f in ("add", "deleted", "updated", "clear")
        ]
    else:
        triggers = [f"DROP TRIGGER customer_activity_{t}" for t in ("insert", "delete", "update")]
        functions = []
    return (
        *triggers,
        *functions,
        "DROP INDEX ix_interaction_occurred",
        "DROP TABLE customer_activity",
    )


def covers_every_interaction(ts: str) -> str:
    """A condition with two placeholders (the period's start and end, as ``ts``
    casts): true when the period holds every interaction, so lifetime totals
    are the period's totals. MIN and MAX read one end of
    ``ix_interaction_occurred`` each."""
    return (
        f"(SELECT MIN(occurred_at) FROM interaction) >= {ts} "
        f"AND (SELECT MAX(occurred_at) FROM interaction) < {ts}"
    )
