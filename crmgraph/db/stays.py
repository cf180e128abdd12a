"""When each stay in a stage ended: ``stage_change.left_at`` and ``next_stage``.

A stage change row is an entry into a stage; the stay it starts ends at the
next change of the same customer type. That end is written when the next
change is (``leave_stage``, in the transition's transaction), so the funnel
reads each stay from its own row instead of pairing rows with window functions
over the whole history (on 315,000 changes the sort alone took most of a second).
Rows written in bulk (demo data, benchmark seeds, test fixtures, the migration
that added the columns) get theirs from ``record_stays`` in one statement.

Each row also keeps what the funnel's phase counts need (``record_phases``,
below): catalog-dependent, so recomputed for the whole history when the
catalog's stages change.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from crmgraph.db import writes
from crmgraph.db.engine import Database

# UPDATE ... FROM: PostgreSQL, and SQLite since 3.33
RECORD_STAYS = (
    "UPDATE stage_change SET left_at = later.left_at, next_stage = later.next_stage "
    "FROM (SELECT id, LEAD(at) OVER w AS left_at, LEAD(to_stage) OVER w AS next_stage "
    "FROM stage_change{where} "
    "WINDOW w AS (PARTITION BY customer, kind ORDER BY at, id)) later "
    "WHERE later.id = stage_change.id AND later.left_at IS NOT NULL"
)


async def record_stays(db: Database, customer_ids: Sequence[int] | None = None) -> None:
    """Fill ``left_at``/``next_stage`` and the phase columns from the history,
    for every customer or these."""
    if customer_ids is None:
        await db.fetch(RECORD_STAYS.format(where=""))
    else:
        marks = ", ".join("{}" for _ in customer_ids)
        await db.fetch(RECORD_STAYS.format(where=f" WHERE customer IN ({marks})"), *customer_ids)
    await record_phases(db, customer_ids)


async def leave_stage(
    db: Database, pk: int, kind: str, next_stage: str, at: datetime.datetime
) -> None:
    """End the customer's open stay in ``kind``: called as it enters ``next_stage``."""
    await writes.run_or_queue(
        db,
        "stage_change",
        "UPDATE stage_change SET left_at = {}, next_stage = {} "
        "WHERE customer = {} AND kind = {} AND left_at IS NULL",
        (at, next_stage, pk, kind),
    )


# What the funnel's phase counts need of each entry, kept with the row as its
# end is (crmgraph.analytics.funnel reads them; see record_phases):
# - ``phase_prev_at``: the customer's previous entry, in the same type, into a
#   stage of the same phase (an entry is its type's first into the phase in a
#   period when that one is older than the period, or missing);
# - ``advanced_at``: the first later entry, in the same type, into a stage of a
#   further phase (or a conversion) that does not end the lifecycle;
# - ``exited_at``: the first later entry, in the same type, into an exit stage;
# - ``irregular``: 1 where the customer entered the phase in more than one type
#   (its counts combine the types), and for every entry of a customer whose
#   stays do not end where the next entry of their type begins (merged
#   histories: two stays may be open at once): counted customer by customer.
# "Later" is strictly later in time; phases are those of ``stage_phase``, the
# catalog's stages as the values were computed with (the funnel compares it
# with the running catalog and recomputes everything when they differ).
PHASE_COLUMNS = ("phase_prev_at", "advanced_at", "exited_at", "irregular")
# a stage's phase as ``PHASE_RANK``, ``phase_rank`` (a conversion ranks past
# every phase), ``is_exit`` (ends the lifecycle without converting) and the
# derivation the columns were computed with
STAGE_PHASE_COLUMNS = ("kind", "stage", "phase_no", "phase_rank", "is_exit", "derivation")
# the version of record_phases_sql: a new one recomputes the columns as a new catalog does
DERIVATION = 1
FURTHER_RANKS = (2, 3, 4, 5)  # the ranks past ENGAGEMENT (1) .. EXPANSION (4)


def record_phases_sql(where: str, sqlite: bool) -> str:
    """The UPDATE writing ``PHASE_COLUMNS`` from the history (``where`` limits
    the customers, e.g. `` WHERE customer IN (...)``); rows already right are
    not written again."""
    reached = ", ".join(
        f"MIN(CASE WHEN is_exit = 0 AND phase_rank >= {rank} THEN at END) OVER later "
        f"AS reached_{rank}"
        for rank in FURTHER_RANKS
    )
    advanced = " ".join(f"WHEN {rank - 1} THEN reached_{rank}" for rank in FURTHER_RANKS)
    differs = " OR ".join(
        f"stage_change.{c} {'IS NOT' if sqlite else 'IS DISTINCT FROM'} d.{c}"
        for c in PHASE_COLUMNS
    )
    return (
        "UPDATE stage_change SET "
        + ", ".join(f"{c} = d.{c}" for c in PHASE_COLUMNS)
        + " FROM (SELECT id, phase_prev_at, "
        f"CASE phase_no {advanced} END AS advanced_at, exited_at, "
        "CASE WHEN MIN(kind) OVER phase_rows < MAX(kind) OVER phase_rows "
        "OR MAX(broken) OVER (PARTITION BY customer) = 1 THEN 1 ELSE 0 END AS irregular "
        "FROM (SELECT id, customer, kind, phase_no, "
        "LAG(at) OVER (PARTITION BY customer, kind, phase_no ORDER BY at, id) AS phase_prev_at, "
        f"{reached}, MIN(CASE WHEN is_exit = 1 THEN at END) OVER later AS exited_at, "
        # a stay ends where the next entry of its type begins, or is open
        "CASE WHEN left_at = LEAD(at) OVER chain "
        "OR (left_at IS NULL AND LEAD(at) OVER chain IS NULL) THEN 0 ELSE 1 END AS broken "
        "FROM (SELECT sc.id, sc.customer, sc.kind, sc.at, sc.left_at, "
        "p.phase_no, p.phase_rank, p.is_exit FROM stage_change sc "
        "LEFT JOIN stage_phase p ON p.kind = sc.kind AND p.stage = sc.to_stage"
        f"{where}) entries "
        "WINDOW chain AS (PARTITION BY customer, kind ORDER BY at, id), "
        "later AS (PARTITION BY customer, kind ORDER BY at "
        "RANGE BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING EXCLUDE GROUP)) w "
        "WINDOW phase_rows AS (PARTITION BY customer, phase_no)) d "
        f"WHERE d.id = stage_change.id AND ({differs})"
    )


async def record_phases(db: Database, customer_ids: Sequence[int] | None = None) -> None:
    """Write ``PHASE_COLUMNS`` for every customer or these: after each entry
    and whenever rows change customer (merges)."""
    if customer_ids is None:
        await db.fetch(record_phases_sql("", db.is_sqlite))
        return
    marks = ", ".join("{}" for _ in customer_ids)
    where = f" WHERE sc.customer IN ({marks})"
    await db.fetch(record_phases_sql(where, db.is_sqlite), *customer_ids)


async def stored_stage_phases(db: Database) -> set[tuple]:
    """``stage_phase``: the stages the phase columns were computed with."""
    rows = await db.fetch(f"SELECT {', '.join(STAGE_PHASE_COLUMNS)} FROM stage_phase")
    return {tuple(row[c] for c in STAGE_PHASE_COLUMNS) for row in rows}


def changed_kinds(stored: set[tuple], stages: set[tuple]) -> set[str] | None:
    """The types whose stages differ between ``stored`` and ``stages``
    (``STAGE_PHASE_COLUMNS`` rows), or None when every entry must be
    recomputed: nothing stored yet, or another derivation."""
    derivations = {row[-1] for row in stored}
    if not stored or derivations != {DERIVATION}:
        return None
    return {row[0] for row in stored ^ stages}


async def store_stage_phases(db: Database, stages: set[tuple]) -> None:
    """Replace ``stage_phase`` with ``stages`` and recompute the phase columns
    from it: when the catalog's stages changed (a plugin added, removed or
    redefined). Only the customers with entries of a changed type, all
    their entries (a customer's columns depend on its own entries alone,
    ``irregular`` on all its types): a plugin changing one type's lifecycle
    rewrites that type's customers, not the whole history.
    The caller holds a transaction."""
    kinds = changed_kinds(await stored_stage_phases(db), stages)
    await db.fetch("DELETE FROM stage_phase")
    marks = ", ".join("{}" for _ in STAGE_PHASE_COLUMNS)
    for stage in sorted(stages):
        await db.fetch(
            f"INSERT INTO stage_phase ({', '.join(STAGE_PHASE_COLUMNS)}) VALUES ({marks})", *stage
        )
    if kinds is None:
        await record_phases(db)
    elif kinds:
        marks = ", ".join("{}" for _ in kinds)
        where = f" WHERE sc.customer IN (SELECT customer FROM stage_change WHERE kind IN ({marks}))"
        await db.fetch(record_phases_sql(where, db.is_sqlite), *sorted(kinds))
    if not db.is_sqlite:
        await db.fetch("ANALYZE stage_change")
