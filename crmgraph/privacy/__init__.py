"""Personal data rights: access (:mod:`.export`), erasure (:mod:`.erasure`)
and consent (:mod:`.consent`).

The records about a party are those of its customer row and of every
customer merged into it (:mod:`.party`), in every core table and in every
plugin's through the ``crmgraph_personal_data_export`` and
``crmgraph_erase_personal_data`` hooks. Each request's rules (permission,
input checks, transaction): :mod:`crmgraph.operations.privacy`; GraphQL:
:mod:`crmgraph.schema.privacy`; command line: ``crmgraph privacy``.
"""

from __future__ import annotations

# What an erased text reads as: a column that may not be NULL, an audit or
# event value that existed. Never the value itself.
ERASED = "[erased]"
# A customer's name once erased: no letter or digit, so duplicate matching
# (crmgraph.db.normalize.name_tokens) derives no key from it and erased
# customers are never offered as duplicates of one another.
ERASED_NAME = "—"
