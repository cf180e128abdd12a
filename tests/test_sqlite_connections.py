"""The SQLite connections kept for reads and for writes (crmgraph.db.sqlite_connections)."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from crmgraph.app import AppState, with_state
from crmgraph.db.engine import StatementCounter, current_counter
from crmgraph.testing import settings_for


def test_kept_connections_see_each_commit_refuse_writes_and_close(
    tmp_path: Path, sqlite_template: Path
) -> None:
    shutil.copyfile(sqlite_template, tmp_path / "crm.sqlite")  # migrated once per run
    settings = settings_for(f"sqlite:///{tmp_path / 'crm.sqlite'}")
    count = "SELECT COUNT(*) AS n FROM team"

    async def work(state: AppState) -> None:
        db, readers = state.db, state.db.readers
        assert readers is not None
        counter = StatementCounter()
        token = current_counter.set(counter)
        try:
            assert await db.read_value(count) == 0
            kept = list(readers._idle)
            assert len(kept) == 1
            async with db.transaction():
                await db.fetch("INSERT INTO team (name) VALUES ({})", "North")
                # inside a transaction: its own connection, which sees the row
                assert await db.read_value(count) == 1
            assert await db.read_value(count) == 1  # committed: seen on the kept one
            assert readers._idle == kept
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                await readers.fetch_value("DELETE FROM team")
            assert readers._idle == []  # a connection that failed is closed, not kept
            # concurrent reads open more connections, and keep at most `size`
            values = await asyncio.gather(*(db.read_value(count) for _ in range(10)))
            assert values == [1] * 10
            assert 1 <= len(readers._idle) <= readers.size
        finally:
            current_counter.reset(token)
        assert counter.count == 15  # every statement counted, on either connection
        await db.stop()
        assert db.readers is None and readers._idle == []
        await db.start(settings)  # with_state stops it again

    asyncio.run(with_state(settings, work))


def test_kept_writers_serve_transactions_and_are_closed_when_not_clean(
    tmp_path: Path, sqlite_template: Path
) -> None:
    """A write transaction ended by COMMIT or ROLLBACK gives its connection
    back to be kept; one cancelled while BEGIN IMMEDIATE waits for the lock
    (which aiosqlite's thread would take later) is closed, and the lock is
    free for the next writer once the holder lets go."""
    path = tmp_path / "crm.sqlite"
    shutil.copyfile(sqlite_template, path)
    settings = settings_for(f"sqlite:///{path}")

    async def work(state: AppState) -> None:
        db = state.db
        writers = db.engine.writers  # type: ignore[attr-defined]
        async with db.transaction():
            await db.fetch("INSERT INTO team (name) VALUES ({})", "North")
        (kept,) = writers._idle
        with pytest.raises(RuntimeError):
            async with db.transaction():
                await db.fetch("INSERT INTO team (name) VALUES ({})", "Lost")
                raise RuntimeError("rolled back")
        assert writers._idle == [kept]  # the same connection, through a rollback too
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another process writing: the lock is taken
        waiting = asyncio.ensure_future(db.transaction().__aenter__())
        while writers._idle:  # until the waiting transaction has taken the kept connection
            await asyncio.sleep(0)
        waiting.cancel()
        holder.execute("ROLLBACK")  # its BEGIN, in aiosqlite's thread, now takes the lock
        holder.close()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert writers._idle == []  # closed (rolling its BEGIN back), not kept
        async with db.transaction():  # nobody holds the lock now
            await db.fetch("INSERT INTO team (name) VALUES ({})", "South")
        names = await db.fetch("SELECT name FROM team ORDER BY name")
        assert [row["name"] for row in names] == ["North", "South"]
        await db.stop()
        assert writers._idle == [] and not writers.keeping
        await db.start(settings)  # with_state stops it again

    asyncio.run(with_state(settings, work))


def test_foreign_keys_hold_on_every_connection_without_a_pragma_per_statement(
    tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Foreign keys are a setting of each connection, made once as it opens
    (sqlite_connections.with_foreign_keys). piccolo sent ``PRAGMA
    foreign_keys = 1`` before every statement, a round trip to the
    connection's thread each (13 per createCustomer), which inside a
    transaction does nothing. A row naming no customer is still refused,
    in a transaction and outside one."""
    shutil.copyfile(sqlite_template, tmp_path / "crm.sqlite")
    settings = settings_for(f"sqlite:///{tmp_path / 'crm.sqlite'}")
    sent: list[str] = []
    execute = aiosqlite.Connection.execute

    def recorded(self: aiosqlite.Connection, sql: str, parameters: Any = None) -> Any:
        sent.append(sql)
        return execute(self, sql, parameters)

    monkeypatch.setattr(aiosqlite.Connection, "execute", recorded)
    orphan = (
        "INSERT INTO contact (customer, name, created_at, updated_at) "
        "VALUES (987654, 'nobody''s', '2026-01-01', '2026-01-01')"
    )

    async def work(state: AppState) -> None:
        db = state.db
        async with db.transaction():  # the kept writer opens (its one pragma)
            await db.fetch("INSERT INTO team (name) VALUES ({})", "North")
        sent.clear()
        for name in ("South", "East"):
            async with db.transaction():
                await db.fetch("INSERT INTO team (name) VALUES ({})", name)
        await db.fetch("UPDATE team SET name = {} WHERE name = {}", "West", "East")
        assert len(sent) == 7  # 2 x (BEGIN, INSERT, COMMIT), the UPDATE
        assert not [sql for sql in sent if "PRAGMA" in sql]
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
            async with db.transaction():
                await db.fetch(orphan)
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
            await db.fetch(orphan)

    asyncio.run(with_state(settings, work))
