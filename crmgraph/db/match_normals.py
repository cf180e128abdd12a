"""Probes' normal forms, each computed once per import batch.

An import screens a row (:func:`crmgraph.dedupe.matching.find_candidates_batch`),
pairs it with the rows of its batch (``pairs_within``) and writes its keys
(:func:`crmgraph.db.match_keys.insert_match_keys`) from one normal form: each
of the three computed it again, a fifth of the import's Python time (name
transliteration, e-mail and phone parsing).

Stored customers' normal forms are built from their stored keys, already
normal (:func:`add_members`, for the pairs' lookup of block members).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from crmgraph.db.match_score import EMAIL, NAME, PHONE, TAX_ID, Normal, Probe
from crmgraph.db.normalize import comparable_name


class Normals(dict[tuple[Probe, str | None], Normal]):
    """Probes' normal forms, each computed once: an import screens a row,
    pairs it with its batch and writes its keys from one normal form (a third
    of its Python time was computing the same one three times)."""

    def of(self, probe: Probe, region: str | None = None) -> Normal:
        found = self.get((probe, region))
        if found is None:
            found = self[(probe, region)] = Normal.of(probe, region)
        return found


def add_members(
    rows: Iterable[Mapping[str, Any]],
    wanted: set[tuple[str, str]],
    holders: dict[tuple[str, str], list[int]],
    known: dict[int, Normal],
) -> None:
    """Each row's customer as a holder of its key when that key is ``wanted``
    (no crowded block); and each new customer's normal form into ``known``."""
    found: dict[int, dict[str, Any]] = {}
    for row in rows:
        pk, key = row["customer"], (row["key_type"], row["key_value"])
        if key in wanted:
            holders[key].append(pk)
        if pk not in known:
            found.setdefault(pk, {"kind": row["kind"], "name": row["name"], "keys": []})
            found[pk]["keys"].append(key)
    for pk, member in found.items():
        known[pk] = normal_from_keys(member["kind"], member["name"], member["keys"])


def normal_from_keys(kind: str | None, name: str | None, keys: list[tuple[str, str]]) -> Normal:
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
