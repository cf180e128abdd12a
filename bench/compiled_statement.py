"""Benchmark: what PostgreSQL spends on one compiled read of an object with a
variant per customer type.

A ``customer(id:)`` of every type, with its relations and its roles of every
type, is planned and rendered by the compiled path's own ``Planner`` and
``render``, in one process, two ways:

- ``once``: what the server sends. A nested read that every type selects
  (roles, contacts, needs, interactions, consents, owner, team, a role's stage
  history) is selected once per row beside the variants
  (``Render.computed_once``, kept apart by ``Dialect.kept_apart``);
- ``inline``: each variant with its own copy, as before 2026-12-07 (and as
  SQLite still writes it): the dialect with ``kept_apart = None``.

Each statement is prepared (no statement cache: asyncpg keeps no statement
over 15 KB anyway) and run twice on one connection, the two ways alternating
round by round on a demo database; it prints their medians and the ratio.

    .venv/bin/python -m bench.compiled_statement --rounds 20
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import asyncpg
from graphql import parse
from graphql.execution.values import VariableValues, get_variable_values
from graphql.utilities import get_operation_ast

from crmgraph.app import AppState, with_state
from crmgraph.compiled.dialect import Postgres
from crmgraph.compiled.fields import FieldTable
from crmgraph.compiled.plan import Planner
from crmgraph.compiled.render import render
from crmgraph.demo.seed import seed_demo
from crmgraph.query_cost import CostWalker, QueryLimits
from crmgraph.schema.ids import encode_id
from crmgraph.testing.databases import fresh_postgres_database, migrate_for, settings_for

EVERY_TYPE = (
    "... on Client { segment industry taxId website annualRevenue preferredLanguage } "
    "... on Prospect { source estimatedValue interest } "
    "... on Supplier { rating taxId category paymentTermsDays } "
    "... on Employee { jobTitle department hireDate } "
    "... on Competitor { marketShare strengths weaknesses agreementSignedOn } "
    "... on Guarantor { guaranteedAmount guaranteeType documentId } "
    "... on Beneficiary { sharePercent relationToHolder } "
    "... on AgendaContact { agendaCategory: category notesShort }"
)
EVERY_ROLE = " ".join(
    f"... on {name}Role {{ kind }}"
    for name in ("Client", "Prospect", "Supplier", "Employee", "Competitor", "Guarantor")
)
RELATIONS = (
    "owner { id name email } team { id name } contacts { id name email phone } "
    "needs { id title status } interactions(first: 4) { nodes { id subject occurredAt } "
    "pageInfo { hasNextPage endCursor } } consents { channel purpose granted } "
    "roles { __typename kind primary stage stageLabel "
    f"{EVERY_ROLE} stageHistory {{ id fromStage toStage at }} }}"
)
QUERY = (
    "query($id: ID!) { customer(id: $id) { __typename id name stage stageLabel "
    f"{EVERY_TYPE} {RELATIONS} }} }}"
)


class Inline(Postgres):
    """PostgreSQL written as SQLite is: a copy of each read per variant."""

    kept_apart = None


def statements(state: AppState, customer: int) -> dict[str, tuple[str, list[Any]]]:
    schema = state.schema._schema
    document = parse(QUERY)
    operation = get_operation_ast(document)
    assert operation is not None
    raw = {"id": encode_id("Customer", customer)}
    walker = CostWalker(schema, document, operation, raw, QueryLimits())
    plan = Planner(walker, operation, FieldTable.from_catalog(state.catalog)).plan()
    variables = get_variable_values(schema, operation.variable_definitions or (), raw)
    assert isinstance(variables, VariableValues)
    return {
        name: render(plan, dialect, state.schema, variables, state.types, None, state.settings)
        for name, dialect in (("once", Postgres()), ("inline", Inline()))
    }


async def timed(conn: asyncpg.Connection, sql: str, args: list[Any]) -> tuple[float, float]:
    """Milliseconds to prepare the statement, and to run it (the second run)."""
    start = time.perf_counter()
    prepared = await conn.prepare(sql)
    prepared_at = time.perf_counter()
    first = await prepared.fetchval(*args)
    ran_at = time.perf_counter()
    assert first == await prepared.fetchval(*args)
    return (prepared_at - start) * 1000, (time.perf_counter() - ran_at) * 1000


async def measure(url: str, rounds: int) -> None:
    settings = settings_for(url)
    await migrate_for(settings)

    async def work(state: AppState) -> dict[str, tuple[str, list[Any]]]:
        await seed_demo(state.db, state.catalog, customers=200)
        rows = await state.db.fetch("SELECT MIN(id) AS id FROM customer")
        return statements(state, rows[0]["id"])

    rendered = await with_state(settings, work)
    conn = await asyncpg.connect(url, statement_cache_size=0)
    try:
        answers = {name: await conn.fetchval(sql, *args) for name, (sql, args) in rendered.items()}
        assert answers["once"] == answers["inline"], "the two statements answer differently"
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in rendered}
        for _ in range(rounds):
            for name, (sql, args) in rendered.items():
                times[name].append(await timed(conn, sql, args))
    finally:
        await conn.close()
    medians = {}
    for name, (sql, _) in rendered.items():
        prepare = statistics.median(t[0] for t in times[name])
        run = statistics.median(t[1] for t in times[name])
        medians[name] = prepare + run
        print(
            f"{name:>6}: {len(sql) / 1024:6.0f} KB, prepare {prepare:6.1f} ms, "
            f"run {run:6.1f} ms (medians of {rounds})"
        )
    print(f"once / inline: {medians['once'] / medians['inline']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with fresh_postgres_database() as url:
        asyncio.run(measure(url, args.rounds))


if __name__ == "__main__":
    main()
