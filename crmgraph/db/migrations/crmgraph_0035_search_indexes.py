"""Trigram indexes for ``search`` and ``contactSearch`` (crmgraph.db.search),
over the folded columns they match (``name_folded``, ``email_folded`` of
customer and contact; phones are not searched). Without them a search that
matches nothing scanned every name and e-mail: ~60 ms at 100,000 customers.

- PostgreSQL: the ``pg_trgm`` extension (the database must offer it; creating
  it needs a role that may, as managed PostgreSQL services allow) and a GIN
  index ``gin_trgm_ops`` per column, which serve ``LIKE '%needle%'``.
- SQLite: an FTS5 table per searched table with the trigram tokenizer (SQLite
  3.34 or later), case-sensitive because the text is folded already, whose
  content is the table itself (``content=``: nothing stored twice), kept by
  triggers on insert, update of a folded column and delete, so in the
  transaction of the write; filled here for the rows already written.

Raw DDL per engine, as crmgraph_0031."""

from crmgraph.db.migrate import raw_migration

ID = "2026-12-06T22:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "search indexes"

SEARCHED = {"customer": "customer_search", "contact": "contact_search"}
COLUMNS = ("name_folded", "email_folded")


def postgres_statements() -> list[str]:
    statements = ["CREATE EXTENSION IF NOT EXISTS pg_trgm"]
    for table in SEARCHED:
        statements += [
            f"CREATE INDEX IF NOT EXISTS ix_{table}_{column}_trgm ON {table} "
            f"USING gin ({column} gin_trgm_ops)"
            for column in COLUMNS
        ]
    return statements


def sqlite_statements(table: str, fts: str) -> list[str]:
    columns = ", ".join(COLUMNS)
    new = ", ".join(f"new.{c}" for c in COLUMNS)
    old = ", ".join(f"old.{c}" for c in COLUMNS)
    insert = f"INSERT INTO {fts} (rowid, {columns}) VALUES (new.id, {new});"
    delete = f"INSERT INTO {fts} ({fts}, rowid, {columns}) VALUES ('delete', old.id, {old});"
    changed = " OR ".join(f"old.{c} IS NOT new.{c}" for c in COLUMNS)
    return [
        f"CREATE VIRTUAL TABLE {fts} USING fts5({columns}, content='{table}', "
        "content_rowid='id', tokenize='trigram case_sensitive 1')",
        f"CREATE TRIGGER {fts}_insert AFTER INSERT ON {table} BEGIN {insert} END",
        f"CREATE TRIGGER {fts}_delete AFTER DELETE ON {table} BEGIN {delete} END",
        f"CREATE TRIGGER {fts}_update AFTER UPDATE OF {columns} ON {table} "
        f"WHEN {changed} BEGIN {delete} {insert} END",
        f"INSERT INTO {fts} ({fts}) VALUES ('rebuild')",
    ]


def drop_statements(engine_type: str) -> list[str]:
    if engine_type == "postgres":
        return [
            f"DROP INDEX IF EXISTS ix_{table}_{column}_trgm"
            for table in SEARCHED
            for column in COLUMNS
        ]
    statements = []
    for fts in SEARCHED.values():
        statements += [
            f"DROP TRIGGER IF EXISTS {fts}_{event}" for event in ("insert", "delete", "update")
        ]
        statements.append(f"DROP TABLE IF EXISTS {fts}")
    return statements


def create_statements(engine_type: str) -> list[str]:
    if engine_type == "postgres":
        return postgres_statements()
    return [s for t, f in SEARCHED.items() for s in sqlite_statements(t, f)]


forwards = raw_migration(ID, DESCRIPTION, create_statements, drop_statements)
