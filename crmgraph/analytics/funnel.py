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
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from crmgraph.analytics.scope import AnalyticsScope
from crmgraph.analytics.sql import Sql, literal, rounded
from crmgraph.customer_types import Phase
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


def stage_definitions(catalog: Catalog, kinds: tuple[str, ...]) -> str:
    """``stage_def`` as a VALUES list: each stage's phase (also as its number,
    ``PHASE_RANK``, cheaper to compare), order, phase rank, whether it ends
    the lifecycle and whether reaching it is a conversion."""
    rows = []
    for descriptor in catalog.customer_types:
        if kinds and descriptor.key not in kinds:
            continue
        conversions = {t.to_stage for t in descriptor.lifecycle.transitions if t.convert_to}
        for position, stage in enumerate(descriptor.lifecycle.stages):
            converted = stage.key in conversions
            rank = CONVERTED_RANK if converted else PHASE_RANK[stage.phase.value]
            rows.append(
                f"({literal(descriptor.key)}, {literal(stage.key)}, "
                f"{literal(stage.phase.value)}, {PHASE_RANK[stage.phase.value]}, "
                f"{position}, {rank}, "
                f"{1 if stage.phase == Phase.ENDED and not converted else 0}, "
                f"{1 if stage.detour else 0})"
            )
    return (
        "stage_def (kind, stage, phase, phase_no, position, phase_rank, is_exit, is_detour) "
        "AS (VALUES " + ", ".join(rows) + ")"
    )


def entries_ctes(catalog: Catalog, scope: AnalyticsScope) -> Sql:
    """``scoped``, ``stage_def`` and ``entries``: every entry into a known
    stage before the end of the period, with its stage's phase, whether it
    falls in the period (``chosen``) and, if the stay ended before the
    period's end, when and where to (``left_at``, ``next_stage``; recorded
    by crmgraph.db.stays).

    ``entries`` is materialized, narrow and read by every part of the funnel:
    the history is scanned and joined with the customers once. Only the
    phases are joined row by row; the other attributes of a stage (its order,
    whether it ends or detours) are joined after grouping, to a few hundred
    ``moves``."""
    ts, d = scope.ts(), scope.dialect
    # the type filter applies to the history's type: a prospect converted to a
    # client still counts in the prospect funnel
    sql = Sql().add("WITH ").extend(scope.without_kinds().scoped_cte(stage=False)).add(", ")
    sql.add(stage_definitions(catalog, scope.kinds) + ", ")
    # A LEFT JOIN with stage_def: PostgreSQL estimates an inner join on two
    # columns of a VALUES list at about 1% of the rows, and then looks each
    # customer up by index, 300,000 times. An entry of a stage no type
    # declares (its plugin was removed) has no phase, rank or exit flag, so
    # it counts nowhere: moves join the stages' definitions again, and only
    # the declared stages' medians and phases are read from the result.
    # ``customer_kind`` (the customer's current type) serves phase_current.
    sql.add(
        f"entries AS {d.materialized}(SELECT sc.customer, sc.kind, sc.to_stage AS stage, sc.at, "
        f"CASE WHEN sc.at >= {ts} THEN 1 ELSE 0 END AS chosen, "
        f"CASE WHEN sc.left_at < {ts} THEN sc.left_at END AS left_at, "
        f"CASE WHEN sc.left_at < {ts} THEN sc.next_stage END AS next_stage, "
        "k.phase, k.phase_no, k.phase_rank, k.is_exit, s.kind AS customer_kind "
        "FROM stage_change sc JOIN scoped s ON s.id = sc.customer "
        "LEFT JOIN stage_def k ON k.kind = sc.kind AND k.stage = sc.to_stage "
        f"WHERE sc.at < {ts}",
        scope.starts_at,
        scope.ends_at,
        scope.ends_at,
        scope.ends_at,
    )
    if scope.kinds:
        sql.add(" AND sc.kind IN (" + ", ".join(literal(k) for k in scope.kinds) + ")")
    return sql.add(")")


def phase_columns() -> tuple[str, str]:
    """Per customer and type, then per customer: for each phase, whether the
    customer entered it in the period, later reached a further phase (or
    converted), and later ended. Aggregates over each type's history, since
    an entry "later reached" a rank if the last entry of that rank came after
    the first entry of the phase in the period."""
    ranks = sorted({*PHASE_RANK.values(), CONVERTED_RANK} - {0})
    per_kind = [
        f"MIN(CASE WHEN chosen = 1 AND phase_no = {rank} THEN at END) AS first_{rank}"
        for rank in PHASE_RANK.values()
    ]
    per_kind += [
        f"MAX(CASE WHEN is_exit = 0 AND phase_rank = {r} THEN at END) AS reached_{r}" for r in ranks
    ]
    per_kind.append("MAX(CASE WHEN is_exit = 1 THEN at END) AS exited")
    per_customer = []
    for rank in PHASE_RANK.values():
        first = f"first_{rank}"
        further = " OR ".join(f"reached_{r} > {first}" for r in ranks if r > rank)
        advanced = f"CASE WHEN {further} THEN 1 ELSE 0 END" if rank else "0"
        per_customer += [
            f"MAX(CASE WHEN {first} IS NOT NULL THEN 1 ELSE 0 END) AS entered_{rank}",
            f"MAX({advanced}) AS advanced_{rank}",
            f"MAX(CASE WHEN exited > {first} THEN 1 ELSE 0 END) AS exits_{rank}",
        ]
    return ", ".join(per_kind), ", ".join(per_customer)


def phase_totals() -> str:
    """Per phase, over ``customer_phases``: customers who entered it, advanced,
    and dropped off (ended without advancing)."""
    return ", ".join(
        f"COALESCE(SUM(entered_{rank}), 0) AS entered_{rank}, "
        f"SUM(advanced_{rank}) AS advanced_{rank}, "
        f"SUM(CASE WHEN advanced_{rank} = 0 AND exits_{rank} = 1 THEN 1 ELSE 0 END) "
        f"AS dropped_off_{rank}"
        for rank in PHASE_RANK.values()
    )


async def lifecycle_funnel(db: Database, catalog: Catalog, scope: AnalyticsScope) -> Funnel:
    d = scope.dialect
    per_kind, per_customer = phase_columns()
    # one statement: per-stage counts, flows, medians and per-phase counts, tagged
    sql = entries_ctes(catalog, scope).add(", ")
    sql.add(
        # entries by stage, where they went and whether still open: the stage
        # counts, flows and current counts all come from these few rows
        "moves AS (SELECT kind, stage, chosen, next_stage, "
        "CASE WHEN left_at IS NULL THEN 1 ELSE 0 END AS open, COUNT(*) AS n "
        "FROM entries GROUP BY kind, stage, chosen, next_stage, "
        "CASE WHEN left_at IS NULL THEN 1 ELSE 0 END), "
        "chosen_moves AS (SELECT m.kind, m.stage, n.stage AS next_stage, m.n, "
        "CASE WHEN n.is_exit = 0 AND n.is_detour = 0 "
        "AND (n.position > p.position OR n.phase_rank = {}) THEN m.n ELSE 0 END AS advanced, "
        "CASE WHEN n.is_exit = 1 THEN m.n ELSE 0 END AS dropped_off "
        "FROM moves m JOIN stage_def p ON p.kind = m.kind AND p.stage = m.stage "
        "LEFT JOIN stage_def n ON n.kind = m.kind AND n.stage = m.next_stage "
        "WHERE m.chosen = 1), "
        f"stays AS (SELECT kind, stage, {d.days_between('left_at', 'at')} AS days "
        "FROM entries WHERE chosen = 1 AND left_at IS NOT NULL), "
        f"kind_phases AS (SELECT customer, {per_kind} FROM entries GROUP BY customer, kind), "
        f"customer_phases AS (SELECT customer, {per_customer} FROM kind_phases GROUP BY customer), "
        # one row per customer: sums count customers (every phase in one pass)
        f"phase_totals AS (SELECT {phase_totals()} FROM customer_phases) ",
        CONVERTED_RANK,
    )
    sql.add(
        "SELECT 'stage' AS part, kind, stage, NULL AS next_stage, SUM(n) AS entered, "
        "SUM(advanced) AS advanced, SUM(dropped_off) AS dropped_off, "
        f"{d.as_float('NULL')} AS days FROM chosen_moves GROUP BY kind, stage "
        "UNION ALL SELECT 'flow', kind, stage, next_stage, SUM(n), 0, 0, NULL "
        "FROM chosen_moves WHERE next_stage IS NOT NULL GROUP BY kind, stage, next_stage "
        "UNION ALL SELECT 'current', kind, stage, NULL, SUM(n), 0, 0, NULL FROM moves "
        "WHERE open = 1 GROUP BY kind, stage "
        "UNION ALL SELECT 'median', kind, stage, NULL, 0, 0, 0, median "
        f"FROM ({d.medians('stays', 'kind, stage', 'days')}) medians "
        "UNION ALL SELECT 'phase_current', NULL, phase, NULL, COUNT(DISTINCT customer), "
        "0, 0, NULL FROM entries WHERE kind = customer_kind AND left_at IS NULL GROUP BY phase"
    )
    for phase, rank in PHASE_RANK.items():
        sql.add(
            f" UNION ALL SELECT 'phase', NULL, '{phase}', NULL, entered_{rank}, "
            f"advanced_{rank}, dropped_off_{rank}, NULL FROM phase_totals"
        )
    rows = await sql.fetch(db)
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
