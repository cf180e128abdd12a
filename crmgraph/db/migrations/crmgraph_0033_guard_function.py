"""``crmgraph_refuse(reason)``: PostgreSQL, a function that raises (SQLSTATE
``CRG01``, the reason as its message) for the write queue's guards
(crmgraph.db.write_batch): a batch sent as one statement outside an explicit
transaction checks in the statement itself that the customer it writes to is
live, and this function's error aborts the whole statement when it is not.
SQLite: nothing (it has no write queue)."""

from crmgraph.db.migrate import raw_migration

ID = "2026-12-06T21:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "guard function"

CREATE = """
CREATE OR REPLACE FUNCTION crmgraph_refuse(reason text) RETURNS integer
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'CRG01', MESSAGE = reason;
END
$$
"""


def create_statements(engine_type: str) -> list[str]:
    return [CREATE] if engine_type == "postgres" else []


def drop_statements(engine_type: str) -> list[str]:
    return ["DROP FUNCTION crmgraph_refuse(text)"] if engine_type == "postgres" else []


forwards = raw_migration(ID, DESCRIPTION, create_statements, drop_statements)
