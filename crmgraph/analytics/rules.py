"""The documented rules behind customer scores. Each is data, turned into SQL
(or, for the next best action, applied to one customer's facts), so the
rules and their documentation cannot drift apart.

RFM scores run from 1 (worst) to 5 (best); 0 means no purchase at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Recency: days since the last purchase, at most this many -> score.
RECENCY_DAYS = ((30, 5), (90, 4), (180, 3), (365, 2))  # older purchases score 1
# Frequency: purchases in the period, at least this many -> score.
FREQUENCY_COUNTS = ((10, 5), (5, 4), (3, 3), (2, 2), (1, 1))
# Monetary: purchase total in the period, at least this much -> score.
MONETARY_TOTALS = ((10_000, 5), (5_000, 4), (1_000, 3), (250, 2))  # any purchase scores 1


@dataclass(frozen=True)
class Segment:
    key: str
    description: str
    condition: str  # SQL over recency_score (r), frequency_score (f), monetary_score (m)


# First match wins; every customer lands in exactly one segment.
RFM_SEGMENTS = (
    Segment("NO_PURCHASE", "Never bought in the period.", "f = 0"),
    Segment(
        "CHAMPIONS",
        "Bought recently, often and much (R>=4, F>=4, M>=4).",
        "r >= 4 AND f >= 4 AND m >= 4",
    ),
    Segment("LOYAL", "Buy regularly (R>=3, F>=3).", "r >= 3 AND f >= 3"),
    Segment("NEW", "First purchase recently (R>=4, F=1).", "r >= 4 AND f = 1"),
    Segment("POTENTIAL", "Recent buyers not yet regular (R>=3).", "r >= 3"),
    Segment("AT_RISK", "Used to buy often, not lately (R<=2, F>=3).", "f >= 3"),
    Segment("LOST", "Last purchase over a year ago (R=1).", "r = 1"),
    Segment("HIBERNATING", "Few purchases, none lately (R=2, F<=2).", "1 = 1"),
)


@dataclass(frozen=True)
class ChurnSignal:
    code: str
    points: int
    description: str


CONTACT_QUIET_DAYS = 60
PURCHASE_QUIET_DAYS = 180
SATISFACTION_WINDOW_DAYS = 90
LOW_SATISFACTION = 3  # a recent average below this is low
SATISFACTION_DROP = 1  # recent average this much below the previous window's is falling

CHURN_SIGNALS = (
    ChurnSignal("NO_RECENT_CONTACT", 30, f"No interaction in the last {CONTACT_QUIET_DAYS} days."),
    ChurnSignal(
        "PURCHASES_LAPSED", 25, f"Has bought, but not in the last {PURCHASE_QUIET_DAYS} days."
    ),
    ChurnSignal(
        "LOW_SATISFACTION",
        25,
        f"Average satisfaction below {LOW_SATISFACTION} over the last "
        f"{SATISFACTION_WINDOW_DAYS} days.",
    ),
    ChurnSignal(
        "FALLING_SATISFACTION",
        20,
        f"Average satisfaction of the last {SATISFACTION_WINDOW_DAYS} days at least "
        f"{SATISFACTION_DROP} point below the {SATISFACTION_WINDOW_DAYS} days before.",
    ),
    ChurnSignal("OVERDUE_NEEDS", 10, "Open needs past their due date."),
)
CHURN_SIGNAL_BY_CODE = {s.code: s for s in CHURN_SIGNALS}
# Churn is a risk for customers who have something to lose: those retained or expanding.
CHURN_PHASES = ("RETENTION", "EXPANSION")


def churn_level(score: int) -> str:
    """HIGH from 60 points, MEDIUM from 30, else LOW (scores are capped at 100)."""
    if score >= 60:
        return "HIGH"
    if score >= 30:
        return "MEDIUM"
    return "LOW"


ACTION_CODES = (
    "WIN_BACK",
    "FOLLOW_UP_NEED",
    "RETENTION_CALL",
    "SERVICE_RECOVERY",
    "FOLLOW_UP_LEAD",
    "PROPOSE_UPSELL",
    "CHECK_IN",
    "NONE",
)
TREND_STEP = 0.5  # recent average this much above/below the previous window's: UP/DOWN


def satisfaction_trend(recent: float | None, prior: float | None) -> str:
    if recent is None or prior is None:
        return "UNKNOWN"
    if recent - prior >= TREND_STEP:
        return "UP"
    if prior - recent >= TREND_STEP:
        return "DOWN"
    return "FLAT"


@dataclass(frozen=True)
class Action:
    code: str
    reason: str


def next_best_action(facts: dict[str, Any], signals: list[str], level: str) -> Action:
    """The first rule that matches one customer's facts (documented in docs/analytics.md):

    1. ended lifecycle: WIN_BACK if they ever bought, else NONE;
    2. open needs past due: FOLLOW_UP_NEED;
    3. churn risk HIGH: RETENTION_CALL;
    4. low or falling satisfaction: SERVICE_RECOVERY;
    5. engagement/acquisition with no contact for 14 days: FOLLOW_UP_LEAD;
    6. retained/expanding CHAMPIONS or LOYAL: PROPOSE_UPSELL;
    7. no contact for 60 days: CHECK_IN;
    8. otherwise NONE.
    """
    phase, segment = facts["phase"], facts["rfm_segment"]
    if phase == "ENDED":
        if facts["purchases"]:
            return Action("WIN_BACK", "Ended after buying: try to win them back.")
        return Action("NONE", "Lifecycle ended without a purchase.")
    if facts["overdue_needs"]:
        return Action("FOLLOW_UP_NEED", f"{facts['overdue_needs']} open need(s) past due.")
    if level == "HIGH":
        return Action("RETENTION_CALL", "High churn risk: " + ", ".join(signals) + ".")
    if "LOW_SATISFACTION" in signals or "FALLING_SATISFACTION" in signals:
        return Action("SERVICE_RECOVERY", "Satisfaction is low or falling.")
    quiet = facts["days_since_contact"]
    if phase in ("ENGAGEMENT", "ACQUISITION") and (quiet is None or quiet > 14):
        return Action("FOLLOW_UP_LEAD", "A lead not contacted for over 14 days.")
    if segment in ("CHAMPIONS", "LOYAL"):
        return Action("PROPOSE_UPSELL", f"A {segment.lower()} customer: propose more.")
    if "NO_RECENT_CONTACT" in signals:
        return Action("CHECK_IN", f"No contact for over {CONTACT_QUIET_DAYS} days.")
    return Action("NONE", "Nothing due.")
