"""Crowded identifier blocks pair nobody (crmgraph.db.match_crowding): an
e-mail, phone or tax id held by more than ``BLOCK_LIMIT`` live customers is
no block any more, as a common name was not. The pairs stored through such a
block go: the holders of every crowded identifier block have their pairs
recomputed (``match_keys.recompute_pairs``), and no other pair changes, so
the stored table equals a computation from scratch. One read of the
identifier keys finds them; rebuilding every pair instead took 147 s at
1,000,000 customers.

Reversed: every pair of two holders of a crowded identifier block that
scores LIKELY or more is stored again, as the earlier rule stored it (those
already stored, through another block, are kept as they are)."""

import itertools

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

from crmgraph.db import match_keys
from crmgraph.db.bulk import insert_rows
from crmgraph.db.engine import Database
from crmgraph.db.match_blocks import FoundPair
from crmgraph.db.match_crowding import crowded_identifier_blocks
from crmgraph.db.match_score import LIKELY, score
from crmgraph.db.match_sql import chunks, marks

ID = "2026-12-08T09:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "crowded identifier blocks pair nobody"


async def unpair_crowded() -> None:
    db = Database(engine_finder(), ())
    blocks = await crowded_identifier_blocks(db)
    members = sorted({pk for holders in blocks.values() for pk in holders})
    if members:
        await match_keys.recompute_pairs(db, members)


async def pair_crowded() -> None:
    db = Database(engine_finder(), ())
    await match_keys.lock_all_pairs(db)
    blocks = await crowded_identifier_blocks(db)
    members = sorted({pk for holders in blocks.values() for pk in holders})
    normals = await match_keys.live_normals(db, members)
    stored: set[tuple[int, int]] = set()
    for chunk in chunks(members):
        rows = await db.fetch(
            f"SELECT customer_a, customer_b FROM duplicate_pair WHERE customer_a IN ({marks(chunk)})",
            *chunk,
        )
        stored.update((row["customer_a"], row["customer_b"]) for row in rows)
    found: dict[tuple[int, int], FoundPair] = {}
    for holders in blocks.values():
        for left, right in itertools.combinations(holders, 2):  # in id order: the lower first
            if (left, right) in stored or (left, right) in found:
                continue
            value, reasons = score(normals[left], normals[right], LIKELY)
            if value >= LIKELY:
                found[(left, right)] = FoundPair(left, right, value, reasons)
    rows = [match_keys.pair_row(pair, normals, kinds=True) for pair in found.values()]
    await insert_rows(db, "duplicate_pair", rows, returning=False)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="crmgraph", description=DESCRIPTION)
    manager.add_raw(unpair_crowded)
    manager.add_raw_backwards(pair_crowded)
    return manager
