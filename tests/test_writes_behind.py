"""A bulk COPY sent behind (crmgraph.db.turns, PostgreSQL: an import's
writes): the caller goes on before PostgreSQL has run it, the statements
still run in the order they were sent, and a COPY that fails fails the
statement after it, the COMMIT, or the end of the block that sent it
behind (a dry run rolls back without a COMMIT), so nothing of the
transaction is written and no failure goes unseen."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from crmgraph.app import AppState, with_state
from crmgraph.db.bulk import COPY_FROM_ROWS, insert_rows, writes_behind
from crmgraph.db.turns import writing_behind
from crmgraph.testing import require_postgres, settings_for
from tests.conftest import fresh_database

ROWS = COPY_FROM_ROWS * 3  # enough to go by COPY


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    require_postgres()
    with fresh_database("postgres", request, tmp_path / "unused.sqlite") as url:
        yield url


def customers(prefix: str) -> list[dict[str, Any]]:
    return [{"kind": "prospect", "name": f"{prefix} {n}"} for n in range(ROWS)]


def keys_of(pks: list[int]) -> list[dict[str, Any]]:
    return [{"customer": pk, "key_type": "EMAIL", "key_value": f"{pk}@x.example"} for pk in pks]


def contacts_of(pks: list[int]) -> list[dict[str, Any]]:
    """Contacts of these customers: a foreign key checks each (the match
    keys' has been triggers since migration 0061)."""
    return [{"customer": pk, "name": f"Contact of {pk}"} for pk in pks]


async def count(state: AppState, table: str) -> int:
    return int((await state.db.fetch(f"SELECT COUNT(*) AS n FROM {table}"))[0]["n"])


def test_writes_behind_run_in_order_while_the_caller_goes_on(postgres_url: str) -> None:
    async def work(state: AppState) -> tuple[bool, int, int]:
        db = state.db
        async with db.transaction():
            transaction: Any = db.engine.current_transaction.get()
            with writing_behind():
                pks = await insert_rows(db, "customer", customers("Behind"))
                held = transaction.sending._lock.locked()  # the COPY has the turn still
                await insert_rows(db, "customer_match_key", keys_of(pks), returning=False)
                # a read after two COPYs sent behind sees both
                seen = await count(state, "customer_match_key")
        return held, seen, await count(state, "customer WHERE name LIKE 'Behind %'")

    held, seen, written = asyncio.run(with_state(settings_for(postgres_url), work))
    assert held
    assert seen == ROWS
    assert written == ROWS


def test_a_failed_write_behind_fails_the_next_statement(postgres_url: str) -> None:
    async def work(state: AppState) -> int:
        db = state.db
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            async with db.transaction():
                with writing_behind():
                    pks = await insert_rows(db, "customer", customers("Lost"))
                    missing = [pk + 10**9 for pk in pks]  # no such customers
                    await insert_rows(db, "contact", contacts_of(missing), returning=False)
                    await count(state, "customer")  # raises the COPY's error
        return await count(state, "customer WHERE name LIKE 'Lost %'")

    assert asyncio.run(with_state(settings_for(postgres_url), work)) == 0


def test_a_failed_write_behind_fails_the_commit(postgres_url: str) -> None:
    async def work(state: AppState) -> int:
        db = state.db
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            async with db.transaction():
                with writing_behind():
                    pks = await insert_rows(db, "customer", customers("Unsaved"))
                    await insert_rows(db, "contact", contacts_of([-pk for pk in pks]), False)
        return await count(state, "customer WHERE name LIKE 'Unsaved %'")

    assert asyncio.run(with_state(settings_for(postgres_url), work)) == 0


def test_a_failed_write_behind_fails_its_block_before_a_rollback(postgres_url: str) -> None:
    """As in a dry run: the block's end raises the failure, not the ROLLBACK's silence."""

    class RollBack(Exception):
        pass

    async def work(state: AppState) -> str:
        db = state.db
        try:
            async with db.transaction():
                async with writes_behind(db):
                    pks = await insert_rows(db, "customer", customers("Dry"))
                    await insert_rows(db, "contact", contacts_of([-pk for pk in pks]), False)
                raise RollBack
        except RollBack:
            return "the failure went unseen"
        except asyncpg.ForeignKeyViolationError:
            return "raised"

    assert asyncio.run(with_state(settings_for(postgres_url), work)) == "raised"
