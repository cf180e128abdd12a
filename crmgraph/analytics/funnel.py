"""The lifecycle funnel, from the stage history (``stage_change``).

Per type and stage, over stage entries in the period:
- ``entered``: customers who entered the stage;
- ``current``: customers in the stage at the end of the period;
- ``advanced``: entries whose next move went to a stage declared later that is
  neither an ENDED stage nor a detour (``Stage.detour``: at risk, suspended…), or
  to a conversion (a stage whose transition converts the customer to another
  type): ``conversion_rate = advanced / entered``;
- ``dropped_off``: entries whose next move went to an ENDED stage that is not a
  conversion: ``drop_off_rate = dropped_off / entered``;
- ``median_days``: median days spent in the stage, over stays that ended;
- ``transitions``: where entries went next, with counts and rates.
Per phase (phases compare every type): customers who entered a stage of the
phase, are in it at the end, later reached a further phase (or converted),
or later ended without reaching one. ENDED is the last phase: a record
re-opened from it (a lead re-qualified) shows in ``transitions``, not as progress.

Roles (issue 24): a type's funnel reads the history of that type, so a party
counts in the funnel of its primary kind and of each further role, by that
role's own stages. A party is counted once per phase, whichever roles took it
there. A further role ended by the period's end is history: its entries,
moves and stays still count, but its open stay is in no ``current`` count
(``role_closed``, ``entry_flags``), as a deleted customer is in none of the
default scope (whose past entries, unlike a role's, leave with it).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from crmgraph.analytics import funnel_rollup
from crmgraph.analytics.scope import AnalyticsScope
from crmgraph.analytics.sql import Sql, literal, rounded
from crmgraph.customer_types import Phase
from crmgraph.db import stays
from crmgraph.db.engine import Database
from crmgraph.registry import Catalog

PHASE_RANK = {"ENGAGEMENT": 1, "ACQUISITION": 2, "RETENTION": 3, "EXPANSION": 4, "ENDED": 0}
CONVERTED_RANK = 5  # a conversion is past every phase of the type converted from


@dataclass(frozen=True)
class StageFlow:
    to_stage: str
    count: int
    rate: float


@dataclass(frozen=True)
class Progress:
    """How a stage's (or a phase's) entries fared, with the rates over ``entered``."""

    entered: int
    current: int
    advanced: int
    dropped_off: int
    conversion_rate: float | None
    drop_off_rate: float | None


@dataclass(frozen=True)
class StageFunnel(Progress):
    stage: str
    label: str
    phase: str
    median_days: float | None
    transitions: list[StageFlow]


@dataclass(frozen=True)
class KindFunnel:
    kind: str
    stages: list[StageFunnel]


@dataclass(frozen=True)
class PhaseFunnel(Progress):
    phase: str


@dataclass(frozen=True)
class Funnel:
    kinds: list[KindFunnel]
    phases: list[PhaseFunnel]


def rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def progress(counts: dict[str, Any] | None, current: dict[str, Any] | None) -> dict[str, Any]:
    """A stage's or a phase's ``Progress`` fields from its counting rows (None: no entries)."""
    entered = int(counts["entered"]) if counts else 0
    advanced = int(counts["advanced"] or 0) if counts else 0
    dropped = int(counts["dropped_off"] or 0) if counts else 0
    return {
        "entered": entered,
        "current": int(current["entered"]) if current else 0,
        "advanced": advanced,
        "dropped_off": dropped,
        "conversion_rate": rate(advanced, entered),
        "drop_off_rate": rate(dropped, entered),
    }


def stage_phases(catalog: Catalog) -> set[tuple]:
    """Every declared stage as ``stays.STAGE_PHASE_COLUMNS``: its type, key,
    phase number, phase rank, whether it ends the lifecycle, and the version of
    the columns' derivation."""
    rows = set()
    for descriptor in catalog.customer_types:
        conversions = {t.to_stage for t in descriptor.lifecycle.transitions if t.convert_to}
        for stage in descriptor.lifecycle.stages:
            converted = stage.key in conversions
            phase_no = PHASE_RANK[stage.phase.value]
            rank = CONVERTED_RANK if converted else phase_no
            is_exit = 1 if stage.phase == Phase.ENDED and not converted else 0
            rows.add((descriptor.key, stage.key, phase_no, rank, is_exit, stays.DERIVATION))
    return rows


async def phases_current(db: Database, catalog: Catalog) -> bool:
    """Whether the stored phase columns are ``catalog``'s (one read)."""
    return await stays.stored_stage_phases(db) == stage_phases(catalog)


async def current_stage_phases(db: Database, catalog: Catalog) -> None:
    """Make the stored phase columns those of ``catalog``: recompute them all
    (once, in a transaction) if ``stage_phase`` holds other stages, as after
    a plugin changed the catalog or on a database that never had a funnel.

    The analytics plugin runs it as start-up work (crmgraph.startup_work),
    beside the first requests; a funnel asked for meanwhile calls it too and
    waits on the running one's lock (PostgreSQL: the table lock below;
    SQLite: its one writer), then finds the columns current."""
    if await phases_current(db, catalog):
        return
    wanted = stage_phases(catalog)
    async with db.transaction():
        if not db.is_sqlite:  # one recomputation at a time; the others find it done
            await db.fetch("LOCK TABLE stage_phase IN EXCLUSIVE MODE")
        if await stays.stored_stage_phases(db) != wanted:
            await stays.store_stage_phases(db, wanted)


def stage_definitions(catalog: Catalog, kinds: tuple[str, ...]) -> str:
    """``stage_def`` as a VALUES list: each stage's phase (also as its number,
    ``PHASE_RANK``), order, whether it ends the lifecycle and whether reaching
    it is a conversion (``phase_rank``) or a detour (:func:`stage_defs`'
    facts, for the history path's SQL). Joined to grouped rows."""
    rows = [
        f"({literal(kind)}, {literal(stage)}, {literal(phase)}, {PHASE_RANK[phase]}, "
        f"{position}, {rank}, {is_exit}, {is_detour})"
        for (kind, stage), (phase, position, rank, is_exit, is_detour) in stage_defs(
            catalog, kinds
        ).items()
    ]
    return (
        "stage_def (kind, stage, phase, phase_no, position, phase_rank, is_exit, is_detour) "
        "AS (VALUES " + ", ".join(rows) + ")"
    )


def entries_from(scope: AnalyticsScope, join: str = "", where: str = "") -> Sql:
    """``FROM ... WHERE ...``: every entry into a stage before the end of the
    period (``sc``) of a customer in scope (``s``), of the types asked for: the
    type filter applies to the history's type, so a prospect converted to a
    client still counts in the prospect funnel. ``join`` and ``where`` add to it."""
    sql = Sql().add(
        f"FROM stage_change sc JOIN scoped s ON s.id = sc.customer{join} "
        f"WHERE {where}sc.at < {scope.ts()}",
        scope.ends_at,
    )
    if scope.kinds:
        sql.add(" AND sc.kind IN (" + ", ".join(literal(k) for k in scope.kinds) + ")")
    return sql


def further_roles(scope: AnalyticsScope, held: bool) -> Sql:
    """``(sc.customer, sc.kind) IN (...)``: the entry is of a further role
    (``customer_role.added_at`` set: not a conversion's leftover) that the
    party held at the period's end (``held``), or had ended by then (or took
    up again only after it). Uncorrelated, so each engine builds the set once
    (PostgreSQL a hashed subplan, SQLite an ephemeral index) and probes it
    only for the few entries the ``CASE`` around it reaches: open stays of
    another type than the party's primary kind."""
    ts = scope.ts()
    if held:
        when = f"added_at < {ts} AND (ended_at IS NULL OR ended_at >= {ts})"
    else:
        when = f"added_at IS NOT NULL AND (ended_at < {ts} OR added_at >= {ts})"
    return Sql().add(
        f"(sc.customer, sc.kind) IN (SELECT customer, kind FROM customer_role WHERE {when})",
        scope.ends_at,
        scope.ends_at,
    )


def role_closed(scope: AnalyticsScope) -> Sql:
    """Whether the entry's stay is over at the period's end for ``current``:
    it ended, or it is the open stay of a further role the party had ended
    (``further_roles``). A conversion's leftover (the prospect's converted
    stage) stays where it is, as before roles."""
    ts = scope.ts()
    return (
        Sql()
        .add(f"CASE WHEN sc.left_at < {ts} THEN TRUE WHEN sc.kind <> s.kind AND ", scope.ends_at)
        .extend(further_roles(scope, held=False))
        .add(" THEN TRUE ELSE FALSE END")
    )


def entry_flags(scope: AnalyticsScope) -> Sql:
    """Per entry (``sc``): ``chosen`` (in the period), ``open`` (the stay had
    not ended by the period's end), ``own`` (of a kind the party held at the
    period's end: its primary kind or a further role not ended; read only
    with ``open``), ``first`` (its type's first entry into the phase in the
    period: the one a customer's phase counts read), ``advanced`` and
    ``exited`` (by the period's end, after it: ``stays.PHASE_COLUMNS``)."""
    ts = scope.ts()
    sql = Sql().add(
        f"CASE WHEN sc.at >= {ts} THEN 1 ELSE 0 END AS chosen, "
        f"CASE WHEN sc.left_at < {ts} THEN 0 ELSE 1 END AS open, "
        f"CASE WHEN sc.kind = s.kind THEN 1 WHEN sc.left_at < {ts} THEN 0 WHEN ",
        scope.starts_at,
        scope.ends_at,
        scope.ends_at,
    )
    sql.extend(further_roles(scope, held=True)).add(" THEN 1 ELSE 0 END AS own, ")
    return sql.add(
        f"CASE WHEN sc.at >= {ts} AND (sc.phase_prev_at IS NULL OR sc.phase_prev_at < {ts}) "
        "THEN 1 ELSE 0 END AS first, "
        f"CASE WHEN sc.advanced_at < {ts} THEN 1 ELSE 0 END AS advanced, "
        f"CASE WHEN sc.exited_at < {ts} THEN 1 ELSE 0 END AS exited",
        scope.starts_at,
        scope.starts_at,
        scope.ends_at,
        scope.ends_at,
    )


def entries_ctes(catalog: Catalog, scope: AnalyticsScope) -> Sql:
    """``scoped``, ``stage_def`` and ``moves``: the entries grouped by stage,
    whether chosen, where they went by the period's end and whether still
    open, with the phase counts of the entries not ``irregular``
    (``stays.PHASE_COLUMNS``) summed over those that count (``first``) and,
    on PostgreSQL, the chosen stays' lengths for the medians. The history is
    read once, and only the grouped rows meet the stages' definitions."""
    ts, d = scope.ts(), scope.dialect
    sql = Sql().add("WITH ").extend(scope.without_kinds().scoped_cte(stage=False)).add(", ")
    sql.add(stage_definitions(catalog, scope.kinds) + ", ")
    # each chosen stay's length in days (a double: EXTRACT's numeric result
    # cost ~90 ms more over 207,000 stays), for the medians
    lengths = (
        ""
        if d.sqlite
        else ", array_agg(date_part('epoch', left_at - at) / 86400.0) "
        "FILTER (WHERE chosen = 1 AND open = 0) AS stays"
    )
    # grouped by plain columns and two booleans, which PostgreSQL estimates
    # (with the statistics of migration 0025) at a few hundred groups: computed
    # keys counted as 200 values each made it sort 150,000 rows to group them
    sql.add(
        f"moves AS {d.materialized}(SELECT kind, stage, went, chosen_key AS chosen, closed, "
        "COUNT(*) AS n, SUM(own * open * regular) AS current_own, "
        "SUM(first * regular) AS first_entries, SUM(first * regular * advanced) AS advanced, "
        "SUM(first * regular * exited * (1 - advanced)) AS dropped_off"
        f"{lengths} FROM (SELECT sc.kind, sc.to_stage AS stage, sc.next_stage AS went, "
        f"sc.left_at, sc.at, sc.at >= {ts} AS chosen_key, ",
        scope.starts_at,
    )
    sql.extend(role_closed(scope)).add(" AS closed, 1 - sc.irregular AS regular, ")
    sql.extend(entry_flags(scope)).add(" ").extend(entries_from(scope))
    return sql.add(") sc GROUP BY kind, stage, went, chosen_key, closed)")


def irregular_phases(scope: AnalyticsScope) -> Sql:
    """``irregular_phases``: per customer counted one by one (history in more
    than one type, or merged) and phase, whether it entered the phase in the
    period, advanced, ended, and is in it at the period's end in its current
    type."""
    sql = Sql().add(
        "irregular_phases AS (SELECT customer, phase, MAX(first) AS entered, "
        "MAX(first * advanced) AS advanced, MAX(first * exited) AS exited, "
        "MAX(own * open) AS current_own FROM (SELECT sc.customer, k.phase, "
    )
    # a LEFT JOIN: an inner join on two columns of a VALUES list is estimated
    # at about 1% of the rows, and the planner then loops over the customers
    stage = " LEFT JOIN stage_def k ON k.kind = sc.kind AND k.stage = sc.to_stage"
    sql.extend(entry_flags(scope)).add(" ").extend(
        entries_from(scope, stage, "sc.irregular = 1 AND ")
    )
    return sql.add(") sc WHERE phase IS NOT NULL GROUP BY customer, phase)")


def history_sql(catalog: Catalog, scope: AnalyticsScope) -> Sql:
    """The funnel's rows from the whole history, for any scope."""
    d = scope.dialect
    # one statement: per-stage counts, flows, medians and per-phase counts, tagged
    sql = entries_ctes(catalog, scope).add(", ").extend(irregular_phases(scope)).add(", ")
    sql.add(
        "chosen_moves AS (SELECT m.kind, m.stage, n.stage AS next_stage, m.n, "
        "CASE WHEN n.is_exit = 0 AND n.is_detour = 0 "
        "AND (n.position > p.position OR n.phase_rank = {}) THEN m.n ELSE 0 END AS advanced, "
        "CASE WHEN n.is_exit = 1 THEN m.n ELSE 0 END AS dropped_off "
        "FROM moves m JOIN stage_def p ON p.kind = m.kind AND p.stage = m.stage "
        "LEFT JOIN stage_def n ON n.kind = m.kind AND n.stage = m.went AND m.closed "
        "WHERE m.chosen), ",
        CONVERTED_RANK,
    )
    if d.sqlite:
        sql.add(
            f"stays AS (SELECT sc.kind, sc.to_stage AS stage, "
            f"{d.days_between('sc.left_at', 'sc.at')} AS days "
        )
        sql.extend(entries_from(scope)).add(
            f" AND sc.at >= {scope.ts()} AND sc.left_at < {scope.ts()}), ",
            scope.starts_at,
            scope.ends_at,
        )
        medians = d.medians("stays", "kind, stage", "days")
    else:
        # each stage's lengths, gathered from its few groups, sorted once
        medians = (
            "SELECT kind, stage, (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY v) "
            "FROM moves l, unnest(l.stays) v WHERE l.kind = m.kind AND l.stage = m.stage) "
            "AS median FROM moves m WHERE chosen AND closed GROUP BY kind, stage"
        )
    sql.add(
        # regular customers' entries that count, by stage; then the others, one by one
        "phase_counts AS (SELECT k.phase, m.first_entries AS entered, m.advanced, "
        "m.dropped_off, m.current_own FROM moves m JOIN stage_def k "
        "ON k.kind = m.kind AND k.stage = m.stage "
        "UNION ALL SELECT phase, entered, advanced, exited * (1 - advanced), current_own "
        "FROM irregular_phases) "
    )
    sql.add(
        "SELECT 'stage' AS part, kind, stage, NULL AS next_stage, SUM(n) AS entered, "
        "SUM(advanced) AS advanced, SUM(dropped_off) AS dropped_off, "
        f"{d.as_float('NULL')} AS days FROM chosen_moves GROUP BY kind, stage "
        "UNION ALL SELECT 'flow', kind, stage, next_stage, SUM(n), 0, 0, NULL "
        "FROM chosen_moves WHERE next_stage IS NOT NULL GROUP BY kind, stage, next_stage "
        "UNION ALL SELECT 'current', kind, stage, NULL, SUM(n), 0, 0, NULL FROM moves "
        "WHERE NOT closed GROUP BY kind, stage "
        "UNION ALL SELECT 'median', kind, stage, NULL, 0, 0, 0, median "
        f"FROM ({medians}) medians "
        "UNION ALL SELECT 'phase', NULL, phase, NULL, SUM(entered), SUM(advanced), "
        "SUM(dropped_off), NULL FROM phase_counts GROUP BY phase "
        "UNION ALL SELECT 'phase_current', NULL, phase, NULL, SUM(current_own), 0, 0, NULL "
        "FROM phase_counts GROUP BY phase"
    )
    return sql


def irregular_sql(catalog: Catalog, scope: AnalyticsScope) -> Sql:
    """The phase counts of the customers counted one by one, by phase."""
    sql = Sql().add("WITH ").extend(scope.without_kinds().scoped_cte(stage=False)).add(", ")
    sql.add(stage_definitions(catalog, scope.kinds) + ", ").extend(irregular_phases(scope))
    return sql.add(
        " SELECT phase, SUM(entered) AS entered, SUM(advanced) AS advanced, "
        "SUM(exited * (1 - advanced)) AS dropped_off, SUM(current_own) AS current_own "
        "FROM irregular_phases GROUP BY phase"
    )


def stage_defs(catalog: Catalog, kinds: tuple[str, ...]) -> funnel_rollup.StageDefs:
    """Each stage's (phase, position, phase rank, is_exit, is_detour) by
    (kind, stage): the rollup path reads it, the history path's SQL is made
    from it (:func:`stage_definitions`)."""
    defs: funnel_rollup.StageDefs = {}
    for descriptor in catalog.customer_types:
        if kinds and descriptor.key not in kinds:
            continue
        conversions = {t.to_stage for t in descriptor.lifecycle.transitions if t.convert_to}
        for position, stage in enumerate(descriptor.lifecycle.stages):
            converted = stage.key in conversions
            rank = CONVERTED_RANK if converted else PHASE_RANK[stage.phase.value]
            is_exit = 1 if stage.phase == Phase.ENDED and not converted else 0
            defs[(descriptor.key, stage.key)] = (
                stage.phase.value,
                position,
                rank,
                is_exit,
                1 if stage.detour else 0,
            )
    return defs


async def funnel_rows(
    db: Database, catalog: Catalog, scope: AnalyticsScope, *, rollup: bool = True
) -> list[dict[str, Any]]:
    """The funnel's rows: from ``stage_flow`` (crmgraph.analytics.funnel_rollup)
    when it answers the scope (every active customer, a type filter at most,
    no row scope, a period until now) unless not ``rollup``, else from the
    history (any other filter, a row scope, deleted customers, a period
    ending in the past)."""
    if not (
        rollup and funnel_rollup.answerable(scope) and await funnel_rollup.until_now(db, scope)
    ):
        return await history_sql(catalog, scope).fetch(db)
    whole = await funnel_rollup.before_history(db, scope)
    irregular = await irregular_sql(catalog, scope).fetch(db)
    defs = stage_defs(catalog, scope.kinds)
    rows = await funnel_rollup.counted_rows(db, scope, defs, irregular, CONVERTED_RANK, whole)
    medians = await funnel_rollup.medians(db, scope, whole)
    rows += [
        {"part": "median", "kind": m["kind"], "stage": m["stage"], "days": m["median"]}
        for m in medians
    ]
    return rows


async def lifecycle_funnel(
    db: Database, catalog: Catalog, scope: AnalyticsScope, *, rollup: bool = True
) -> Funnel:
    await current_stage_phases(db, catalog)
    rows = await funnel_rows(db, catalog, scope, rollup=rollup)
    by_part: dict[str, dict[tuple, dict]] = defaultdict(dict)
    flows: dict[tuple[str, str], list[tuple[str, int]]] = defaultdict(list)
    for row in rows:
        if row["part"] == "flow":
            flows[(row["kind"], row["stage"])].append((row["next_stage"], int(row["entered"])))
        else:
            by_part[row["part"]][(row["kind"], row["stage"])] = row
    kinds = []
    for descriptor in catalog.customer_types:
        if scope.kinds and descriptor.key not in scope.kinds:
            continue
        stages = []
        for stage in descriptor.lifecycle.stages:
            key = (descriptor.key, stage.key)
            counts = progress(by_part["stage"].get(key), by_part["current"].get(key))
            median = by_part["median"].get(key)
            stages.append(
                StageFunnel(
                    stage=stage.key,
                    label=stage.label,
                    phase=stage.phase.value,
                    **counts,
                    median_days=rounded(median["days"], 2) if median else None,
                    transitions=[
                        StageFlow(to, n, rate(n, counts["entered"]) or 0.0)
                        for to, n in sorted(flows[key], key=lambda f: (-f[1], f[0]))
                    ],
                )
            )
        kinds.append(KindFunnel(descriptor.key, stages))
    phases = [
        PhaseFunnel(
            phase=phase.value,
            **progress(
                by_part["phase"].get((None, phase.value)),
                by_part["phase_current"].get((None, phase.value)),
            ),
        )
        for phase in Phase
    ]
    return Funnel(kinds, phases)
