"""Which rows of a batch repeat a party already known: a customer in the
database (earlier batches of the same file included: they are written
before the next is read) or an earlier row of the same batch.

It asks :mod:`crmgraph.dedupe.matching` (blocking keys, scored evidence)
with one lookup per batch, and counts a row as a duplicate only from
:data:`DUPLICATE_SCORE` up: an exact e-mail, phone or tax id, not a similar
name alone, since an import acts on the answer without anyone looking. An
identifier held by more than the matcher's block limit identifies nobody
(crmgraph.db.match_crowding): no row repeats another through it, whether the
crowd is in the database or in the batch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from crmgraph.db.engine import Database
from crmgraph.dedupe import matching
from crmgraph.dedupe.matching import Normals, Probe

DUPLICATE_SCORE = matching.STRONG
# a pair of probes of one batch: (index, later index, score, reasons)
Within = tuple[int, int, float, tuple[matching.Reason, ...]]


def pairs_within(
    probes: Sequence[Probe], region: str | None, known: Normals | None
) -> list[Within]:
    """The pairs among a batch's own rows that count as repeats. At
    :data:`DUPLICATE_SCORE` no name key is looked up, so the pairs among a
    part of the batch are those of the whole batch between rows of that part."""
    return matching.pairs_within(probes, min_score=DUPLICATE_SCORE, region=region, known=known)


@dataclass(frozen=True)
class Repeat:
    """What a row repeats: an existing customer or an earlier row (its index
    in the batch); ``reasons`` say why, as the matcher names them."""

    customer_id: int | None
    row_index: int | None
    reasons: str


async def find_repeats(
    db: Database,
    probes: Sequence[Probe],
    region: str | None,
    visible: Callable[[Mapping[str, Any]], bool] | None,
    known: Normals | None = None,
    within: Sequence[Within] | None = None,
) -> list[Repeat | None]:
    """For each probe, what it repeats, or None. ``known``: the probes'
    normal forms, computed once for the screening and the keys written;
    ``within``: the pairs among the probes (:func:`pairs_within`), when the
    caller found them already."""
    existing = await matching.find_candidates_batch(
        db,
        probes,
        limit=1,
        min_score=DUPLICATE_SCORE,
        region=region,
        visible=visible,
        known=known,
    )
    earlier: dict[int, tuple[int, str]] = {}
    if within is None:
        within = pairs_within(probes, region, known)
    for first, later, _, reasons in await _through_roomy_blocks(db, probes, within, region, known):
        if later not in earlier:  # pairs come sorted: the first is the earliest
            earlier[later] = (first, ", ".join(map(str, reasons)))
    repeats: list[Repeat | None] = []
    for index, found in enumerate(existing):
        if found:
            best = found[0]
            repeats.append(Repeat(best.customer_id, None, ", ".join(map(str, best.reasons))))
            continue
        if index not in earlier:
            repeats.append(None)
            continue
        first, reasons = earlier[index]
        above = repeats[first]  # already resolved: a repeat of a repeat stands for the first
        if above is None:
            repeats.append(Repeat(None, first, reasons))
        else:
            repeats.append(Repeat(above.customer_id, above.row_index, reasons))
    return repeats


async def _through_roomy_blocks(
    db: Database,
    probes: Sequence[Probe],
    within: Sequence[Within],
    region: str | None,
    known: Normals | None,
) -> list[Within]:
    """The pairs of ``within`` that share an identifier crowded neither in the
    database (as the screening against it reads it) nor among ``probes``
    (as :func:`pairs_within` reads it): a batch's rows holding the e-mail that
    more than the limit of customers hold repeat nobody through it. Only the
    keys some pair shares are counted: none for a batch without repeats."""
    memo = known if known is not None else Normals()
    keys = [
        set(matching.keys_that_can_reach(memo.of(probe, region), DUPLICATE_SCORE))
        for probe in probes
    ]
    shared = {(first, later): keys[first] & keys[later] for first, later, _, _ in within}
    wanted = sorted(set().union(*shared.values()))
    if not wanted:
        return list(within)
    in_batch = Counter(key for held in keys for key in held)
    crowded = await matching.crowded_keys(db, wanted) | {
        key for key in wanted if matching.crowded(in_batch[key])
    }
    return [pair for pair in within if shared[(pair[0], pair[1])] - crowded]
