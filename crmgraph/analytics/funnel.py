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
    """``stage_def`` as a VALUES list: each stage's order, phase rank, whether
    it ends the lifecycle and whether reaching it is a conversion."""
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
                f"{literal(stage.phase.value)}, {position}, {rank}, "
                f"{1 if stage.phase == Phase.ENDED and not converted else 0}, "
                f"{1 if stage.detour else 0})"
            )
    return (
        "stage_def (kind, stage, phase, position, phase_rank, is_exit, is_detour) AS (VALUES "
        + ", ".join(rows)
        + ")"
    )


def moves_ctes(catalog: Catalog, scope: AnalyticsScope) -> Sql:
    """``scoped``, ``stage_def`` and ``moves``: every stage entry before the end
    of the period with the next move and, looking further ahead, the best
    phase rank reached later and whether the lifecycle ended later."""
    kinds = scope.kinds
    ts = scope.ts()
    # the type filter applies to the history's type: a prospect converted to a
    # client still counts in the prospect funnel
    sql = Sql().add("WITH ").extend(scope.without_kinds().scoped_cte()).add(", ")
    sql.add(stage_definitions(catalog, kinds) + ", ")
    # Entries of known stages: the LEFT JOIN with EXISTS gives the rows of an
    # inner join with stage_def, but PostgreSQL estimates an inner join on two
    # columns of a VALUES list at about 1% of the rows, and then plans the
    # joins and the window's sort for a few thousand entries instead of all.
    # ``customer_kind`` (the customer's current type) serves phase_current.
    sql.add(
        "entries AS (SELECT sc.id, sc.customer, sc.kind, sc.to_stage AS stage, sc.at, "
        "d.phase, d.position, d.phase_rank, d.is_exit, d.is_detour, s.kind AS customer_kind "
        "FROM stage_change sc JOIN scoped s ON s.id = sc.customer "
        "LEFT JOIN stage_def d ON d.kind = sc.kind AND d.stage = sc.to_stage "
        "WHERE EXISTS (SELECT 1 FROM stage_def k WHERE k.kind = sc.kind AND k.stage = sc.to_stage) "
        f"AND sc.at < {ts}), ",
        scope.ends_at,
    )
    window = "PARTITION BY customer, kind ORDER BY at, id"
    later = f"({window} ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING)"
    sql.add(
        "moves AS (SELECT entries.*, "
        f"LEAD(at) OVER ({window}) AS left_at, "
        f"LEAD(stage) OVER ({window}) AS next_stage, "
        f"LEAD(position) OVER ({window}) AS next_position, "
        f"LEAD(phase_rank) OVER ({window}) AS next_rank, "
        f"LEAD(is_exit) OVER ({window}) AS next_is_exit, "
        f"LEAD(is_detour) OVER ({window}) AS next_is_detour, "
        f"MAX(CASE WHEN is_exit = 1 THEN 0 ELSE phase_rank END) OVER {later} AS best_rank_later, "
        f"MAX(is_exit) OVER {later} AS exits_later "
        "FROM entries)"
    )
    return sql


async def lifecycle_funnel(db: Database, catalog: Catalog, scope: AnalyticsScope) -> Funnel:
    d, ts = scope.dialect, scope.ts()
    in_period = scope.period("at")
    # one statement: per-stage counts, flows, medians and per-phase counts, tagged
    sql = moves_ctes(catalog, scope).add(", ")
    sql.add("chosen AS (SELECT * FROM moves WHERE ").extend(in_period).add("), ")
    sql.add(
        f"stays AS (SELECT kind, stage, {d.days_between('left_at', 'at')} AS days, "
        "ROW_NUMBER() OVER (PARTITION BY kind, stage ORDER BY "
        f"{d.days_between('left_at', 'at')}) AS n, "
        "COUNT(*) OVER (PARTITION BY kind, stage) AS stays "
        "FROM chosen WHERE left_at IS NOT NULL), "
    )
    sql.add(
        "phase_entries AS (SELECT customer, phase, "
        "MAX(CASE WHEN phase <> 'ENDED' AND best_rank_later > phase_rank THEN 1 ELSE 0 END) "
        "AS advanced, "
        "MAX(exits_later) AS exits_later FROM chosen GROUP BY customer, phase) "
    )
    sql.add(
        "SELECT 'stage' AS part, kind, stage, NULL AS next_stage, COUNT(*) AS entered, "
        "SUM(CASE WHEN next_is_exit = 0 AND next_is_detour = 0 "
        "AND (next_position > position OR next_rank = {}) "
        "THEN 1 ELSE 0 END) AS advanced, "
        "SUM(CASE WHEN next_is_exit = 1 THEN 1 ELSE 0 END) AS dropped_off, "
        f"{d.as_float('NULL')} AS days "
        "FROM chosen GROUP BY kind, stage "
        "UNION ALL SELECT 'flow', kind, stage, next_stage, COUNT(*), 0, 0, NULL "
        "FROM chosen WHERE next_stage IS NOT NULL GROUP BY kind, stage, next_stage "
        "UNION ALL SELECT 'current', kind, stage, NULL, COUNT(*), 0, 0, NULL FROM moves "
        f"WHERE left_at IS NULL OR left_at >= {ts} GROUP BY kind, stage "
        "UNION ALL SELECT 'median', kind, stage, NULL, 0, 0, 0, AVG(days) FROM stays "
        "WHERE n IN ((stays + 1) / 2, (stays + 2) / 2) GROUP BY kind, stage "
        # phase_entries has one row per customer and phase: COUNT(*) counts customers
        "UNION ALL SELECT 'phase', NULL, phase, NULL, COUNT(*), "
        "SUM(advanced), SUM(CASE WHEN advanced = 0 AND exits_later = 1 THEN 1 ELSE 0 END), NULL "
        "FROM phase_entries GROUP BY phase "
        "UNION ALL SELECT 'phase_current', NULL, m.phase, NULL, COUNT(DISTINCT m.customer), "
        "0, 0, NULL FROM moves m WHERE m.kind = m.customer_kind "
        f"AND (m.left_at IS NULL OR m.left_at >= {ts}) GROUP BY m.phase",
        CONVERTED_RANK,
        scope.ends_at,
        scope.ends_at,
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
