"""Every likely pair of a set of customers, blocked in memory: what
:func:`crmgraph.db.match_keys.rebuild_duplicate_pairs` stores.

The rebuild used to look each customer's blocks up in the database, per
1,000 keys: a statement that read every crowded name block whole (to drop it)
and every e-mail and phone key of the table (to find the namesakes with no
conflicting identifier). Both grew with the table, so the rebuild grew with
its square: 120 s at 100,000 customers, not done after 45 minutes at a
million. Here the blocks are built from the normal forms the rebuild has
read anyway, one key type at a time, and each candidate pair is scored once.

The work per customer is bounded: a block of more than ``limit`` members,
of any key type (a name, e-mail or phone that common identifies nobody),
pairs nobody; an identifier block under the limit pairs those who share an
e-mail, phone or tax id; and in a name block under the limit a customer is
compared only with the members it can pair with through the name alone
(:func:`name_partners`): of its kind, and holding none of the identifiers it
holds (those holding the same one are its partners through that
identifier's block), and with the members sharing one of its crowded
identifiers (:func:`shared_crowd_partners`: no block pairs them, yet that
identifier counts in their score). What is found is exactly what scoring
every pair that shares a block gives (``crmgraph.dedupe.matching.pairs_within``).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from crmgraph.db.match_score import (
    EMAIL,
    EMAIL_DIFFERENT_FACTOR,
    KEY_TYPES,
    LIKELY,
    NAME,
    NAME_WEIGHT,
    PHONE,
    PHONE_DIFFERENT_FACTOR,
    TAX_ID,
    TAX_ID_DIFFERENT_FACTOR,
    Normal,
    Reason,
    score,
)

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


@dataclass(frozen=True)
class FoundPair:
    left: int
    right: int
    score: float
    reasons: tuple[Reason, ...]


@dataclass
class BlockWork:
    """What a rebuild did: candidate pairs scored, the biggest block paired
    (no block over the limit), and the blocks of two members or more left out
    as crowded."""

    compared: int = 0
    largest_block: int = 0
    crowded_blocks: int = 0


def conflicts_held(normal: Normal) -> int:
    """The :data:`NAME_ONLY_CONFLICTS` a customer holds, as bits."""
    held = {EMAIL: normal.email, PHONE: normal.phone, TAX_ID: normal.tax_id}
    return sum(1 << i for i, key_type in enumerate(NAME_ONLY_CONFLICTS) if held[key_type])


def name_partners(
    members: Sequence[int], normals: Mapping[int, Normal]
) -> Iterator[tuple[int, int]]:
    """The pairs of a name block that can score LIKELY through the name alone:
    of one kind (not none), holding no conflicting identifier type in common.
    Members are grouped by (kind, conflicts held), and only groups that fit are
    crossed: most namesakes hold an e-mail and a phone, and pair with nobody."""
    groups: dict[tuple[str, int], list[int]] = defaultdict(list)
    for pk in members:
        normal = normals[pk]
        if normal.kind is not None:
            groups[(normal.kind, conflicts_held(normal))].append(pk)
    ordered = sorted(groups.items())
    for index, ((kind, held), group) in enumerate(ordered):
        if not held:
            yield from itertools.combinations(group, 2)
        for (other_kind, other_held), other in ordered[index + 1 :]:
            if other_kind == kind and not held & other_held:
                yield from itertools.product(group, other)


def shared_crowd_partners(
    members: Sequence[int], normals: Mapping[int, Normal], crowded: set[tuple[str, str]]
) -> Iterator[tuple[int, int]]:
    """The pairs of a name block that share one of the ``crowded`` keys that
    is an identifier: found through no identifier block, and left out by
    :func:`name_partners` (both hold that identifier's type)."""
    sharing: dict[tuple[str, str], list[int]] = defaultdict(list)
    for pk in members:
        for key in normals[pk].blocking_keys():
            if key[0] != NAME and key in crowded:
                sharing[key].append(pk)
    for group in sharing.values():
        yield from itertools.combinations(group, 2)


def blocks_of(normals: Mapping[int, Normal], key_type: str) -> dict[str, list[int]]:
    """The members of each block of ``key_type``, in id order."""
    blocks: dict[str, list[int]] = defaultdict(list)
    for pk in sorted(normals):
        for held_type, value in normals[pk].blocking_keys():
            if held_type == key_type:
                blocks[value].append(pk)
    return blocks


def candidate_pairs(
    normals: Mapping[int, Normal], limit: int, work: BlockWork
) -> set[tuple[int, int]]:
    """Each pair (lower id first) that shares a block it can pair through."""
    blocks = {key_type: blocks_of(normals, key_type) for key_type in KEY_TYPES}
    crowded = {
        (key_type, value)
        for key_type, of_type in blocks.items()
        for value, members in of_type.items()
        if len(members) > limit
    }
    candidates: set[tuple[int, int]] = set()
    for key_type, of_type in blocks.items():
        for value, members in of_type.items():
            if len(members) < 2:
                continue
            if (key_type, value) in crowded:
                work.crowded_blocks += 1
                continue
            work.largest_block = max(work.largest_block, len(members))
            pairs: Iterable[tuple[int, int]] = (
                itertools.chain(
                    name_partners(members, normals),
                    shared_crowd_partners(members, normals, crowded),
                )
                if key_type == NAME
                else itertools.combinations(members, 2)
            )
            candidates.update((a, b) if a < b else (b, a) for a, b in pairs)
    return candidates


def likely_pairs(
    normals: Mapping[int, Normal], limit: int, work: BlockWork | None = None
) -> list[FoundPair]:
    """Every pair of ``normals`` sharing a block of at most ``limit`` members
    that scores :data:`LIKELY` or more, by ids."""
    work = work if work is not None else BlockWork()
    candidates = candidate_pairs(normals, limit, work)
    work.compared += len(candidates)
    found = []
    for left, right in sorted(candidates):
        value, reasons = score(normals[left], normals[right], LIKELY)
        if value >= LIKELY:
            found.append(FoundPair(left, right, value, reasons))
    return found
