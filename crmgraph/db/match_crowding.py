"""Crowded blocks: a match key held by more than :data:`BLOCK_LIMIT` live
customers is no block, whatever its type. A name that common (every "Maria
Garcia" of a big database) identifies nobody, and neither does an e-mail,
phone or tax id that many share ("info@company.com", a switchboard, a
placeholder tax id): pairing every holder with every other made each write
of such a key cost in proportion to its holders, and the stored pairs grow
with their square (600 creates with one e-mail left 179,700 pairs, and a
create went from 18.7 to 163.9 ms).

A crowded block is never read whole: its size is counted on the key index up
to a cap (:func:`block_counts`, one seek of at most ``cap`` rows), and the
lookups read only the roomy blocks (:func:`roomy_blocks`). Its members are
paired through their other blocks only. When a write takes a block over the
limit or back under it, every member's pairs are recomputed
(:func:`crossed_members`), so the stored ``duplicate_pair`` table always
equals a computation from scratch; a writer of a crowded block that neither
joins nor leaves it locks it shared (:func:`steady_crowded`).

Two customers sharing a crowded identifier and a roomy name block are still
compared through the name (crmgraph.db.match_keys, crmgraph.db.match_blocks):
the shared identifier counts in their score as any evidence does; only the
block is gone.
"""

from __future__ import annotations

import weakref
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from crmgraph.db.engine import Database
from crmgraph.db.match_score import NAME
from crmgraph.db.match_sql import chunks, keys_per_lookup, keys_table, marks, values_table, written

# More live holders than this and a key is no block, for every key type: one
# limit, read here at call time (tests lower it).
BLOCK_LIMIT = 100

Key = tuple[str, str]


def crowded(count: int) -> bool:
    """Whether a block of ``count`` live holders is crowded."""
    return count > BLOCK_LIMIT


# Block sizes a transaction counted while it held the blocks' locks
# (crmgraph.db.match_keys.lock_keys), by transaction, as (size, exact): a size
# at the cap it was counted to is "at least". A block changes only under its
# lock held exclusively, and locks are held till the transaction ends, so such
# a count stays true but for the transaction's own writes (:func:`keys_written`).
# An import counted the same crowded name blocks at every batch, and their
# holders written by the import itself were each fetched from the heap (their
# index entries not yet known visible to all): a tenth of PostgreSQL's time
# halfway through a 1,000,000-row file. Only crowded blocks are kept: a roomy
# one is cheap to count again, and keeping every key an import met grew with
# its file (at most one crowded block per BLOCK_LIMIT key rows).
_counted: weakref.WeakKeyDictionary[Any, dict[Key, tuple[int, bool]]] = weakref.WeakKeyDictionary()


def _known_counts(db: Database) -> dict[Key, tuple[int, bool]] | None:
    """This transaction's counts taken under lock (None outside a transaction)."""
    transaction = db.engine.current_transaction.get()
    return None if transaction is None else _counted.setdefault(transaction, {})


def keys_written(db: Database, removed: Counter[Key], added: Counter[Key]) -> None:
    """This transaction's keys went from ``removed`` to ``added``: its counts follow
    (one no longer crowded, or an "at least" one that shrank, is dropped: counted
    again when asked)."""
    known = _known_counts(db)
    if not known:
        return
    for key in set(removed) | set(added):
        entry, change = known.get(key), added[key] - removed[key]
        if entry is None or change == 0:
            continue
        size, exact = entry
        if (exact or change > 0) and crowded(size + change):
            known[key] = (size + change, exact)
        else:
            del known[key]


def forget_counts(db: Database) -> None:
    """Every key rewritten at once (a rebuild): nothing counted holds."""
    known = _known_counts(db)
    if known is not None:
        known.clear()


async def block_counts(
    db: Database, keys: Sequence[Key], cap: int, *, locked: bool = False
) -> dict[Key, int]:
    """Each key's block size (its live holders) counted up to ``cap`` (a block at
    the cap is crowded before and after): counting all, per import batch, grew with it.
    One read of the key index per key, stopping at the cap, but for the keys this
    transaction counted already under their locks. ``locked``: the caller holds
    the keys' locks, and what is counted now is kept for the rest of the transaction."""
    known = _known_counts(db)
    counts: dict[Key, int] = {}
    unknown: list[Key] = []
    for key in keys:
        entry = known.get(key) if known is not None else None
        if entry is not None and (entry[1] or entry[0] >= cap):
            counts[key] = min(entry[0], cap)
        else:
            unknown.append(key)
    read = await _count_blocks(db, unknown, cap)
    if locked and known is not None:
        known.update((key, (size, size < cap)) for key, size in read.items() if crowded(size))
    return counts | read


async def _count_blocks(db: Database, keys: Sequence[Key], cap: int) -> dict[Key, int]:
    counts: dict[Key, int] = {}
    for chunk in chunks(keys, keys_per_lookup(db)):
        source, args = keys_table(chunk, db.is_sqlite)
        rows = await db.fetch(
            "SELECT n.column1 AS key_type, n.column2 AS key_value, (SELECT COUNT(*) FROM "
            "(SELECT 1 FROM customer_match_key b WHERE b.key_type = n.column1 AND "
            f"b.key_value = n.column2 LIMIT {{}}) AS held) AS n FROM {source}",
            cap,
            *args,
        )
        counts.update(((row["key_type"], row["key_value"]), int(row["n"])) for row in rows)
    return counts


async def crowded_keys(db: Database, keys: Sequence[Key]) -> set[Key]:
    """Those of ``keys`` whose block among live customers is crowded, each
    counted on the key index up to one past the limit (:func:`block_counts`)."""
    counts = await block_counts(db, keys, BLOCK_LIMIT + 1)
    return {key for key, count in counts.items() if crowded(count)}


def roomy_table(key_type: str) -> str:
    """The name of the CTE of :func:`roomy_blocks` holding ``key_type``'s roomy values."""
    return f"roomy_{key_type.lower()}"


def roomy_blocks(keys: Sequence[Key], sqlite: bool) -> tuple[str, list[Any]]:
    """The ``WITH`` clause, with its arguments, of one CTE per key type of
    ``keys`` (:func:`roomy_table`) holding those of its values whose block is
    no more than :data:`BLOCK_LIMIT`; ``""`` for no keys. Each is asked whether
    its block has a row past the limit, on the key index, and only the roomy
    ones are looked up: reading every wanted block and dropping the crowded
    ones after read the crowded blocks whole, which grow with the table."""
    by_type: dict[str, list[str]] = defaultdict(list)
    for key_type, value in keys:
        by_type[key_type].append(value)
    parts, args = [], []
    for key_type, values in sorted(by_type.items()):
        source, source_args = values_table(values, sqlite)
        parts.append(
            f"{roomy_table(key_type)} AS (SELECT n.column1 AS key_value FROM {source} "
            "WHERE NOT EXISTS (SELECT 1 FROM customer_match_key b "
            f"WHERE b.key_type = {written(key_type)} AND b.key_value = n.column1 "
            "LIMIT 1 OFFSET {}))"
        )
        args.extend([*source_args, BLOCK_LIMIT])
    return (f"WITH {', '.join(parts)} " if parts else ""), args


class CrowdingChanged(Exception):
    """A block locked shared as crowded was not crowded any more once the lock
    was held: the transaction runs again (run_transaction retries), locking it exclusively."""

    sqlstate = "40001"


async def steady_crowded(db: Database, removed: Counter[Key], added: Counter[Key]) -> list[Key]:
    """The keys of crowded blocks that this write neither joins nor leaves
    (its customers' keys were rewritten the same: a rename keeps the e-mail,
    an edit of the e-mail keeps the name). Nobody is paired through a crowded
    block, so two such writers need not wait for each other: they lock it
    shared. A writer that joins or leaves it locks it exclusively, so the
    block cannot cross the limit under a shared holder; the count is taken
    again once the locks are held (:func:`crossed_members`). PostgreSQL only:
    SQLite runs one write at a time and takes no locks."""
    steady = sorted(key for key in set(removed) | set(added) if removed[key] == added[key])
    if not steady or db.is_sqlite:
        return []
    return sorted(await crowded_keys(db, steady))


async def crossed_members(
    db: Database, removed: Counter[Key], added: Counter[Key], shared: Sequence[Key] = ()
) -> tuple[set[int], dict[Key, int]]:
    """The holders of the keys whose block went over or back under
    :data:`BLOCK_LIMIT` with this change (their keys went from ``removed`` to
    ``added``), and every key's block size now (up to a cap), by which the
    pairs' lookup reads only the roomy blocks. The ``shared`` keys, locked
    shared as crowded, are counted in the same statement: one that is crowded
    no more raises :class:`CrowdingChanged`."""
    keys = sorted(set(removed) | set(added))
    changed = [key for key in keys if removed[key] != added[key]]
    cap = BLOCK_LIMIT + 1 + max((added[key] for key in changed), default=0)
    after = await block_counts(db, keys, cap, locked=True)
    if any(not crowded(after.get(key, 0)) for key in shared):
        raise CrowdingChanged("a crowded block shrank while this write waited")
    crossed = []
    for key in changed:
        now = after.get(key, 0)
        if crowded(now) != crowded(now - added[key] + removed[key]):
            crossed.append(key)
    return await holders_of(db, crossed), after


async def holders_of(db: Database, keys: Sequence[Key]) -> set[int]:
    """The customers holding any of ``keys``, read per key type."""
    by_type: dict[str, list[str]] = defaultdict(list)
    for key_type, value in keys:
        by_type[key_type].append(value)
    members: set[int] = set()
    for key_type, values in sorted(by_type.items()):
        for chunk in chunks(values):
            rows = await db.fetch(
                "SELECT DISTINCT customer FROM customer_match_key "
                f"WHERE key_type = {written(key_type)} "
                f"AND key_value IN ({marks(chunk)})",
                *chunk,
            )
            members.update(row["customer"] for row in rows)
    return members


async def crowded_identifier_blocks(db: Database) -> dict[Key, list[int]]:
    """Every crowded e-mail, phone and tax id block with its holders, in id
    order: one read of the identifier keys (migration 0057, which stops
    pairing through them)."""
    rows = await db.fetch(
        "SELECT k.key_type, k.key_value, k.customer FROM customer_match_key k "
        f"WHERE k.key_type <> {written(NAME)} AND (k.key_type, k.key_value) IN ("
        "SELECT key_type, key_value FROM customer_match_key "
        f"WHERE key_type <> {written(NAME)} GROUP BY key_type, key_value "
        "HAVING COUNT(*) > {}) ORDER BY k.key_type, k.key_value, k.customer",
        BLOCK_LIMIT,
    )
    blocks: dict[Key, list[int]] = defaultdict(list)
    for row in rows:
        blocks[(row["key_type"], row["key_value"])].append(row["customer"])
    return dict(blocks)
