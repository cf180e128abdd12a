"""The demo seed (``crmgraph demo``) creates the loyalty plugin's rows through
its ``crmgraph_seed_demo`` hook: the accounts the plugin would have opened,
consistent with its own rules."""

from __future__ import annotations

import os
import subprocess
import sys

from crmgraph import Settings
from crmgraph.testing import run_sql

from crmgraph_loyalty import demo, ledger


def test_the_demo_seed_opens_the_accounts_the_plugin_would_have(
    crmgraph_database_url: str, crmgraph_settings: Settings
) -> None:
    env = {
        **os.environ,
        "CRMGRAPH_DATABASE_URL": crmgraph_database_url,
        "CRMGRAPH_PLUGINS": "crmgraph_loyalty.plugin",
        "CRMGRAPH_LOAD_ENTRY_POINTS": "0",
    }
    seeded = subprocess.run(
        [sys.executable, "-m", "crmgraph", "demo", "--customers", "120"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert seeded.returncode == 0, seeded.stdout + seeded.stderr
    assert "demo data:" in seeded.stdout

    accounts = run_sql(
        crmgraph_settings,
        "SELECT a.customer_id, a.points, a.tier, r.stage FROM loyalty_account a "
        "JOIN customer_role r ON r.customer = a.customer_id AND r.kind = 'client' "
        "ORDER BY a.customer_id",
    )
    marks = ", ".join("{}" for _ in demo.HOLDS_AN_ACCOUNT)
    holders = run_sql(
        crmgraph_settings,
        "SELECT c.id FROM customer c JOIN customer_role r ON r.customer = c.id "
        f"AND r.kind = c.kind WHERE c.kind = 'client' AND r.stage IN ({marks}) ORDER BY c.id",
        *demo.HOLDS_AN_ACCOUNT,
    )
    assert len(holders) >= 5  # the demo has clients past "active" to give accounts to
    assert [a["customer_id"] for a in accounts] == [h["id"] for h in holders]
    for account in accounts:
        assert account["points"] >= ledger.WELCOME_BONUS
        assert account["tier"] == ledger.tier_for(account["points"])
        if account["stage"] == "loyal":
            assert account["points"] >= ledger.LOYAL_THRESHOLD
    assert len({a["points"] for a in accounts}) > 1  # drawn, not one constant
