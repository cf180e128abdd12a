"""Likely duplicates: which existing customers a party (a *probe*) may be.

How it works. Every live customer has *blocking keys* in
``customer_match_key (customer, key_type, key_value)``, indexed on
``(key_type, key_value, customer)``: its normal e-mail (``EMAIL``), E.164
phone (``PHONE``), normal tax id (``TAX_ID``, from ``attributes["tax_id"]``
of the types that declare it) and two name keys (``NAME``, see
:func:`crmgraph.dedupe.normalize.name_keys`). Only customers that share a key
with the probe are read and scored, so nothing compares every pair; a name key
held by more than :data:`NAME_BLOCK_LIMIT` customers is no block at all (a
name that common identifies nobody). Deleted (and so merged) customers have
no keys.

Every likely pair (:data:`LIKELY` or more) is stored in ``duplicate_pair``
and rewritten with the keys, in the same transaction, so ``duplicates`` reads
a page by an index (:func:`duplicate_pairs`); see "stored pairs" below.

Contacts' e-mails and phones are not evidence: a contact is a person *at* a
customer, and the company and the person are different parties, so counting
them would pair companies with their own staff.

Scoring (:func:`score`), 0..1, each piece named in ``reasons``:

- exact identifiers, combined as independent evidence (``1 - Π(1 - w)``):
  ``TAX_ID_EXACT`` 0.95, ``EMAIL_EXACT`` 0.9, ``PHONE_EXACT`` 0.8;
- ``NAME_SIMILAR <similarity>`` (rapidfuzz ``token_sort_ratio``, or 0.95 *
  ``token_set_ratio`` when both names have two words or more, so a dropped
  middle name still matches) counts from 0.85 with weight 0.6 * similarity²,
  and only alongside other evidence or between customers of the same kind: a
  name alone is weak, and a name alone with a typo in a short word (0.9: 0.49)
  is not listed;
- counter-evidence multiplies: ``TAX_ID_DIFFERENT`` * 0.2 (two tax ids are two
  parties), ``EMAIL_DIFFERENT`` * 0.75, ``PHONE_DIFFERENT`` * 0.8, and a shared
  e-mail or phone under clearly different names (``NAME_DIFFERENT``, similarity
  under 0.5: a shared ``info@`` or switchboard) counts only * 0.6.

:data:`LIKELY` (0.5) is the default ``min_score``: the same name and kind with
nothing else known (0.6) is listed, the same name with a different e-mail and
phone (0.36) is not. :data:`STRONG` (0.8) needs an exact identifier; a type
whose duplicate rule is ``block`` refuses a create at that score. Nothing is
ever merged automatically.

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

    # many probes at once (an importer): one SELECT per 1,000 distinct keys
    per_probe = await find_candidates_batch(db, probes)   # a list per probe, same order
    await insert_match_keys(db, {new_id: probe, ...})    # keys and pairs of new customers
    pairs_within(probes)                                  # likely pairs inside the batch

Probes hold raw values; they are normalised here (a phone without ``+`` is
read in ``region``, normally ``settings.default_phone_region``).
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz

from crmgraph.db.bulk import insert_rows
from crmgraph.db.engine import Database
from crmgraph.db.queries import CustomerScope, Where, load_json
from crmgraph.dedupe.normalize import (
    comparable_name,
    name_keys,
    normalize_email,
    normalize_phone,
    normalize_tax_id,
)

EMAIL, PHONE, TAX_ID, NAME = "EMAIL", "PHONE", "TAX_ID", "NAME"
KEY_TYPES = (EMAIL, PHONE, TAX_ID, NAME)

LIKELY = 0.5
STRONG = 0.8

TAX_ID_WEIGHT = 0.95
EMAIL_WEIGHT = 0.9
PHONE_WEIGHT = 0.8
NAME_WEIGHT = 0.6
NAME_SIMILAR_FROM = 0.85
NAME_DIFFERENT_BELOW = 0.5
# how far below NAME_SIMILAR_FROM the weakest word may be (percent): a
# one-letter typo in a five-letter word (0.8) still passes
WORD_SLACK = 10
TAX_ID_DIFFERENT_FACTOR = 0.2
EMAIL_DIFFERENT_FACTOR = 0.75
PHONE_DIFFERENT_FACTOR = 0.8
NAME_DIFFERENT_FACTOR = 0.6

# key values per lookup statement, well under both engines' parameter limits
KEYS_PER_STATEMENT = 1000
# A name key held by more live customers than this is no block: it is not
# looked up, so it pairs nobody. Such a name (every "Maria Garcia" of a big
# database) identifies nobody: its pairs with nothing but the name are mostly
# namesakes, and reading it would cost every write and lookup in proportion to
# the table. Identifier keys (e-mail, phone, tax id) are always blocks.
NAME_BLOCK_LIMIT = 100

CANDIDATE_COLUMNS = "c.id, c.kind, c.name, c.email, c.phone, c.attributes, c.owner, c.team"

Visible = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True)
class Probe:
    """A party to look for, as given (raw values). ``customer_id`` is the
    probe's own record, if it has one: it is never its own candidate."""

    name: str | None = None
    email: str | None = None
    phone: str | None = None
    tax_id: str | None = None
    kind: str | None = None
    customer_id: int | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Probe:
        """A customer row (``id, kind, name, email, phone, attributes``)."""
        return cls(
            name=row.get("name"),
            email=row.get("email"),
            phone=row.get("phone"),
            tax_id=load_json(row.get("attributes")).get("tax_id"),
            kind=row.get("kind"),
            customer_id=row.get("id"),
        )


@dataclass(frozen=True)
class Normal:
    """A probe's normal forms: what is compared and keyed."""

    name: str
    email: str | None
    phone: str | None
    tax_id: str | None
    kind: str | None
    name_keys: tuple[str, ...]

    @classmethod
    def of(cls, probe: Probe, region: str | None = None) -> Normal:
        return cls(
            name=comparable_name(probe.name),
            email=normalize_email(probe.email),
            phone=normalize_phone(probe.phone, region),
            tax_id=normalize_tax_id(probe.tax_id),
            kind=probe.kind,
            name_keys=name_keys(probe.name),
        )

    def blocking_keys(self) -> list[tuple[str, str]]:
        found = [(t, v) for t, v in ((EMAIL, self.email), (PHONE, self.phone)) if v]
        if self.tax_id:
            found.append((TAX_ID, self.tax_id))
        return found + [(NAME, key) for key in self.name_keys]


def keys_that_can_reach(normal: Normal, min_score: float) -> list[tuple[str, str]]:
    """The blocking keys through which a candidate can score ``min_score``: a
    similar name alone weighs at most :data:`NAME_WEIGHT`, so above it only a
    shared e-mail, phone or tax id can get there and the name keys, whose
    blocks grow with the table, are not looked up (an import asks at
    :data:`STRONG`)."""
    keys = normal.blocking_keys()
    return [k for k in keys if k[0] != NAME] if min_score > NAME_WEIGHT else keys


def match_keys(probe: Probe, region: str | None = None) -> list[tuple[str, str]]:
    """The (key_type, key_value) blocking keys of a probe."""
    return Normal.of(probe, region).blocking_keys()


@dataclass(frozen=True)
class Reason:
    """One piece of evidence: a code and, for a similarity, its value."""

    code: str
    detail: str | None = None

    def __str__(self) -> str:
        return f"{self.code} {self.detail}" if self.detail else self.code


@dataclass(frozen=True)
class Candidate:
    """A likely duplicate. ``row`` is the customer as read (``id, kind, name,
    email, phone, attributes, owner, team``), to show or to check visibility
    without reading it again."""

    customer_id: int
    score: float
    reasons: tuple[Reason, ...]
    row: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


def name_similarity(a: str, b: str) -> float:
    """0..1; word order does not matter. Capped by the weakest word: each word
    of the shorter name must be like some word of the other, so names that
    share generic words ("Sánchez e Hijos", "Sanz e Hijos") stay apart while
    a typo in one word ("Lopez", "Lopes") does not."""
    if not a or not b:
        return 0.0
    similarity = fuzz.token_sort_ratio(a, b)
    if " " in a and " " in b:
        similarity = max(similarity, 0.95 * fuzz.token_set_ratio(a, b))
    # ordered by length, then by the words, so that score(a, b) == score(b, a)
    shorter, longer = sorted((a.split(), b.split()), key=lambda words: (len(words), words))
    weakest = min(max(fuzz.ratio(word, other) for other in longer) for word in shorter)
    return min(similarity, weakest + WORD_SLACK) / 100


def score(a: Normal, b: Normal, floor: float = 0.0) -> tuple[float, tuple[Reason, ...]]:
    """How likely ``a`` and ``b`` are one party, and why (see the module doc).
    A pair that cannot reach ``floor`` whatever its names comes back as
    ``(0.0, ())`` without comparing them, the costly part: most pairs of
    namesakes differ in an e-mail or a phone."""
    reasons: list[Reason] = []
    penalty = 1.0
    tax = 0.0
    if a.tax_id and b.tax_id:
        if a.tax_id == b.tax_id:
            tax = TAX_ID_WEIGHT
            reasons.append(Reason("TAX_ID_EXACT"))
        else:
            penalty *= TAX_ID_DIFFERENT_FACTOR
            reasons.append(Reason("TAX_ID_DIFFERENT"))
    contact_miss = 1.0
    for code, weight, factor, left, right in (
        ("EMAIL", EMAIL_WEIGHT, EMAIL_DIFFERENT_FACTOR, a.email, b.email),
        ("PHONE", PHONE_WEIGHT, PHONE_DIFFERENT_FACTOR, a.phone, b.phone),
    ):
        if left and right:
            if left == right:
                contact_miss *= 1 - weight
                reasons.append(Reason(f"{code}_EXACT"))
            else:
                penalty *= factor
                reasons.append(Reason(f"{code}_DIFFERENT"))
    contact = 1 - contact_miss
    same_kind = a.kind is not None and a.kind == b.kind
    best_name = NAME_WEIGHT if contact or tax or same_kind else 0.0
    if floor and round((1 - (1 - tax) * (1 - contact) * (1 - best_name)) * penalty, 3) < floor:
        return 0.0, ()
    similarity = name_similarity(a.name, b.name) if a.name and b.name else None
    if contact and similarity is not None and similarity < NAME_DIFFERENT_BELOW:
        contact *= NAME_DIFFERENT_FACTOR
        reasons.append(Reason("NAME_DIFFERENT", f"{similarity:.2f}"))
    name = 0.0
    if similarity is not None and similarity >= NAME_SIMILAR_FROM and (contact or tax or same_kind):
        # squared: a one-letter difference between short names ("Maria", "Marta")
        # is as likely another person as a typo, so alone it stays under LIKELY
        name = NAME_WEIGHT * similarity**2
        reasons.append(Reason("NAME_SIMILAR", f"{similarity:.2f}"))
    positive = 1 - (1 - tax) * (1 - contact) * (1 - name)
    return round(positive * penalty, 3), tuple(reasons)


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


# A live customer, the only kind that has keys and pairs: neither deleted (nor
# so merged) nor erased (erasure leaves a placeholder name that must pair
# nobody). Migrations before erased_at (0022) rebuild with NOT_DELETED.
NOT_DELETED = "c.deleted_at IS NULL"
LIVE = f"{NOT_DELETED} AND c.erased_at IS NULL"


def _block_condition(
    keys: Sequence[tuple[str, str]], name_parts: Sequence[tuple[str, list[Any]]] | None = None
) -> tuple[str, list[Any], Where]:
    """The condition on ``customer_match_key k`` of rows holding one of
    ``keys`` that is a block, and the ``crowded`` CTE (with its arguments)
    that it reads: the name keys over :data:`NAME_BLOCK_LIMIT`, counted on the
    key index (a crowded block's customers are never read). ``name_parts``,
    when given, replace the plain condition on the name keys (SQL on ``k`` with
    its arguments, see :func:`_name_only_parts`); the crowded ones stay out."""
    by_type: dict[str, list[str]] = defaultdict(list)
    for key_type, value in keys:
        by_type[key_type].append(value)
    parts, args = [], []
    for key_type, values in sorted(by_type.items()):
        if key_type == NAME and name_parts is not None:
            continue
        parts.append(f"(k.key_type = {{}} AND k.key_value IN ({_marks(values)}))")
        args.extend([key_type, *values])
    for sql, part_args in name_parts or ():
        parts.append(sql)
        args.extend(part_args)
    where = Where()
    where.add(f"({' OR '.join(parts) or '1 = 0'})", *args)
    crowded, crowded_args = "", []
    if names := by_type.get(NAME):
        crowded = (
            "WITH crowded AS (SELECT key_value FROM customer_match_key "
            f"WHERE key_type = {{}} AND key_value IN ({_marks(names)}) "
            "GROUP BY key_value HAVING COUNT(*) > {}) "
        )
        crowded_args = [NAME, *names, NAME_BLOCK_LIMIT]
        where.add("NOT (k.key_type = {} AND k.key_value IN (SELECT key_value FROM crowded))", NAME)
    return crowded, crowded_args, where


async def customers_by_keys(
    db: Database, keys: set[tuple[str, str]], exclude_ids: Sequence[int]
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The live customers holding each key (rows of :data:`CANDIDATE_COLUMNS`),
    name keys over :data:`NAME_BLOCK_LIMIT` left out: one statement per
    :data:`KEYS_PER_STATEMENT` keys, each answered from the key index."""
    holders: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for chunk in _chunks(sorted(keys)):
        crowded, crowded_args, where = _block_condition(chunk)
        where.add(LIVE)
        if exclude_ids:
            where.add(f"c.id NOT IN ({_marks(exclude_ids)})", *exclude_ids)
        rows = await db.fetch(
            f"{crowded}SELECT k.key_type, k.key_value, {CANDIDATE_COLUMNS} "
            f"FROM customer_match_key k JOIN customer c ON c.id = k.customer WHERE {where.sql()}",
            *crowded_args,
            *where.args,
        )
        for row in rows:
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
) -> list[list[Candidate]]:
    """For each probe, in order, its likely duplicates among live customers,
    best first. ``visible`` (a customer row -> bool) keeps only the customers
    a caller may see; ``exclude_ids`` are never candidates."""
    normals = [Normal.of(probe, region) for probe in probes]
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
    probes: Sequence[Probe], *, min_score: float = LIKELY, region: str | None = None
) -> list[tuple[int, int, float, tuple[Reason, ...]]]:
    """Likely duplicate pairs among the probes themselves, as (index, index,
    score, reasons) with the first index smaller: blocked on the same keys,
    in memory (name blocks over :data:`NAME_BLOCK_LIMIT` left out, as in the
    database), for a batch not yet written or to recompute the stored pairs."""
    normals = [Normal.of(probe, region) for probe in probes]
    blocks: dict[tuple[str, str], list[int]] = defaultdict(list)
    for index, normal in enumerate(normals):
        for key in keys_that_can_reach(normal, min_score):
            blocks[key].append(index)
    seen: set[tuple[int, int]] = set()
    found = []
    for (key_type, _), members in blocks.items():
        if key_type == NAME and len(members) > NAME_BLOCK_LIMIT:
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
    await _lock_keys(db, keys)


# more keys than this are locked by one lock on all pair maintenance (an import
# batch, a seed): PostgreSQL's lock table holds a few thousand locks in all
KEYS_LOCKED_ONE_BY_ONE = 64
PAIRS_LOCK = "duplicate_pair"


async def _lock_keys(db: Database, keys: Iterable[tuple[str, str]]) -> None:
    """Transaction-level advisory locks on PostgreSQL: a lock per key, taken
    in sorted order (so writers cannot deadlock) under a shared lock on
    :data:`PAIRS_LOCK`; or, for more than :data:`KEYS_LOCKED_ONE_BY_ONE`
    keys, that lock alone, exclusive. A transaction holding them has no
    concurrent writer of the same keys, which would otherwise each miss the
    other's uncommitted keys and so their pair."""
    if db.is_sqlite:
        return
    names = sorted({f"{key_type}:{value}" for key_type, value in keys})
    if not names:
        return
    if len(names) > KEYS_LOCKED_ONE_BY_ONE:
        await _lock_all_pairs(db)
        return
    marks = ", ".join("({})" for _ in names)
    await db.fetch(
        "SELECT COUNT(pg_advisory_xact_lock_shared(hashtext({}))) "
        f"+ COUNT(pg_advisory_xact_lock(hashtext(k.v))) AS held FROM (VALUES {marks}) AS k(v)",
        PAIRS_LOCK,
        *names,
    )


async def _lock_all_pairs(db: Database) -> None:
    if not db.is_sqlite:
        await db.fetch(
            "SELECT 1 AS held FROM (SELECT pg_advisory_xact_lock(hashtext({}))) AS l", PAIRS_LOCK
        )


def _chunks(values: Sequence[Any], size: int = KEYS_PER_STATEMENT) -> Iterable[Sequence[Any]]:
    return (values[start : start + size] for start in range(0, len(values), size))


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("{}" for _ in values)


async def insert_match_keys(
    db: Database, probes: Mapping[int, Probe], region: str | None = None
) -> None:
    """Store the keys of customers that have none yet (just created), and
    their likely duplicate pairs."""
    normals = {pk: Normal.of(probe, region) for pk, probe in sorted(probes.items())}
    added = await _write_keys(db, normals)
    await _refresh_pairs(db, list(normals), normals, Counter(), added, fresh=True)


async def refresh_match_keys(db: Database, customer_ids: Sequence[int]) -> None:
    """Recompute the keys of these customers from their rows as they are now,
    and their likely duplicate pairs: deleted (or merged) customers are left
    with none. Every write that changes a customer's name, e-mail, phone, tax
    id or deletes, restores or merges it calls this in its transaction."""
    ids = sorted(set(customer_ids))
    removed: Counter[tuple[str, str]] = Counter()
    for chunk in _chunks(ids):
        gone = await db.fetch(
            f"DELETE FROM customer_match_key WHERE customer IN ({_marks(chunk)}) "
            "RETURNING key_type, key_value",
            *chunk,
        )
        removed.update((row["key_type"], row["key_value"]) for row in gone)
    normals = await _live_normals(db, ids)
    added = await _write_keys(db, normals)
    await _refresh_pairs(db, ids, normals, removed, added, fresh=False)


async def rebuild_match_keys(db: Database, *, live: str = LIVE) -> None:
    """Every customer's keys from scratch (migration 0014; the pairs are
    rebuilt by :func:`rebuild_duplicate_pairs`). ``live``: the condition on
    ``customer c`` of who has keys (:data:`NOT_DELETED` before migration 0022)."""
    await db.fetch("DELETE FROM customer_match_key")
    rows = await db.fetch(f"SELECT c.id FROM customer c WHERE {live} ORDER BY c.id")
    await _write_keys(db, await _live_normals(db, [row["id"] for row in rows], live))


async def rebuild_duplicate_pairs(db: Database, *, live: str = LIVE, kinds: bool = True) -> None:
    """Every likely pair from scratch, through the stored keys (migration 0020;
    ``live`` as for :func:`rebuild_match_keys`, ``kinds=False`` before the
    pairs' kind columns of migration 0024)."""
    await _lock_all_pairs(db)
    await _fresh_statistics(db)
    await db.fetch("DELETE FROM duplicate_pair")
    rows = await db.fetch("SELECT DISTINCT customer FROM customer_match_key ORDER BY customer")
    normals = await _live_normals(db, [row["customer"] for row in rows], live)
    await _store_pairs(db, normals, set(normals), live, kinds=kinds)


async def _live_normals(db: Database, ids: Sequence[int], live: str = LIVE) -> dict[int, Normal]:
    normals: dict[int, Normal] = {}
    for chunk in _chunks(ids):
        rows = await db.fetch(
            f"SELECT c.id, c.kind, c.name, c.email, c.phone, c.attributes FROM customer c "
            f"WHERE c.id IN ({_marks(chunk)}) AND {live}",
            *chunk,
        )
        normals.update((row["id"], Normal.of(Probe.from_row(row))) for row in rows)
    return normals


async def _write_keys(db: Database, normals: Mapping[int, Normal]) -> Counter[tuple[str, str]]:
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
# name block crosses NAME_BLOCK_LIMIT (grows over it or shrinks back), every
# member's pairs are recomputed too, so the table is always what a computation
# from scratch gives (tests/test_duplicates.py checks it after writes of every kind).


async def _refresh_pairs(
    db: Database,
    ids: Sequence[int],
    normals: Mapping[int, Normal],
    removed: Counter[tuple[str, str]],
    added: Counter[tuple[str, str]],
    *,
    fresh: bool,
) -> None:
    """Recompute the pairs of ``ids`` (whose keys went from ``removed`` to
    ``added``; ``normals`` holds the live ones) and of the members of name
    blocks that crossed the limit. ``fresh``: ``ids`` are new customers, with
    no pairs stored yet."""
    touched = list(removed + added)
    await _lock_keys(db, touched)
    if len(touched) > KEYS_LOCKED_ONE_BY_ONE:
        await _fresh_statistics(db)
    crossed = await _crossed_members(db, removed, added)
    others = sorted(crossed - set(ids))
    subjects = dict(normals)
    if others:
        other_normals = await _live_normals(db, others)
        await _lock_keys(db, [k for n in other_normals.values() for k in n.blocking_keys()])
        subjects.update(other_normals)
    stale = others if fresh else sorted({*ids, *others})
    for chunk in _chunks(stale):
        marks = _marks(chunk)
        await db.fetch(
            f"DELETE FROM duplicate_pair WHERE customer_a IN ({marks}) OR customer_b IN ({marks})",
            *chunk,
            *chunk,
        )
    await _store_pairs(db, subjects, {*ids, *others})


async def _fresh_statistics(db: Database) -> None:
    """PostgreSQL: ANALYZE the keys and customers when the keys have more than
    doubled since the planner last counted them. A bulk write (an import, a
    seed) adds them in its own transaction, and a lookup planned on the old
    counts joins every key row with every customer (15 s for 1,000 probes
    over 20,000 fresh customers; 0.5 s after ANALYZE, which sees the
    transaction's own rows)."""
    if db.is_sqlite:
        return
    rows = await db.fetch(
        "SELECT (SELECT COUNT(*) FROM customer_match_key) AS actual, reltuples AS estimated "
        "FROM pg_class WHERE oid = 'customer_match_key'::regclass"
    )
    if rows and rows[0]["actual"] > 2 * max(float(rows[0]["estimated"]), 1000.0):
        await db.fetch("ANALYZE customer_match_key")
        await db.fetch("ANALYZE customer")


async def _crossed_members(
    db: Database, removed: Counter[tuple[str, str]], added: Counter[tuple[str, str]]
) -> set[int]:
    """The holders of the name keys whose block went over or back under
    :data:`NAME_BLOCK_LIMIT` with this change."""
    changed = sorted(
        value
        for key_type, value in set(removed) | set(added)
        if key_type == NAME and removed[(key_type, value)] != added[(key_type, value)]
    )
    crossed = []
    for chunk in _chunks(changed):
        rows = await db.fetch(
            "SELECT key_value, COUNT(*) AS n FROM customer_match_key WHERE key_type = {} "
            f"AND key_value IN ({_marks(chunk)}) GROUP BY key_value",
            NAME,
            *chunk,
        )
        after = {row["key_value"]: int(row["n"]) for row in rows}
        for value in chunk:
            now = after.get(value, 0)
            before = now - added[(NAME, value)] + removed[(NAME, value)]
            if (now > NAME_BLOCK_LIMIT) != (before > NAME_BLOCK_LIMIT):
                crossed.append(value)
    members: set[int] = set()
    for chunk in _chunks(crossed):
        rows = await db.fetch(
            "SELECT DISTINCT customer FROM customer_match_key WHERE key_type = {} "
            f"AND key_value IN ({_marks(chunk)})",
            NAME,
            *chunk,
        )
        members.update(row["customer"] for row in rows)
    return members


async def _store_pairs(
    db: Database,
    normals: Mapping[int, Normal],
    subjects: set[int],
    live: str = LIVE,
    *,
    kinds: bool = True,
) -> None:
    """Insert the likely pairs of the customers in ``normals`` (their pairs
    must not be stored already) through their blocks, set-based: per
    :data:`KEYS_PER_STATEMENT` keys, one statement reads every block member
    with its stored keys (:func:`block_members`), each pair is scored once in
    Python (from its lower id when both are ``subjects``), and one multi-row
    INSERT stores them, with the two customers' kinds (``kinds=False``: the
    table before migration 0024, which has no such columns)."""
    found = []
    ordered = sorted(normals)
    known: dict[int, Normal] = dict(normals)
    for chunk in _chunks(ordered):
        holders = await block_members(db, [normals[pk] for pk in chunk], known, live)
        for pk in chunk:
            normal = normals[pk]
            partners = {other for key in normal.blocking_keys() for other in holders.get(key, ())}
            for other in sorted(partners):
                if other == pk or (other in subjects and other < pk):
                    continue
                value, reasons = score(normal, known[other], LIKELY)
                if value >= LIKELY:
                    left, right = sorted((pk, other))
                    pair = {
                        "customer_a": left,
                        "customer_b": right,
                        "score": value,
                        "reasons": ", ".join(str(r) for r in reasons),
                    }
                    if kinds:
                        pair.update(kind_a=known[left].kind, kind_b=known[right].kind)
                    found.append(pair)
    await insert_rows(db, "duplicate_pair", found, returning=False)


# The identifiers in which a pair sharing nothing but a name block cannot
# differ and still score LIKELY: the name weighs at most NAME_WEIGHT, and each
# of these differences multiplies it under LIKELY (an e-mail 0.45, a phone
# 0.48, a tax id 0.12).
NAME_ONLY_CONFLICTS = tuple(
    key_type
    for key_type, factor in (
        (EMAIL, EMAIL_DIFFERENT_FACTOR),
        (PHONE, PHONE_DIFFERENT_FACTOR),
        (TAX_ID, TAX_ID_DIFFERENT_FACTOR),
    )
    if round(NAME_WEIGHT * factor, 3) < LIKELY
)


def _name_only_parts(probes: Sequence[Normal]) -> list[tuple[str, list[Any]]]:
    """SQL on ``customer_match_key k`` for the holders of the probes' name keys
    that can pair with them through the name alone (see :func:`score`): of the
    same kind, and holding none of the :data:`NAME_ONLY_CONFLICTS` the probe
    has (one holding the same value is found through that identifier's
    block). The condition is symmetric, so a pair of two probes is found from
    either side. Every member of a big name block is a namesake, and most
    differ in an e-mail or a phone: reading them all with their keys made an
    import slow down as its name blocks filled up towards the limit."""
    groups: dict[tuple[str, tuple[str, ...]], set[str]] = defaultdict(set)
    for normal in probes:
        if normal.kind is None or not normal.name_keys:
            continue  # a name alone pairs only customers of one kind
        held = {key_type for key_type, _ in normal.blocking_keys()}
        conflicts = tuple(t for t in NAME_ONLY_CONFLICTS if t in held)
        groups[(normal.kind, conflicts)].update(normal.name_keys)
    parts = []
    for (kind, conflicts), values in sorted(groups.items()):
        ordered = sorted(values)
        sql = (
            f"(k.key_type = {{}} AND k.key_value IN ({_marks(ordered)}) AND "
            "(SELECT n.kind FROM customer n WHERE n.id = k.customer) = {}"
        )
        args: list[Any] = [NAME, *ordered, kind]
        if conflicts:
            sql += (
                " AND NOT EXISTS (SELECT 1 FROM customer_match_key x WHERE x.customer = k.customer "
                f"AND x.key_type IN ({_marks(conflicts)}))"
            )
            args.extend(conflicts)
        parts.append((sql + ")", args))
    return parts


async def block_members(
    db: Database, probes: Sequence[Normal], known: dict[int, Normal], live: str = LIVE
) -> dict[tuple[str, str], list[int]]:
    """The ids of the live customers holding each of the probes' keys that can
    pair with a probe holding it (crowded name keys left out; of a name key,
    only the holders :func:`_name_only_parts` keeps, and maybe more), one
    statement per :data:`KEYS_PER_STATEMENT` keys; the normal form of each
    member not in ``known`` is added to it, built from its stored keys
    (already normal: no e-mail or phone is parsed again) and its kind and name."""
    holders: dict[tuple[str, str], list[int]] = defaultdict(list)
    probe_chunks: list[list[Normal]] = [[]]
    size = 0
    for normal in probes:
        keys = len(normal.blocking_keys())
        if size + keys > KEYS_PER_STATEMENT and probe_chunks[-1]:
            probe_chunks.append([])
            size = 0
        probe_chunks[-1].append(normal)
        size += keys
    for chunk_probes in probe_chunks:
        chunk = sorted({key for normal in chunk_probes for key in normal.blocking_keys()})
        if not chunk:
            continue
        crowded, crowded_args, blocks = _block_condition(chunk, _name_only_parts(chunk_probes))
        crowded_flag, flag_args = "(1 = 0)", []
        if crowded:
            crowded_flag = "(m.key_type = {} AND m.key_value IN (SELECT key_value FROM crowded))"
            flag_args = [NAME]
        rows = await db.fetch(
            f"{crowded}SELECT m.customer, m.key_type, m.key_value, {crowded_flag} AS crowded, "
            "c.kind, c.name FROM customer_match_key m JOIN customer c ON c.id = m.customer "
            "WHERE m.customer IN (SELECT k.customer FROM customer_match_key k "
            f"WHERE {blocks.sql()}) AND {live}",
            *crowded_args,
            *flag_args,
            *blocks.args,
        )
        wanted = set(chunk)
        found: dict[int, dict[str, Any]] = {}
        for row in rows:
            pk, key = row["customer"], (row["key_type"], row["key_value"])
            if key in wanted and not row["crowded"]:
                holders[key].append(pk)
            if pk not in known:
                found.setdefault(pk, {"kind": row["kind"], "name": row["name"], "keys": []})
                found[pk]["keys"].append(key)
        for pk, member in found.items():
            known[pk] = _normal_from_keys(member["kind"], member["name"], member["keys"])
    return holders


def _normal_from_keys(kind: str | None, name: str | None, keys: list[tuple[str, str]]) -> Normal:
    """A customer's normal form from its stored keys: what :meth:`Normal.of`
    gives for its row (the keys were written from it), without parsing again."""
    values = dict(keys)
    return Normal(
        name=comparable_name(name),
        email=values.get(EMAIL),
        phone=values.get(PHONE),
        tax_id=values.get(TAX_ID),
        kind=kind,
        name_keys=tuple(sorted(value for key_type, value in keys if key_type == NAME)),
    )


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
                condition += f" AND p.kind_a NOT IN ({_marks(kinds)})"
                args.extend(kinds)
            branches.append(
                f"SELECT * FROM ({select} WHERE {condition} AND {where.sql()} "
                f"{order.format('p.')}) AS side_{len(branches)}"
            )
            args.extend([*where.args, limit])
    return f"{' UNION ALL '.join(branches)} {order.format('')}", [*args, limit]


async def _scoring_rows(db: Database, ids: list[int]) -> list[dict[str, Any]]:
    return await db.fetch(
        f"SELECT {CANDIDATE_COLUMNS} FROM customer c WHERE c.id IN ({_marks(ids)})", *ids
    )
