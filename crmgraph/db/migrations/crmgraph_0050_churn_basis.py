"""``churn_basis``: each churn candidate's last contact, last purchase and
ratings of its last 180 rated days, with its tally key, kept by triggers on
``interaction`` and ``customer_tally_key`` (crmgraph.db.churn_basis says
why), so the churn list scores a candidate from one row. PostgreSQL only;
the existing candidates are computed here once (about 3 s at 100,000
customers / 1,000,000 interactions)."""

from crmgraph.db import churn_basis
from crmgraph.db.migrate import raw_migration

ID = "2026-12-07T05:01:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "churn basis"


forwards = raw_migration(
    ID, DESCRIPTION, churn_basis.create_statements, churn_basis.drop_statements
)
