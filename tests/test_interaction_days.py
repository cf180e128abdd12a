"""The tally ``interaction_day`` (crmgraph.db.activity.DAYS) that the reports over
every active customer read: it keeps a stated empty outcome apart from no
outcome, leaves out unrated, unbought interactions, deletes a key whose last
row goes, and a report read from it (every active customer) equals the same
report joined with the same customers (another scope that selects them) —
satisfaction, and revenue by month with its buyers from ``purchase_month`` — on
both engines, for periods that start and end on a day boundary, inside a day,
or inside one day."""

from __future__ import annotations

import asyncio
import datetime

from crmgraph.analytics.needs import needs_summary
from crmgraph.analytics.revenue import revenue
from crmgraph.analytics.satisfaction import GROUPINGS, satisfaction
from crmgraph.analytics.scope import AnalyticsScope
from crmgraph.app import AppState, with_state
from crmgraph.db import activity, queries, tallies
from crmgraph.demo import seed_demo
from crmgraph.testing import settings_for
from tests.helpers import CUT_END, CUT_START, RECOUNT_NOW, insert_customer

T0 = datetime.datetime(2026, 3, 1, tzinfo=datetime.UTC)
FUTURE = datetime.datetime(2100, 1, 1, tzinfo=datetime.UTC)


def at(days: int, hours: int = 0) -> datetime.datetime:
    return T0 + datetime.timedelta(days=days, hours=hours)


async def tally(state: AppState) -> list[tuple]:
    rows = await state.db.fetch(
        f"SELECT {activity.DAYS.columns} FROM interaction_day "
        "ORDER BY day, channel, outcome, outcome_stated, direction"
    )
    return [tuple(str(v) for v in r.values()) for r in rows]


async def recounted(state: AppState) -> list[tuple]:
    sql = activity.DAYS.totals_select("interaction", sqlite=state.db.is_sqlite)
    return [tuple(str(v) for v in r.values()) for r in await state.db.fetch(sql)]


async def log(state: AppState, rows: list[tuple]) -> None:
    for customer, when, channel, outcome, rating, amount in rows:
        await state.db.fetch(
            "INSERT INTO interaction (customer, channel, direction, subject, occurred_at, "
            "outcome, satisfaction, amount) VALUES ({}, {}, 'INBOUND', 's', {}, {}, {}, {})",
            customer, channel, when, outcome, rating, amount,
        )  # fmt: skip


def test_the_tally_keeps_outcomes_apart_and_drops_emptied_keys(database_url: str) -> None:
    async def work(state: AppState) -> None:
        a = await insert_customer(state, "A", at(0), [("client", "interest", at(0))])
        await log(state, [
            (a, at(1, 3), "EMAIL", None, 4, None),
            (a, at(1, 5), "EMAIL", "", 2, None),
            (a, at(1, 6), "EMAIL", "", None, 10.5),
            (a, at(1, 7), "EMAIL", "won", None, None),  # neither rated nor bought
        ])  # fmt: skip
        kept = await tally(state)
        assert kept == await recounted(state)
        # (outcome, stated, entries, rated, rating sum, purchases, cents)
        assert [(r[2], r[3], r[5], r[6], r[7], r[9], r[10]) for r in kept] == [
            ("", "0", "1", "1", "4", "0", "0"),
            ("", "1", "2", "1", "2", "1", "1050"),
        ]
        found = await satisfaction(
            state.db, AnalyticsScope.create(state.db, queries.CustomerQuery()), "OUTCOME"
        )
        assert [(r.key, r.rated, r.average) for r in found.overall] == [
            ("", 1, 2.0),
            (None, 1, 4.0),
        ]
        await state.db.fetch("UPDATE interaction SET outcome = 'lost' WHERE outcome = ''")
        assert await tally(state) == await recounted(state)
        assert len(await tally(state)) == 2
        await state.db.fetch("DELETE FROM interaction WHERE outcome IS NULL")
        assert await tally(state) == await recounted(state)
        assert [r[2] for r in await tally(state)] == ["lost"]

    asyncio.run(with_state(settings_for(database_url), work))


def test_reports_from_the_tally_equal_the_joined_reports(database_url: str) -> None:
    async def work(state: AppState) -> None:
        db = state.db
        ids = [
            await insert_customer(state, f"C{n}", at(0), [("client", "interest", at(0))])
            for n in range(4)
        ]
        rows = [
            (ids[n % 4], at(n % 40, n % 24), ("EMAIL", "PHONE", "WEB")[n % 3],
             (None, "", "won", "lost")[n % 4], (None, 1, 2, 3, 4, 5)[n % 6],
             None if n % 5 else n + 0.25)
            for n in range(120)
        ]  # fmt: skip
        await log(state, rows)
        await db.fetch("UPDATE customer SET deleted_at = {} WHERE id = {}", at(50), ids[3])
        periods = [
            (None, FUTURE),
            (at(3), at(30)),  # whole days
            (at(3, 5), at(30, 7)),  # inside a day at both ends
            (at(7, 2), at(7, 20)),  # inside one day
            (at(9), at(9)),  # empty
            (at(31), at(61)),  # whole months (April)
            (at(-1, 5), at(61, 2)),  # whole months and both ends
        ]
        bought = 0
        # every active customer (the tally), and the same customers otherwise
        everyone = queries.CustomerQuery()
        joined = queries.CustomerQuery(created_before=FUTURE)
        for starts, ends in periods:
            for by in GROUPINGS:
                for bucket in ("DAY", "MONTH", "YEAR"):
                    tallied = AnalyticsScope.create(db, everyone, starts, ends)
                    other = AnalyticsScope.create(db, joined, starts, ends)
                    assert tallied.left_out() is not None and other.left_out() is None
                    expected = await satisfaction(db, other, by, bucket)
                    assert await satisfaction(db, tallied, by, bucket) == expected, (
                        starts, ends, by, bucket,
                    )  # fmt: skip
            monthly = await revenue(
                db, AnalyticsScope.create(db, everyone, starts, ends), "KIND", "MONTH"
            )
            joined_monthly = await revenue(
                db, AnalyticsScope.create(db, joined, starts, ends), "KIND", "MONTH"
            )
            assert monthly == joined_monthly, (starts, ends)
            bought += sum(r.purchases for r in monthly)
        assert bought > 0

    asyncio.run(with_state(settings_for(database_url), work))


def test_a_period_splits_into_whole_days_and_edges() -> None:
    split = tallies.DaySplit.of(at(1, 5), at(4, 2))
    assert split.days == (at(2).date(), at(4).date())
    assert split.edges == ((at(1, 5), at(2)), (at(4), at(4, 2)))
    aligned = tallies.DaySplit.of(at(1), at(4))
    assert aligned.days == (at(1).date(), at(4).date()) and aligned.edges == ()
    inside = tallies.DaySplit.of(at(1, 5), at(1, 9))
    assert inside.days is None and inside.edges == ((at(1, 5), at(1, 9)),)
    assert tallies.DaySplit.of(at(1, 5), at(1, 5)) == tallies.DaySplit(None, ())


def test_needs_of_every_active_customer_equal_the_joined_needs(database_url: str) -> None:
    """Needs over every active customer are every need less the deleted
    customers' (crmgraph.analytics.needs): the same groups, counts and volumes
    as joining each need with the customers in scope, and a group whose
    volumes are all the deleted customers' has no volume (NULL, not 0)."""

    async def work(state: AppState) -> None:
        db = state.db
        await seed_demo(db, state.catalog, customers=200, now=RECOUNT_NOW)
        gone = await db.fetch(
            "SELECT DISTINCT customer FROM need WHERE volume IS NOT NULL ORDER BY customer LIMIT 15"
        )
        ids = [r["customer"] for r in gone]
        await db.fetch("UPDATE need SET category = 'only deleted' WHERE customer = {}", ids[0])
        # one group: the deleted customer's needs with volumes, an active one's without
        await db.fetch(
            "UPDATE need SET category = 'mixed', unit = 'kg' WHERE customer = {}", ids[1]
        )
        kept = ", ".join(str(pk) for pk in ids)
        await db.fetch(
            "UPDATE need SET category = 'mixed', unit = 'kg', volume = NULL WHERE id = "
            f"(SELECT MIN(id) FROM need WHERE customer NOT IN ({kept}))"
        )
        for pk in ids:
            await db.fetch("UPDATE customer SET deleted_at = {} WHERE id = {}", RECOUNT_NOW, pk)
        seen = 0
        for starts, ends in ((None, RECOUNT_NOW), (CUT_START, CUT_END)):
            tallied = AnalyticsScope.create(db, queries.CustomerQuery(), starts, ends)
            joined = AnalyticsScope.create(
                db, queries.CustomerQuery(created_before=FUTURE), starts, ends
            )
            found = await needs_summary(db, tallied)
            assert found == await needs_summary(db, joined), (starts, ends)
            assert "only deleted" not in {g.category for g in found.groups}
            seen += found.total
        assert seen > 0
        everything = await needs_summary(db, AnalyticsScope.create(db, queries.CustomerQuery()))
        mixed = [(g.needs, g.volume) for g in everything.groups if g.category == "mixed"]
        assert mixed == [(1, None)]

    asyncio.run(with_state(settings_for(database_url), work))
