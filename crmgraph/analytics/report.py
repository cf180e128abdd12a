"""The analytics report (``crmgraph report``): everything it shows, gathered once
so the terminal tables (:mod:`crmgraph.analytics.report_terminal`) and the HTML
page (:mod:`crmgraph.analytics.report_html`) tell the same story."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

from crmgraph.analytics import cohorts, funnel, satisfaction
from crmgraph.analytics.scope import EPOCH, AnalyticsScope
from crmgraph.db import queries
from crmgraph.db.engine import Database
from crmgraph.registry import Catalog

NO_VALUE = "—"


@dataclass(frozen=True)
class ReportData:
    starts_at: datetime.datetime
    ends_at: datetime.datetime
    kinds: tuple[str, ...]  # empty: every type
    owner: str | None  # how the caller named the owner filter; None: every owner
    generated_at: datetime.datetime
    funnel: funnel.Funnel
    by_channel: satisfaction.Satisfaction
    by_outcome: satisfaction.Satisfaction
    cohorts: list[cohorts.Cohort]

    @property
    def period(self) -> str:
        """The period as a person writes it: the last day is included."""
        return period_label(self.starts_at, self.ends_at)

    @property
    def filters(self) -> str:
        kinds = ", ".join(self.kinds) if self.kinds else "all"
        return f"types: {kinds} · owner: {self.owner or 'all'}"


class ReportError(Exception):
    """A report that cannot be made as asked: an unknown type or user, or a
    database without crmgraph's tables."""


async def scope_for(
    db: Database,
    catalog: Catalog,
    kinds: Sequence[str],
    owner: str | None,
    starts_at: datetime.datetime | None,
    ends_at: datetime.datetime | None,
) -> tuple[AnalyticsScope, str | None]:
    """The scope of a report over every customer (no row scope: for the CLI,
    which has full access) of ``kinds`` (all if empty) owned by ``owner`` (a
    user's id or e-mail, as the other commands name users), and the owner's
    e-mail."""
    try:
        await db.fetch("SELECT 1 FROM stage_change WHERE 1 = 0")
    except Exception as exc:  # any engine's "no such table", or no database at all
        raise ReportError(f"cannot read crmgraph's tables ({exc}): run `crmgraph migrate`") from exc
    kinds = tuple(dict.fromkeys(kinds))
    known = [t.key for t in catalog.customer_types]
    unknown = [k for k in kinds if k not in known]
    if unknown:
        raise ReportError(f"unknown customer type {', '.join(unknown)}; known: {', '.join(known)}")
    owner_ids: tuple[int, ...] = ()
    email = None
    if owner is not None:
        column, value = ("id", int(owner)) if owner.isdigit() else ("email", owner)
        rows = await db.fetch(f"SELECT id, email FROM crm_user WHERE {column} = {{}}", value)
        if not rows:
            raise ReportError(f"no user with {'id' if column == 'id' else 'e-mail'} {owner}")
        owner_ids, email = (int(rows[0]["id"]),), str(rows[0]["email"])
    customers = queries.CustomerQuery(kinds=kinds, owner_ids=owner_ids, scope=None)
    return AnalyticsScope.create(db, customers, starts_at, ends_at), email


async def gather(
    db: Database, catalog: Catalog, scope: AnalyticsScope, owner: str | None = None
) -> ReportData:
    """The funnel, satisfaction by channel and by outcome (overall and per month)
    and cohort retention, for the customers and period of ``scope``."""
    return ReportData(
        starts_at=scope.starts_at,
        ends_at=scope.ends_at,
        kinds=scope.kinds,
        owner=owner,
        generated_at=datetime.datetime.now(datetime.UTC),
        funnel=await funnel.lifecycle_funnel(db, catalog, scope),
        by_channel=await satisfaction.satisfaction(db, scope, "CHANNEL", "MONTH"),
        by_outcome=await satisfaction.satisfaction(db, scope, "OUTCOME", "MONTH"),
        cohorts=await cohorts.cohort_retention(db, scope),
    )


def period_label(starts_at: datetime.datetime, ends_at: datetime.datetime) -> str:
    start = "the beginning" if starts_at <= EPOCH else moment(starts_at, end=False)
    return f"{start} to {moment(ends_at, end=True)}"


def moment(at: datetime.datetime, end: bool) -> str:
    """A day where the moment is midnight UTC (an end at midnight names the day
    before: the period is half-open), else the moment in UTC to the minute."""
    at = at.astimezone(datetime.UTC)
    if at.time() == datetime.time(0):
        return (at.date() - datetime.timedelta(days=1 if end else 0)).isoformat()
    return at.strftime("%Y-%m-%d %H:%M UTC")


def percent(value: float | None) -> str:
    return NO_VALUE if value is None else f"{value * 100:.1f}%"


def number(value: float | None, places: int = 1) -> str:
    return NO_VALUE if value is None else f"{value:.{places}f}"


def key_label(key: str | None) -> str:
    """A grouping key as shown: interactions without an outcome group under None."""
    return "(none)" if key is None else key


# The report's tables, as header and cell texts both renderers lay out.
STAGE_HEADERS = ("Stage", "Phase", "Entered", "Current", "Conversion", "Drop-off", "Median days")
PHASE_HEADERS = ("Phase", "Entered", "Current", "Advanced", "Dropped off", "Conversion", "Drop-off")
SATISFACTION_HEADERS = ("Rated", "Average", "Satisfied")


def stage_cells(stage: funnel.StageFunnel) -> list[str]:
    return [
        stage.label,
        stage.phase,
        str(stage.entered),
        str(stage.current),
        percent(stage.conversion_rate),
        percent(stage.drop_off_rate),
        number(stage.median_days),
    ]


def phase_cells(phase: funnel.PhaseFunnel) -> list[str]:
    return [
        phase.phase,
        str(phase.entered),
        str(phase.current),
        str(phase.advanced),
        str(phase.dropped_off),
        percent(phase.conversion_rate),
        percent(phase.drop_off_rate),
    ]


def satisfaction_cells(row: satisfaction.SatisfactionRow) -> list[str]:
    return [
        key_label(row.key),
        str(row.rated),
        number(row.average, 2),
        percent(row.satisfied_share),
    ]
