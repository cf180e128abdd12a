"""Likely duplicates: which existing customers a party (a *probe*) may be.

How it works. Every live customer has *blocking keys* in
``customer_match_key`` (its normal e-mail, phone and tax id, and two name
keys), and every likely pair (:data:`LIKELY` or more) is stored in
``duplicate_pair``; crmgraph.db.match_keys writes both in the transaction of
every customer write, and crmgraph.db.match_score says how a pair scores and
why (``reasons``). Only customers that share a key with the probe are read
and scored, so nothing compares every pair; a key of any type (a name, an
e-mail, a phone, a tax id) held by more than
:data:`~crmgraph.db.match_crowding.BLOCK_LIMIT` customers is no block at all:
so common, it identifies nobody. ``duplicates`` reads a page of stored pairs by an index
(:func:`duplicate_pairs`). This module is the dedupe feature's API over them:
the names of those two modules used below are importable from here too.

Contacts' e-mails and phones are not evidence: a contact is a person *at* a
customer, and the company and the person are different parties, so counting
them would pair companies with their own staff. :data:`STRONG` (0.8) needs an
exact identifier; a type whose duplicate rule is ``block`` refuses a create at
that score. Nothing is ever merged automatically.

Use (every function takes the :class:`~crmgraph.db.engine.Database` and runs
in whatever transaction is current, so call them inside the write's
``db.transaction()`` to have them commit or roll back with it)::

    from crmgraph.dedupe.matching import Probe, find_candidates, refresh_match_keys

    found = await find_candidates(db, Probe(name="Ana Lopez", email="ANA@x.com", kind="client"))
    for candidate in found:  # best first
        candidate.customer_id, candidate.score, [str(r) for r in candidate.reasons]

    # after any write that changes customers' name, e-mail, phone, tax id, or
    # deletes, restores or merges them: their keys and their stored pairs
    await refresh_match_keys(db, [survivor_id, merged_id])

    # many probes at once (an importer): one SELECT per 1,000 distinct keys (10,000 on PostgreSQL)
    per_probe = await find_candidates_batch(db, probes)   # a list per probe, same order
    await insert_match_keys(db, {new_id: probe, ...})    # keys and pairs of new customers
    pairs_within(probes)                                  # likely pairs inside the batch

Probes hold raw values, normalised as :mod:`crmgraph.db.match_score` says.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from crmgraph.db.engine import Database
from crmgraph.db.match_crowding import crowded, crowded_keys
from crmgraph.db.match_keys import (
    LIVE,
    Normals,
    block_branches,
    chunks,
    holder_customer,
    insert_match_keys,
    keys_per_lookup,
    lock_keys,
    marks,
    refresh_match_keys,
)
from crmgraph.db.match_score import (
    EMAIL,
    LIKELY,
    NAME,
    NAME_SIMILAR_FROM,
    PHONE,
    STRONG,
    TAX_ID,
    Normal,
    Probe,
    Reason,
    keys_that_can_reach,
    match_keys,
    name_similarity,
    score,
)
from crmgraph.db.queries import CustomerScope, Where

__all__ = [
    "CANDIDATE_COLUMNS",
    "EMAIL",
    "LIKELY",
    "NAME",
    "NAME_SIMILAR_FROM",
    "PHONE",
    "STRONG",
    "TAX_ID",
    "Candidate",
    "Normal",
    "Normals",
    "Pair",
    "PairPage",
    "Probe",
    "Reason",
    "Visible",
    "crowded",
    "crowded_keys",
    "customers_by_keys",
    "duplicate_pairs",
    "find_candidates",
    "find_candidates_batch",
    "insert_match_keys",
    "keys_that_can_reach",
    "lock_identifiers",
    "match_keys",
    "name_similarity",
    "pairs_within",
    "refresh_match_keys",
    "score",
]

CANDIDATE_COLUMNS = "c.id, c.kind, c.name, c.email, c.phone, c.attributes, c.owner, c.team"

Visible = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True)
class Candidate:
    """A likely duplicate. ``row`` is the customer as read (``id, kind, name,
    email, phone, attributes, owner, team``), to show or to check visibility
    without reading it again."""

    customer_id: int
    score: float
    reasons: tuple[Reason, ...]
    row: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


class RowNormals(dict[int, Normal]):
    """Customer rows' normal forms, each computed once (a row is read as the
    candidate of many probes)."""

    def of(self, row: Mapping[str, Any]) -> Normal:
        found = self.get(row["id"])
        if found is None:
            found = self[row["id"]] = Normal.of(Probe.from_row(row))
        return found


def _best(
    probe: Normal,
    own_id: int | None,
    rows: Iterable[Mapping[str, Any]],
    limit: int,
    min_score: float,
    visible: Visible | None,
    normals: RowNormals,
) -> list[Candidate]:
    found = []
    for row in rows:
        if row["id"] == own_id or (visible is not None and not visible(row)):
            continue
        value, reasons = score(probe, normals.of(row), min_score)
        if value >= min_score:
            found.append(Candidate(row["id"], value, reasons, row))
    found.sort(key=lambda c: (-c.score, c.customer_id))
    return found[:limit]


async def customers_by_keys(
    db: Database,
    keys: set[tuple[str, str]],
    exclude_ids: Sequence[int],
    *,
    crowded_too: bool = False,
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The live customers holding each key (rows of :data:`CANDIDATE_COLUMNS`),
    keys of crowded blocks (over ``BLOCK_LIMIT``, any type) left out and not
    read, unless ``crowded_too`` (a reference by e-mail or tax id, which must
    know every holder to call it ambiguous): one statement per
    :func:`~crmgraph.db.match_sql.keys_per_lookup` keys (an import batch's
    screening in one), a UNION ALL of one range read of the key index per key type."""
    holders: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for chunk in chunks(sorted(keys), keys_per_lookup(db)):
        roomy, roomy_args, branches = block_branches(chunk, db.is_sqlite, crowded_too=crowded_too)
        selects, args = [], list(roomy_args)
        live = Where()
        live.add(LIVE)
        if exclude_ids:
            live.add(f"c.id NOT IN ({marks(exclude_ids)})", *exclude_ids)
        customer = holder_customer(CANDIDATE_COLUMNS, "k.customer", db.is_sqlite, live.sql())
        for source, branch_args in branches:
            selects.append(
                f"SELECT k.key_type, k.key_value, {CANDIDATE_COLUMNS} FROM {source} {customer}"
            )
            args.extend([*branch_args, *live.args])
        if not selects:
            continue
        for row in await db.fetch(f"{roomy}{' UNION ALL '.join(selects)}", *args):
            holders[(row.pop("key_type"), row.pop("key_value"))].append(row)
    return holders


async def find_candidates_batch(
    db: Database,
    probes: Sequence[Probe],
    *,
    exclude_ids: Sequence[int] = (),
    limit: int = 20,
    min_score: float = LIKELY,
    region: str | None = None,
    visible: Visible | None = None,
    known: Normals | None = None,
) -> list[list[Candidate]]:
    """For each probe, in order, its likely duplicates among live customers,
    best first. ``visible`` (a customer row -> bool) keeps only the customers
    a caller may see; ``exclude_ids`` are never candidates; ``known``: normal
    forms already computed (and where to keep those computed here)."""
    memo = known if known is not None else Normals()
    normals = [memo.of(probe, region) for probe in probes]
    keys = [keys_that_can_reach(normal, min_score) for normal in normals]
    wanted = {key for some in keys for key in some}
    holders = await customers_by_keys(db, wanted, exclude_ids) if wanted else {}
    row_normals = RowNormals()
    results = []
    for probe, normal, own in zip(probes, normals, keys, strict=True):
        rows = {row["id"]: row for key in own for row in holders.get(key, ())}
        results.append(
            _best(normal, probe.customer_id, rows.values(), limit, min_score, visible, row_normals)
        )
    return results


async def find_candidates(
    db: Database,
    probe: Probe,
    *,
    exclude_ids: Sequence[int] = (),
    limit: int = 20,
    min_score: float = LIKELY,
    region: str | None = None,
    visible: Visible | None = None,
) -> list[Candidate]:
    """One probe's likely duplicates, best first (one SELECT)."""
    (found,) = await find_candidates_batch(
        db,
        [probe],
        exclude_ids=exclude_ids,
        limit=limit,
        min_score=min_score,
        region=region,
        visible=visible,
    )
    return found


def pairs_within(
    probes: Sequence[Probe],
    *,
    min_score: float = LIKELY,
    region: str | None = None,
    known: Normals | None = None,
) -> list[tuple[int, int, float, tuple[Reason, ...]]]:
    """Likely duplicate pairs among the probes themselves, as (index, index,
    score, reasons) with the first index smaller: blocked on the same keys,
    in memory (blocks over ``BLOCK_LIMIT`` among the probes left out, of any
    key type, as in the database), for a batch not yet written or to
    recompute the stored pairs."""
    memo = known if known is not None else Normals()
    normals = [memo.of(probe, region) for probe in probes]
    blocks: dict[tuple[str, str], list[int]] = defaultdict(list)
    for index, normal in enumerate(normals):
        for key in keys_that_can_reach(normal, min_score):
            blocks[key].append(index)
    seen: set[tuple[int, int]] = set()
    found = []
    for members in blocks.values():
        # read where it is set, so a test's lower limit holds here as in the database
        if crowded(len(members)):
            continue
        for i, j in itertools.combinations(members, 2):
            if (i, j) in seen:
                continue
            seen.add((i, j))
            value, reasons = score(normals[i], normals[j], min_score)
            if value >= min_score:
                found.append((i, j, value, reasons))
    return sorted(found)


async def lock_identifiers(db: Database, probe: Probe, region: str | None = None) -> None:
    """Hold, until the transaction ends, a lock per exact identifier of the
    probe (e-mail, phone, tax id), so two writers checking the same party
    cannot both miss each other: the second waits for the first's commit and
    then finds its keys. PostgreSQL only; SQLite already runs one write
    transaction at a time."""
    keys = [k for k in Normal.of(probe, region).blocking_keys() if k[0] != NAME]
    await lock_keys(db, keys)


def _reasons(text: str) -> tuple[Reason, ...]:
    return tuple(Reason(*part.split(" ", 1)) for part in text.split(", ") if part)


@dataclass(frozen=True)
class Pair:
    left_id: int
    right_id: int
    score: float
    reasons: tuple[Reason, ...]

    @property
    def position(self) -> tuple[float, int, int]:
        """Its place in the list's order, the cursor to read on after it."""
        return (self.score, self.left_id, self.right_id)


@dataclass(frozen=True)
class PairPage:
    pairs: list[Pair]
    has_more: bool
    rows: dict[int, dict[str, Any]]  # the customers of the pairs, as read


async def duplicate_pairs(
    db: Database,
    *,
    limit: int,
    after: tuple[float, int, int] | None = None,
    min_score: float = LIKELY,
    kinds: Sequence[str] = (),
    scope: CustomerScope | None = None,
    rows_for: Callable[[Database, list[int]], Any] | None = None,
) -> PairPage:
    """Stored likely duplicate pairs (left id < right id), best first, then
    by ids from the highest, after the pair at ``after`` (a :attr:`Pair.position`):
    one keyset read of ``duplicate_pair``'s score index, and one of the
    pairs' customers (``rows_for``, by default the columns scoring needs).
    ``min_score`` is :data:`LIKELY` or more: weaker pairs are not stored.
    ``kinds``: at least one of the two is of these kinds; ``scope``: the
    caller sees both. Dismissed pairs are left out."""
    if min_score < LIKELY:
        raise ValueError(f"pairs under {LIKELY} are not stored (min_score {min_score})")
    where = Where()
    where.add("p.score >= {}", min_score)
    if after is not None:
        where.add("(p.score, p.customer_a, p.customer_b) < ({}, {}, {})", *after)
    # a pair someone reviewed and found to be two parties (crmgraph.dedupe.dismissals)
    where.add(
        "NOT EXISTS (SELECT 1 FROM duplicate_dismissal d "
        "WHERE d.customer_a = p.customer_a AND d.customer_b = p.customer_b)"
    )
    joins = ""
    if scope is not None:  # a caller sees a pair only when they may see both
        joins = " JOIN customer l ON l.id = p.customer_a JOIN customer r ON r.id = p.customer_b"
        scope.sql(where, "l")
        scope.sql(where, "r")
    select = f"SELECT p.customer_a, p.customer_b, p.score, p.reasons FROM duplicate_pair p{joins}"
    order = "ORDER BY {0}score DESC, {0}customer_a DESC, {0}customer_b DESC LIMIT {{}}"
    if not kinds:
        sql = f"{select} WHERE {where.sql()} {order.format('p.')}"
        args = [*where.args, limit + 1]
    else:
        sql, args = _kind_branches(select, where, order, kinds, limit + 1)
    found = await db.fetch(sql, *args)
    pairs = [
        Pair(row["customer_a"], row["customer_b"], float(row["score"]), _reasons(row["reasons"]))
        for row in found[:limit]
    ]
    ids = sorted({pk for pair in pairs for pk in (pair.left_id, pair.right_id)})
    rows = {row["id"]: row for row in await (rows_for or _scoring_rows)(db, ids)} if ids else {}
    return PairPage(pairs, len(found) > limit, rows)


def _kind_branches(
    select: str, where: Where, order: str, kinds: Sequence[str], limit: int
) -> tuple[str, list[Any]]:
    """The pairs with a customer of ``kinds``, as one ordered and limited
    branch per kind and side, each a backward read of that side's kind index
    (migration 0024) that stops after ``limit`` rows, merged in the list's
    order: an OR over the two sides would read every pair of the kind, or
    every pair, to sort them. A pair with both customers of ``kinds`` comes
    from its left side only."""
    branches, args = [], []
    for side in ("a", "b"):
        for kind in kinds:
            condition = f"p.kind_{side} = {{}}"
            args.append(kind)
            if side == "b":
                condition += f" AND p.kind_a NOT IN ({marks(kinds)})"
                args.extend(kinds)
            branches.append(
                f"SELECT * FROM ({select} WHERE {condition} AND {where.sql()} "
                f"{order.format('p.')}) AS side_{len(branches)}"
            )
            args.extend([*where.args, limit])
    return f"{' UNION ALL '.join(branches)} {order.format('')}", [*args, limit]


async def _scoring_rows(db: Database, ids: list[int]) -> list[dict[str, Any]]:
    return await db.fetch(
        f"SELECT {CANDIDATE_COLUMNS} FROM customer c WHERE c.id IN ({marks(ids)})", *ids
    )
