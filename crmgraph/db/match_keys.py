"""The stored match keys and likely pairs: ``customer_match_key`` and
``duplicate_pair``, kept with every write of a customer and rebuilt from
scratch by the migrations that introduced them.

Every live customer has *blocking keys* in ``customer_match_key (customer,
key_type, key_value)`` (see :meth:`crmgraph.db.match_score.Normal.blocking_keys`),
indexed on ``(key_type, key_value, customer)``, so that only customers sharing
a key with a party are read and scored; a key of any type held by more than
:data:`~crmgraph.db.match_crowding.BLOCK_LIMIT` customers is no block at all
(a name, e-mail or phone that common identifies nobody: see
:mod:`crmgraph.db.match_crowding`). Deleted (and so merged) and erased
customers have no keys. Every likely pair (``LIKELY`` or more) is stored in
``duplicate_pair`` and rewritten with the keys, in the same transaction (see
"stored pairs" below).

Every function takes the :class:`~crmgraph.db.engine.Database` and runs in
whatever transaction is current: call them inside the write's
``db.transaction()`` to have them commit or roll back with it. The dedupe
feature's lookups over these tables are crmgraph.dedupe.matching's.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from crmgraph.db import match_crowding, writes
from crmgraph.db.bulk import insert_rows
from crmgraph.db.engine import Database
from crmgraph.db.match_blocks import NAME_ONLY_CONFLICTS, BlockWork, FoundPair, likely_pairs
from crmgraph.db.match_crowding import (
    Key,
    block_counts,
    crossed_members,
    crowded,
    roomy_blocks,
    roomy_table,
    steady_crowded,
)
from crmgraph.db.match_normals import Normals, add_members
from crmgraph.db.match_score import (
    LIKELY,
    NAME,
    Normal,
    Probe,
    score,
)
from crmgraph.db.match_sql import (
    chunks,
    keys_per_lookup,
    marks,
    one_of,
    written,
)
from crmgraph.db.match_statistics import fresh_statistics

# A live customer, the only kind that has keys and pairs: neither deleted (nor
# so merged) nor erased (erasure leaves a placeholder name that must pair
# nobody). Migrations before erased_at (0022) rebuild with NOT_DELETED.
NOT_DELETED = "c.deleted_at IS NULL"
LIVE = f"{NOT_DELETED} AND c.erased_at IS NULL"


def holder_customer(columns: str, holder: str, sqlite: bool, condition: str = LIVE) -> str:
    """The join of ``customer c`` (its ``columns``, under ``condition``) to each
    key row found, by ``holder`` (its id): on PostgreSQL a lookup of the
    primary key per row, which the planner would otherwise trade for a hash
    join over every customer, reckoning each key asked for to have a holder
    when most have none (an import's keys are mostly new): a read of the
    whole table per statement, 7 to 35 ms at 20,000 customers. SQLite, with
    no LATERAL, looks it up by its key anyway."""
    if sqlite:
        return f"JOIN customer c ON c.id = {holder} AND {condition}"
    return (
        f"CROSS JOIN LATERAL (SELECT {columns} FROM customer c "
        f"WHERE c.id = {holder} AND {condition} OFFSET 0) AS c"
    )


def block_branches(
    keys: Sequence[Key], sqlite: bool, *, crowded_too: bool = False
) -> tuple[str, list[Any], list[tuple[str, list[Any]]]]:
    """The rows of ``customer_match_key`` holding one of ``keys`` that is a
    block, as one FROM item ``k`` (customer, key_type, key_value) per key type
    (each a range read of the key index per value), with its arguments; and
    the ``WITH`` clause (with its arguments) of the roomy values they read
    (:func:`~crmgraph.db.match_crowding.roomy_blocks`). Each is driven from
    the roomy values (SQLite keeps the left side of a CROSS JOIN outer, and
    PostgreSQL does not flatten a LATERAL subquery with OFFSET): as a semi-join
    of them the planner of a table it had no statistics of (new, or not yet
    analysed) read every key of the type, 16 ms at 400 customers, growing
    with the table. ``crowded_too``: crowded blocks are read as well, whole (a
    reference to a customer by its e-mail must know every holder, to call it
    ambiguous)."""
    by_type: dict[str, list[str]] = defaultdict(list)
    for key_type, value in keys:
        by_type[key_type].append(value)
    roomy, roomy_args = ("", []) if crowded_too else roomy_blocks(keys, sqlite)
    branches: list[tuple[str, list[Any]]] = []
    for key_type, values in sorted(by_type.items()):
        of_type = f"k.key_type = {written(key_type)} AND"
        rows = (
            f"SELECT k.customer, k.key_type, k.key_value FROM customer_match_key k WHERE {of_type}"
        )
        outer = f"{roomy_table(key_type)} AS r CROSS JOIN"
        if crowded_too:
            condition, args = one_of("k.key_value", values, sqlite)
            branches.append((f"({rows} {condition}) AS k", args))
        elif sqlite:
            branches.append(
                (f"{outer} customer_match_key k ON {of_type} k.key_value = r.key_value", [])
            )
        else:
            branches.append(
                (f"{outer} LATERAL ({rows} k.key_value = r.key_value OFFSET 0) AS k", [])
            )
    return roomy, roomy_args, branches


# more keys than this are locked by one lock on all pair maintenance (an import
# batch, a seed): PostgreSQL's lock table holds a few thousand locks in all
KEYS_LOCKED_ONE_BY_ONE = 64
PAIRS_LOCK = "duplicate_pair"


async def lock_keys(db: Database, keys: Iterable[Key], shared: Iterable[Key] = ()) -> None:
    """Transaction-level advisory locks on PostgreSQL: a lock per key, taken
    in sorted order (so writers cannot deadlock) under a shared lock on
    :data:`PAIRS_LOCK`; or, for more than :data:`KEYS_LOCKED_ONE_BY_ONE`
    keys, that lock alone, exclusive. A transaction holding them has no
    concurrent writer of the same keys, which would otherwise each miss the
    other's uncommitted keys and so their pair. The ``shared`` keys are
    locked shared: crowded blocks, of any key type, the write neither joins
    nor leaves (see :func:`~crmgraph.db.match_crowding.steady_crowded`)."""
    if db.is_sqlite:
        return
    modes = {f"{key_type}:{value}": False for key_type, value in shared}
    modes.update({f"{key_type}:{value}": True for key_type, value in keys})
    if not modes:
        return
    if len(modes) > KEYS_LOCKED_ONE_BY_ONE:
        await lock_all_pairs(db)
        return
    names = sorted(modes)
    rows = ", ".join("({}::text, {}::boolean)" for _ in names)
    await db.fetch(
        "SELECT COUNT(pg_advisory_xact_lock_shared(hashtext({}))) + COUNT(CASE WHEN k.x "
        "THEN pg_advisory_xact_lock(hashtext(k.v)) ELSE pg_advisory_xact_lock_shared("
        f"hashtext(k.v)) END) AS held FROM (VALUES {rows}) AS k(v, x)",
        PAIRS_LOCK,
        *[value for name in names for value in (name, modes[name])],
    )


async def lock_all_pairs(db: Database) -> None:
    if not db.is_sqlite:
        await db.fetch(
            "SELECT 1 AS held FROM (SELECT pg_advisory_xact_lock(hashtext({}))) AS l", PAIRS_LOCK
        )


async def insert_match_keys(
    db: Database,
    probes: Mapping[int, Probe],
    region: str | None = None,
    known: Normals | None = None,
) -> None:
    """Store the keys of customers that have none yet (just created), and
    their likely duplicate pairs. ``known``: normal forms already computed."""
    memo = Normals() if known is None else known
    normals = {pk: memo.of(probe, region) for pk, probe in sorted(probes.items())}
    added = await _write_keys(db, normals)
    await _refresh_pairs(db, list(normals), normals, Counter(), added, fresh=True)


async def refresh_match_keys(db: Database, customer_ids: Sequence[int]) -> None:
    """Recompute the keys of these customers from their rows as they are now,
    and their likely duplicate pairs: deleted (or merged) customers are left
    with none. Every write that changes a customer's name, e-mail, phone, tax
    id or deletes, restores or merges it calls this in its transaction."""
    ids = sorted(set(customer_ids))
    removed: Counter[Key] = Counter()
    for chunk in chunks(ids):
        gone = await db.fetch(
            f"DELETE FROM customer_match_key WHERE customer IN ({marks(chunk)}) "
            "RETURNING key_type, key_value",
            *chunk,
        )
        removed.update((row["key_type"], row["key_value"]) for row in gone)
    normals = await live_normals(db, ids)
    added = await _write_keys(db, normals)
    await _refresh_pairs(db, ids, normals, removed, added, fresh=False)


async def rebuild_match_keys(db: Database, *, live: str = LIVE) -> None:
    """Every customer's keys from scratch (migration 0014; the pairs are
    rebuilt by :func:`rebuild_duplicate_pairs`). ``live``: the condition on
    ``customer c`` of who has keys (:data:`NOT_DELETED` before migration 0022)."""
    await db.fetch("DELETE FROM customer_match_key")
    match_crowding.forget_counts(db)
    rows = await db.fetch(f"SELECT c.id FROM customer c WHERE {live} ORDER BY c.id")
    await _write_keys(db, await live_normals(db, [row["id"] for row in rows], live))


async def rebuild_duplicate_pairs(
    db: Database, *, live: str = LIVE, kinds: bool = True, work: BlockWork | None = None
) -> None:
    """Every likely pair from scratch (migration 0020; ``live`` as for
    :func:`rebuild_match_keys`, ``kinds=False`` before the pairs' kind columns
    of migration 0024): the customers with keys are read once and blocked in
    memory (:mod:`crmgraph.db.match_blocks`; ``work`` counts what it compared),
    on the keys their rows give, which are the stored ones."""
    await lock_all_pairs(db)
    await db.fetch("DELETE FROM duplicate_pair")
    rows = await db.fetch("SELECT DISTINCT customer FROM customer_match_key ORDER BY customer")
    normals = await live_normals(db, [row["customer"] for row in rows], live)
    found = likely_pairs(normals, match_crowding.BLOCK_LIMIT, work)
    await insert_rows(
        db, "duplicate_pair", [pair_row(p, normals, kinds) for p in found], returning=False
    )
    await fresh_statistics(db)


async def recompute_pairs(db: Database, customer_ids: Sequence[int]) -> None:
    """The stored pairs of these customers recomputed from their stored keys,
    under the lock of all pair maintenance: what a migration runs for the
    customers whose pairs a change of the rules changed (0057: the holders of
    crowded identifier blocks), where rebuilding every pair read every customer."""
    await lock_all_pairs(db)
    ids = sorted(set(customer_ids))
    await _drop_pairs(db, ids)
    normals = await live_normals(db, ids)
    await _store_pairs(db, normals, set(normals), {})


def pair_row(pair: FoundPair, normals: Mapping[int, Normal], kinds: bool) -> dict[str, Any]:
    """A ``duplicate_pair`` row (``kinds=False``: before migration 0024's kind columns)."""
    row = {
        "customer_a": pair.left,
        "customer_b": pair.right,
        "score": pair.score,
        "reasons": ", ".join(str(r) for r in pair.reasons),
    }
    if kinds:
        row.update(kind_a=normals[pair.left].kind, kind_b=normals[pair.right].kind)
    return row


async def live_normals(db: Database, ids: Sequence[int], live: str = LIVE) -> dict[int, Normal]:
    normals: dict[int, Normal] = {}
    for chunk in chunks(ids):
        rows = await db.fetch(
            f"SELECT c.id, c.kind, c.name, c.email, c.phone, c.attributes FROM customer c "
            f"WHERE c.id IN ({marks(chunk)}) AND {live}",
            *chunk,
        )
        normals.update((row["id"], Normal.of(Probe.from_row(row))) for row in rows)
    return normals


async def _write_keys(db: Database, normals: Mapping[int, Normal]) -> Counter[Key]:
    rows = [
        {"customer": pk, "key_type": key_type, "key_value": value}
        for pk, normal in sorted(normals.items())
        for key_type, value in normal.blocking_keys()
    ]
    await insert_rows(db, "customer_match_key", rows, returning=False)
    return Counter((row["key_type"], row["key_value"]) for row in rows)


# -- stored pairs -------------------------------------------------------------------
#
# ``duplicate_pair (customer_a < customer_b, score, reasons, kind_a, kind_b)`` holds every pair
# of live customers that share a block and score LIKELY or more, scored as
# ``score`` scores them: what ``duplicates`` pages through, by its index on
# (score, customer_a, customer_b). The writes above keep it: a customer whose
# keys are rewritten has its pairs recomputed through its blocks; and when a
# block of any key type crosses BLOCK_LIMIT (grows over it or shrinks back),
# every member's pairs are recomputed too, so the table is always what a
# computation from scratch gives (tests/test_duplicates.py checks it after
# writes of every kind, tests/test_crowded_identifiers.py as e-mail blocks
# cross the limit).


async def _refresh_pairs(
    db: Database,
    ids: Sequence[int],
    normals: Mapping[int, Normal],
    removed: Counter[Key],
    added: Counter[Key],
    *,
    fresh: bool,
) -> None:
    """Recompute the pairs of ``ids`` (whose keys went from ``removed`` to
    ``added``; ``normals`` holds the live ones) and of the members of blocks
    that crossed the limit. ``fresh``: ``ids`` are new customers, with no
    pairs stored yet."""
    match_crowding.keys_written(db, removed, added)
    shared = await steady_crowded(db, removed, added)
    touched = [key for key in removed + added if key not in shared]
    await lock_keys(db, touched, shared=shared)
    if len(touched) > KEYS_LOCKED_ONE_BY_ONE:
        await fresh_statistics(db, {key_type for key_type, _ in added})
    crossed, counts = await crossed_members(db, removed, added, shared)
    others = sorted(crossed - set(ids))
    subjects = dict(normals)
    if others:
        other_normals = await live_normals(db, others)
        await lock_keys(db, [k for n in other_normals.values() for k in n.blocking_keys()])
        subjects.update(other_normals)
    await _drop_pairs(db, others if fresh else sorted({*ids, *others}))
    await _store_pairs(db, subjects, {*ids, *others}, counts)


async def _drop_pairs(db: Database, ids: Sequence[int]) -> None:
    """Delete every stored pair of ``ids``."""
    for chunk in chunks(ids):
        held = marks(chunk)
        await writes.run_or_queue(  # on PostgreSQL it rides on the pairs' lookup
            db,
            "duplicate_pair",
            f"DELETE FROM duplicate_pair WHERE customer_a IN ({held}) OR customer_b IN ({held})",
            (*chunk, *chunk),
        )


async def _store_pairs(
    db: Database, normals: Mapping[int, Normal], subjects: set[int], counts: dict[Key, int]
) -> None:
    """Insert the likely pairs of the customers in ``normals`` (their pairs
    must not be stored already) through their blocks, set-based: per
    :func:`keys_per_lookup` keys, one statement reads every member of their
    roomy blocks with its stored keys (:func:`block_members`; ``counts``: the
    blocks' sizes known), each pair is scored once in Python (from its
    lower id when both are ``subjects``), and one multi-row INSERT stores
    them, with the two customers' kinds."""
    found: list[FoundPair] = []
    known: dict[int, Normal] = dict(normals)
    local: dict[Key, list[int]] = defaultdict(list)
    for pk, normal in sorted(normals.items()):
        for key in normal.blocking_keys():
            local[key].append(pk)
    for chunk in chunks(sorted(normals), keys_per_lookup(db)):
        probes = [normals[pk] for pk in chunk]
        holders = await block_members(db, probes, known, counts, local)
        for pk in chunk:
            normal = normals[pk]
            partners = {other for key in normal.blocking_keys() for other in holders.get(key, ())}
            for other in sorted(partners):
                if other == pk or (other in subjects and other < pk):
                    continue
                value, reasons = score(normal, known[other], LIKELY)
                if value >= LIKELY:
                    found.append(FoundPair(*sorted((pk, other)), value, reasons))
    rows = [pair_row(pair, known, kinds=True) for pair in found]
    await insert_rows(db, "duplicate_pair", rows, returning=False)


def _name_only_branches(
    probes: Sequence[Normal], roomy: set[str], sqlite: bool
) -> list[tuple[str, list[Any]]]:
    """SELECTs of the holders of the probes' name keys that can pair with them
    through the name alone (see :func:`score`): of a probe's kind, and holding
    none of the :data:`NAME_ONLY_CONFLICTS` the probe has (one holding the same
    value is found through that identifier's block, or, when that block is
    crowded, by :func:`_shared_crowd_branches`); only ``roomy`` blocks are
    read (a crowded one grows with the table).
    The condition is symmetric, so a pair of two probes is found from either
    side. Every member of a big name block is a namesake, and most differ in
    an e-mail or a phone: reading them all with their keys made an import
    slow down as its name blocks filled up towards the limit.

    One SELECT per set of conflicts, of the kinds of its probes (a holder of
    another probe's kind is scored and dropped: a handful of rows, where a
    SELECT per kind cost more to plan than to run), whose kind and conflicts
    are read by the customer's id (a join, and a subquery on its key index,
    per holder): as correlated subqueries in one OR they were hashed subplans
    that read every key row of the table in every statement, and as an
    anti-join PostgreSQL hashed every e-mail and phone key of the table for
    an import's thousand keys."""
    names: dict[tuple[str, ...], set[str]] = defaultdict(set)
    kinds: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for normal in probes:
        if normal.kind is None or not normal.name_keys:
            continue  # a name alone pairs only customers of one kind
        held = {key_type for key_type, _ in normal.blocking_keys()}
        conflicts = tuple(t for t in NAME_ONLY_CONFLICTS if t in held)
        names[conflicts].update(key for key in normal.name_keys if key in roomy)
        kinds[conflicts].add(normal.kind)
    # SQLite, without statistics until an ANALYZE, would look a namesake's conflicts up
    # on the key index by type (every e-mail and phone key of the table, per namesake);
    # `|| ''` leaves it the customer's index. On PostgreSQL, OFFSET 0 keeps the NOT
    # EXISTS a subquery per holder on the customer's index, never an anti-join.
    conflict_type, per_row = ("x.key_type || ''", "") if sqlite else ("x.key_type", " OFFSET 0")
    branches = []
    for conflicts, values in sorted(names.items()):
        if not values:
            continue
        named, args = one_of("k.key_value", sorted(values), sqlite)
        of_kinds, kind_args = one_of("n.kind", sorted(kinds[conflicts]), sqlite)
        sql = (
            "SELECT k.customer FROM customer_match_key k "
            f"WHERE k.key_type = {written(NAME)} AND {named}"
        )
        if conflicts:
            sql += (
                " AND NOT EXISTS (SELECT 1 FROM customer_match_key x WHERE x.customer = k.customer "
                f"AND {conflict_type} IN ({', '.join(map(written, conflicts))}){per_row})"
            )
        # the kind by the holder's id, after the conflicts: joined, PostgreSQL read
        # every customer of the kinds (13,690 of 20,000) for the dozen holders left
        sql += (
            " AND EXISTS (SELECT 1 FROM customer n "
            f"WHERE n.id = k.customer AND {of_kinds}{per_row})"
        )
        branches.append((sql, [*args, *kind_args]))
    return branches


def _shared_crowd_branches(
    probes: Sequence[Normal], roomy: set[Key], sqlite: bool
) -> list[tuple[str, list[Any]]]:
    """The SELECT of the holders of the probes' roomy name keys who share one
    of their crowded identifiers (e-mail, phone, tax id): such a pair is found
    through no identifier block, and the name-only rule leaves it out (both
    hold that identifier's type), yet the identifier they share counts in its
    score as ever. Only probes holding a crowded identifier ask, which is
    rare. A holder sharing any of the values of the probes asked for is read
    (and scored, dropped if it scores under LIKELY); the values of different
    key types never coincide."""
    names: set[str] = set()
    shared: set[str] = set()
    for normal in probes:
        keys = normal.blocking_keys()
        mine = {key[1] for key in keys if key[0] != NAME and key not in roomy}
        named = {key[1] for key in keys if key[0] == NAME and key in roomy}
        if mine and named:
            names |= named
            shared |= mine
    if not names:
        return []
    named_sql, args = one_of("k.key_value", sorted(names), sqlite)
    shared_sql, shared_args = one_of("x.key_value", sorted(shared), sqlite)
    # as in _name_only_branches: the holder's keys by its id, per holder
    per_row = "" if sqlite else " OFFSET 0"
    sql = (
        "SELECT k.customer FROM customer_match_key k "
        f"WHERE k.key_type = {written(NAME)} AND {named_sql} AND EXISTS (SELECT 1 "
        f"FROM customer_match_key x WHERE x.customer = k.customer AND {shared_sql}{per_row})"
    )
    return [(sql, [*args, *shared_args])]


def _member_branches(
    probes: Sequence[Normal], roomy: set[Key], sqlite: bool
) -> tuple[str, list[Any]]:
    """The customers holding the probes' ``roomy`` identifier keys or a roomy
    name key they can pair through (:func:`_name_only_branches`,
    :func:`_shared_crowd_branches`), as a UNION ALL of one SELECT per
    identifier type and per name group, each a range read of the key index:
    one OR of them all was a bitmap scan whose filter was checked again on
    every row it found, and whose cost (hundreds of thousands) got the
    statement JIT-compiled."""
    by_type: dict[str, list[str]] = defaultdict(list)
    for key_type, value in sorted(roomy):
        if key_type != NAME:
            by_type[key_type].append(value)
    branches, args = [], []
    for key_type, values in sorted(by_type.items()):
        condition, values_args = one_of("k.key_value", values, sqlite)
        branches.append(
            "SELECT k.customer FROM customer_match_key k "
            f"WHERE k.key_type = {written(key_type)} AND {condition}"
        )
        args.extend(values_args)
    names = {value for key_type, value in roomy if key_type == NAME}
    for sql, branch_args in [
        *_name_only_branches(probes, names, sqlite),
        *_shared_crowd_branches(probes, roomy, sqlite),
    ]:
        branches.append(sql)
        args.extend(branch_args)
    return " UNION ALL ".join(branches), args


def _probe_chunks(probes: Sequence[Normal], size: int) -> list[list[Normal]]:
    """The probes in runs of at most ``size`` keys."""
    probe_chunks: list[list[Normal]] = [[]]
    held = 0
    for normal in probes:
        keys = len(normal.blocking_keys())
        if held + keys > size and probe_chunks[-1]:
            probe_chunks.append([])
            held = 0
        probe_chunks[-1].append(normal)
        held += keys
    return probe_chunks


async def block_members(
    db: Database,
    probes: Sequence[Normal],
    known: dict[int, Normal],
    counts: dict[Key, int],
    local: Mapping[Key, Sequence[int]],
) -> dict[Key, list[int]]:
    """The ids of the live customers holding each of the probes' keys that can
    pair with a probe holding it (crowded keys of every type left out, and not
    read; of a name key, only the holders :func:`_name_only_branches` and
    :func:`_shared_crowd_branches` keep, and maybe more), one statement per
    :func:`keys_per_lookup` keys; the normal form of each member not in
    ``known`` is added to it, built from its stored keys (already normal: no
    e-mail or phone is parsed again) and its kind and name. ``counts``:
    blocks' sizes counted under this write's locks (by
    :func:`~crmgraph.db.match_crowding.crossed_members`); the others are
    counted here, into it.
    ``local``: the holders of keys among the customers whose normal forms the
    caller has (an import batch's new customers), taken from it and not read:
    they were most of the members read, each with its keys and customer row."""
    holders: dict[Key, list[int]] = defaultdict(list)
    mine = sorted({pk for pks in local.values() for pk in pks})
    for chunk_probes in _probe_chunks(probes, keys_per_lookup(db)):
        chunk = sorted({key for normal in chunk_probes for key in normal.blocking_keys()})
        unknown = [key for key in chunk if key not in counts]
        counts.update(await block_counts(db, unknown, match_crowding.BLOCK_LIMIT + 1, locked=True))
        roomy = {key for key in chunk if not crowded(counts.get(key, 0))}
        for key in roomy:  # holders are read as sets: their order does not matter
            holders[key].extend(local.get(key, ()))
        members, member_args = _member_branches(chunk_probes, roomy, db.is_sqlite)
        if not members:
            continue
        # PostgreSQL hashes the ids once (a hashed subplan); `<> ALL` of an array
        # argument compared each key row read with every id, a thousand per row
        theirs, mine_args = (
            (f"h.customer IN ({marks(mine)})", mine)
            if db.is_sqlite
            else ("h.customer IN (SELECT unnest({}::bigint[]))", [mine])
        )
        customer = holder_customer("c.kind, c.name", "m.customer", db.is_sqlite)
        rows = await db.fetch(
            "SELECT m.customer, m.key_type, m.key_value, c.kind, c.name "
            f"FROM customer_match_key m {customer} "
            f"WHERE m.customer IN (SELECT h.customer FROM ({members}) AS h WHERE NOT ({theirs}))",
            *member_args,
            *mine_args,
        )
        add_members(rows, roomy, holders, known)
    return holders
