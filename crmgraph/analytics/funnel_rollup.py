"""The lifecycle funnel's rows from ``stage_flow`` (crmgraph.db.stage_flow)
instead of the whole stage history (issue 28): the same rows, part by part,
as crmgraph.analytics.funnel's statement, for the scopes the rollup answers.

It answers a scope of every active customer (a type filter allowed: it is a
filter on the history's type), with no other filter and no row scope, over
a period that ends after every entry and every role's ``added_at`` and
``ended_at`` (so every stay ended by then has ended, and every role added or
ended has been): a report "until now". Any other scope (filters, a row
scope, deleted customers, a period ending in the past) reads the history.

- entries, moves and the phase counts of regular entries: the sums of
  ``stage_flow`` from the period's first whole day on, plus the entries of
  the customers with an entry on the period's first partial day counted
  from the history (theirs alone can differ between the period's start and
  that day's end: every instant a measure compares is one of their entries');
- ``current`` and the phases' ``current``: the open-stay measures;
- the phase counts of irregular customers: one by one, as the history path;
- for a period starting before the first entry (``before_history``): the
  measures' sums over every day (``stage_flow.WHOLE``), a few hundred rows;
- medians (``medians``): the period's histogram of stay lengths in whole
  days (``lengths``: measure ``l`` for a period starting before the first
  entry; else ``m`` of the months it covers whole plus its first partial
  month's stays from the history) locates each stage's one or two middle
  stays, whose exact lengths are read from the history by
  ``ix_stage_change_stay``, a few rows per stage.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from dataclasses import replace
from typing import Any

from crmgraph.analytics.scope import AnalyticsScope
from crmgraph.analytics.sql import Sql, literal
from crmgraph.db import queries, stage_flow
from crmgraph.db.engine import Database

DAY = datetime.timedelta(days=1)
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def answerable(scope: AnalyticsScope) -> bool:
    """Whether the scope's customers are those the rollup counts."""
    return replace(scope.customers, kinds=()) == queries.CustomerQuery()


async def until_now(db: Database, scope: AnalyticsScope) -> bool:
    """Whether the period ends after every entry and role date (indexed maxima)."""
    rows = await db.fetch(
        "SELECT (SELECT MAX(at) FROM stage_change) AS entry, "
        "(SELECT MAX(left_at) FROM stage_change WHERE left_at IS NOT NULL) AS stay_end, "
        "(SELECT MAX(added_at) FROM customer_role WHERE added_at IS NOT NULL) AS added, "
        "(SELECT MAX(ended_at) FROM customer_role WHERE ended_at IS NOT NULL) AS ended"
    )
    ends = scope.ends_at
    for value in rows[0].values():
        if value is None:
            continue
        if isinstance(value, str):  # SQLite
            value = datetime.datetime.fromisoformat(value)
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        if value >= ends:
            return False
    return True


async def before_history(db: Database, scope: AnalyticsScope) -> bool:
    """Whether the period starts at or before the first entry (indexed
    minimum): every entry, and every instant compared, is then in it."""
    rows = await db.fetch("SELECT MIN(at) AS first FROM stage_change")
    first = rows[0]["first"]
    if first is None:
        return True
    if isinstance(first, str):  # SQLite
        first = datetime.datetime.fromisoformat(first)
    if first.tzinfo is None:
        first = first.replace(tzinfo=datetime.UTC)
    return scope.starts_at <= first


def first_whole_day(starts: datetime.datetime) -> tuple[int, datetime.datetime]:
    """The day number (since 1970-01-01, UTC) of the first midnight at or
    after ``starts``, and that midnight."""
    day = (starts - EPOCH) // DAY
    midnight = EPOCH + day * DAY
    if midnight < starts:
        day, midnight = day + 1, midnight + DAY
    return day, midnight


def kinds_in(scope: AnalyticsScope, column: str) -> str:
    if not scope.kinds:
        return ""
    return f" AND {column} IN (" + ", ".join(literal(k) for k in scope.kinds) + ")"


async def summed(db: Database, scope: AnalyticsScope, day: int | None) -> list[dict[str, Any]]:
    """The measures of the period from its first whole day ``day`` on, or
    (None) over every day."""
    period = ", ".join(f"'{m}'" for m in stage_flow.PERIOD_MEASURES)
    days = f"day = {stage_flow.WHOLE}" if day is None else f"day >= {day}"
    return await db.fetch(
        f"SELECT kind, stage, went, measure, SUM(n) AS n FROM {stage_flow.TABLE} "
        f"WHERE (measure IN ('c', 'o') OR (measure IN ({period}) AND {days}))"
        + kinds_in(scope, "kind")
        + " GROUP BY kind, stage, went, measure"
    )


async def first_day(
    db: Database, scope: AnalyticsScope, midnight: datetime.datetime
) -> list[dict[str, Any]]:
    """What the period's first partial day ``[starts_at, midnight)`` adds:
    the measures of the customers with an entry then, counted from
    ``starts_at`` less counted from ``midnight``."""
    ts, s0, s1 = scope.ts(), scope.starts_at, midnight
    n = (
        f"(CASE WHEN sc.at >= {ts} THEN 1 ELSE 0 END - CASE WHEN sc.at >= {ts} THEN 1 ELSE 0 END)",
        (s0, s1),
    )

    def first(t: str) -> str:
        return (
            f"CASE WHEN sc.at >= {t} AND (sc.phase_prev_at IS NULL OR sc.phase_prev_at < {t}) "
            "THEN 1 ELSE 0 END"
        )

    f = (f"({first(ts)} - {first(ts)})", (s0, s0, s1, s1))
    reg = "(1 - sc.irregular)"
    adv = "(CASE WHEN sc.advanced_at IS NULL THEN 0 ELSE 1 END)"
    ex = "(CASE WHEN sc.exited_at IS NULL THEN 0 ELSE 1 END)"
    closed = "(CASE WHEN sc.left_at IS NULL THEN 0 ELSE 1 END)"
    sql = Sql().add(
        "SELECT sc.kind, sc.to_stage AS stage, COALESCE(sc.next_stage, '') AS went, "
        f"SUM({n[0]}) AS n, SUM({n[0]} * {closed}) AS s, ",
        *n[1],
        *n[1],
    )
    sql.add(f"SUM({reg} * {f[0]}) AS f, SUM({reg} * {adv} * {f[0]}) AS a, ", *f[1], *f[1])
    sql.add(f"SUM({reg} * {ex} * (1 - {adv}) * {f[0]}) AS x ", *f[1])
    sql.add(
        "FROM stage_change sc JOIN customer c ON c.id = sc.customer AND c.deleted_at IS NULL "
        f"WHERE sc.customer IN (SELECT customer FROM stage_change WHERE at >= {ts} AND at < {ts})"
        + kinds_in(scope, "sc.kind")
        + " GROUP BY sc.kind, sc.to_stage, COALESCE(sc.next_stage, '')",
        s0,
        s1,
    )
    return await sql.fetch(db)


# a declared stage as the funnel's ``stage_def``: (phase, position, phase_rank, is_exit, is_detour)
StageDefs = dict[tuple[str, str], tuple[str, int, int, int, int]]


def measures(
    sums: list[dict[str, Any]], first: list[dict[str, Any]]
) -> dict[tuple[str, str, str, str], int]:
    """(kind, stage, went, measure) -> its sum over the period."""
    total: dict[tuple[str, str, str, str], int] = defaultdict(int)
    for row in sums:
        total[(row["kind"], row["stage"], row["went"], row["measure"])] += int(row["n"])
    for row in first:
        for m in stage_flow.PERIOD_MEASURES:
            went = row["went"] if m == "n" else ""
            total[(row["kind"], row["stage"], went, m)] += int(row[m] or 0)
    return total


def rows_of(
    defs: StageDefs,
    total: dict[tuple[str, str, str, str], int],
    irregular: list[dict[str, Any]],
    converted_rank: int,
) -> list[dict[str, Any]]:
    """The funnel statement's rows (``part``, ``kind``, ``stage``,
    ``next_stage``, ``entered``, ``advanced``, ``dropped_off``) but the
    medians: stage, flow and phase counts of declared stages, as its joins
    with ``stage_def`` keep, and ``current`` of any stage."""
    stages: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    flows: dict[tuple[str, str, str], int] = defaultdict(int)
    current: dict[tuple[str, str], int] = defaultdict(int)
    phases: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for (kind, stage, went, m), n in total.items():
        here = defs.get((kind, stage))
        if m == "c":
            current[(kind, stage)] += n
        if here is None or m in ("c", "s"):
            continue
        if m == "n":
            counts = stages[(kind, stage)]
            counts[0] += n
            to = defs.get((kind, went)) if went else None
            if to is not None:
                flows[(kind, stage, went)] += n
                _phase, position, rank, is_exit, is_detour = to
                if not is_exit and not is_detour and (position > here[1] or rank == converted_rank):
                    counts[1] += n
                counts[2] += n if is_exit else 0
            continue
        phases[here[0]]["faxo".index(m)] += n
    for row in irregular:
        phase = phases[row["phase"]]
        for i, column in enumerate(("entered", "advanced", "dropped_off", "current_own")):
            phase[i] += int(row[column] or 0)
    rows = [_row("stage", k, s, None, *c) for (k, s), c in stages.items() if c[0]]
    rows += [_row("flow", k, s, w, n, 0, 0) for (k, s, w), n in flows.items() if n]
    rows += [_row("current", k, s, None, n, 0, 0) for (k, s), n in current.items() if n]
    rows += [_row("phase", None, p, None, *c[:3]) for p, c in phases.items()]
    rows += [_row("phase_current", None, p, None, c[3], 0, 0) for p, c in phases.items()]
    return rows


def _row(part: str, kind: str | None, stage: str, went: str | None, *counts: int) -> dict:
    entered, advanced, dropped = counts
    return {
        "part": part,
        "kind": kind,
        "stage": stage,
        "next_stage": went,
        "entered": entered,
        "advanced": advanced,
        "dropped_off": dropped,
        "days": None,
    }


async def counted_rows(
    db: Database,
    scope: AnalyticsScope,
    defs: StageDefs,
    irregular: list[dict[str, Any]],
    converted_rank: int,
    whole: bool,
) -> list[dict[str, Any]]:
    """The rows of ``rows_of`` for ``scope`` (``answerable`` and
    ``until_now``); ``whole``: it starts ``before_history``."""
    if whole:
        return rows_of(defs, measures(await summed(db, scope, None), []), irregular, converted_rank)
    day, midnight = first_whole_day(scope.starts_at)
    sums = await summed(db, scope, day)
    first = await first_day(db, scope, midnight) if midnight > scope.starts_at else []
    return rows_of(defs, measures(sums, first), irregular, converted_rank)


def first_whole_month(starts: datetime.datetime) -> tuple[int, datetime.datetime]:
    """The month number (``stage_flow.month_number``) of the first month
    starting at or after ``starts``, and that month's first instant."""
    month = (starts.year - 1970) * 12 + starts.month - 1
    first = datetime.datetime(starts.year, starts.month, 1, tzinfo=datetime.UTC)
    if first < starts:
        month += 1
        first = datetime.datetime(1970 + month // 12, month % 12 + 1, 1, tzinfo=datetime.UTC)
    return month, first


def lengths(scope: AnalyticsScope, whole: bool) -> Sql:
    """``(kind, stage, day, n)``: the histogram of the lengths (whole days)
    of the period's counted stays that ended: ``l`` for a period starting
    ``before_history``; else ``m`` of the months it covers whole, and the
    stays entered in its first partial month, from the history."""
    kinds = kinds_in(scope, "kind")
    if whole:
        return Sql().add(
            f"SELECT kind, stage, day, n FROM {stage_flow.TABLE} WHERE measure = 'l'{kinds}"
        )
    month, first = first_whole_month(scope.starts_at)
    sqlite, ts = scope.dialect.sqlite, scope.ts()
    return Sql().add(
        f"SELECT kind, stage, CAST(went AS INTEGER) AS day, n FROM {stage_flow.TABLE} "
        f"WHERE measure = 'm' AND day >= {month}{kinds} UNION ALL "
        f"SELECT sc.kind, sc.to_stage, {stage_flow.length_day(sqlite)}, 1 FROM stage_change sc "
        "JOIN customer c ON c.id = sc.customer AND c.deleted_at IS NULL "
        f"WHERE sc.left_at IS NOT NULL AND sc.at >= {ts} AND sc.at < {ts}"
        + kinds_in(scope, "sc.kind"),
        scope.starts_at,
        first,
    )


def middle_probes(scope: AnalyticsScope, whole: bool) -> Sql:
    """``(kind, stage, day, n, skip, second)``: where the one or two middle
    stays of each stage are in the period's histogram (``lengths``; 0-based
    ranks ``(N - 1) // 2`` and, ``second``, ``N // 2``, as PostgreSQL's
    ``percentile_cont(0.5)`` and the SQLite median take them): their
    ``length_day``, that day's count and their rank within it. Found by the database, so only these
    rows (two per stage) leave it, not the ~14,000 of the histogram."""
    as_int = "INTEGER" if scope.dialect.sqlite else "BIGINT"
    total = f"CAST(SUM(n) OVER (PARTITION BY kind, stage) AS {as_int})"
    rank = "CASE WHEN w.second = 0 THEN r.lo ELSE r.hi END"
    sql = Sql().add(
        f"SELECT r.kind, r.stage, r.day, r.n, {rank} - r.before AS skip, w.second FROM (SELECT "
        "kind, "
        f"stage, day, n, CAST(SUM(n) OVER (PARTITION BY kind, stage ORDER BY day) AS {as_int}) "
        f"- n AS before, ({total} - 1) / 2 AS lo, {total} / 2 AS hi FROM (SELECT "
        f"kind, stage, day, CAST(SUM(n) AS {as_int}) AS n FROM ("
    )
    return sql.extend(lengths(scope, whole)).add(
        ") src GROUP BY kind, stage, day HAVING SUM(n) <> 0) h) r "
        "JOIN (SELECT 0 AS second UNION ALL SELECT 1) w "
        f"ON (w.second = 0 OR r.hi > r.lo) AND {rank} >= r.before AND {rank} < r.before + r.n"
    )


def middle_stays(scope: AnalyticsScope, probes: Sql | list[dict[str, Any]], whole: bool) -> Sql:
    """``(kind, stage, second, v)``: per probe (``middle_probes``: its SQL
    on PostgreSQL, its rows on SQLite) the length in days of the
    ``skip``-th shortest counted stay of its ``length_day`` entered in the
    period. PostgreSQL reads each day's stays by ``ix_stage_change_stay``
    (the second's margin only widens the range), one LATERAL join planned
    once (a UNION of 70 subqueries took ~400 ms to plan); SQLite, a UNION."""
    sqlite = scope.dialect.sqlite
    since = "" if whole else f" AND sc.at >= {scope.ts()}"
    args = [] if whole else [scope.starts_at]
    stays = (
        f"SELECT {stage_flow.stay_days(sqlite)} AS v FROM stage_change sc JOIN customer c "
        "ON c.id = sc.customer AND c.deleted_at IS NULL "
        "WHERE sc.kind = {kind} AND sc.to_stage = {stage} AND sc.left_at IS NOT NULL "
        f"AND {stage_flow.length_day(sqlite)} = {{day}}"
    )
    if isinstance(probes, list):
        sql = Sql()
        for i, p in enumerate(probes):
            kind, stage = literal(p["kind"]), literal(p["stage"])
            sql.add(
                f"{' UNION ALL ' if i else ''}SELECT {kind} AS kind, {stage} AS stage, "
                f"{int(p['second'])} AS second, v FROM ("
                + stays.format(kind=kind, stage=stage, day=int(p["day"]))
                + since
                + f" ORDER BY v LIMIT 1 OFFSET {int(p['skip'])}) p{i}",
                *args,
            )
        return sql
    # in the index's order (seconds; v rises with them), from the nearer end
    # of the day's n stays: the scan stops at the stay wanted
    seconds = stage_flow.STAY_SECONDS.replace("left_at - at", "sc.left_at - sc.at")
    inner = (
        stays.format(kind="p.kind", stage="p.stage", day="p.day")
        + f"{since} AND {seconds} >= p.day * 86400.0 - 1 AND {seconds} < (p.day + 1) * 86400.0 + 1"
    )
    sql = Sql().add("SELECT p.kind, p.stage, p.second, s.v FROM (").extend(probes)
    return sql.add(
        f") p CROSS JOIN LATERAL (({inner} AND p.skip * 2 < p.n ORDER BY {seconds} "
        f"LIMIT 1 OFFSET p.skip) UNION ALL ({inner} AND p.skip * 2 >= p.n "
        f"ORDER BY {seconds} DESC LIMIT 1 OFFSET p.n - 1 - p.skip)) s",
        *args,
        *args,
    )


async def medians(db: Database, scope: AnalyticsScope, whole: bool) -> list[dict[str, Any]]:
    """The median stay per (kind, stage) of the period, equal to the
    history's: the middle stays' lengths (``middle_stays``; one statement on
    PostgreSQL, two on SQLite), then PostgreSQL's ``percentile_cont``
    interpolation or SQLite's mean."""
    sqlite = scope.dialect.sqlite
    probes: Sql | list[dict[str, Any]] = middle_probes(scope, whole)
    if sqlite:
        probes = await probes.fetch(db)
        if not probes:
            return []
    middle: dict[tuple[str, str], dict[int, float]] = defaultdict(dict)
    for row in await middle_stays(scope, probes, whole).fetch(db):
        middle[(row["kind"], row["stage"])][int(row["second"])] = float(row["v"])
    found = []
    for (kind, stage), values in middle.items():
        lo = values[0]
        hi = values.get(1, lo)
        median = (lo + hi) / 2 if sqlite else lo + (hi - lo) * 0.5
        found.append({"kind": kind, "stage": stage, "median": median if 1 in values else lo})
    return found
