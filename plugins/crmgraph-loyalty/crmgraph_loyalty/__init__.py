"""crmgraph-loyalty: an example partner plugin for crmgraph.

Adds the ``distributor`` customer type, a loyalty-points ledger in its own
table, and a rule that a client becomes ``loyal`` only with enough points.
"""

__version__ = "0.1.0"
