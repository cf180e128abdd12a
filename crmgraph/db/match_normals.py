"""Probes' normal forms, each computed once per import batch.

An import screens a row (:func:`crmgraph.dedupe.matching.find_candidates_batch`),
pairs it with the rows of its batch (``pairs_within``) and writes its keys
(:func:`crmgraph.db.match_keys.insert_match_keys`) from one normal form: each
of the three computed it again, a fifth of the import's Python time (name
transliteration, e-mail and phone parsing).
"""

from __future__ import annotations

from crmgraph.db.match_score import Normal, Probe


class Normals(dict[tuple[Probe, str | None], Normal]):
    """Probes' normal forms, each computed once: an import screens a row,
    pairs it with its batch and writes its keys from one normal form (a third
    of its Python time was computing the same one three times)."""

    def of(self, probe: Probe, region: str | None = None) -> Normal:
        found = self.get((probe, region))
        if found is None:
            found = self[(probe, region)] = Normal.of(probe, region)
        return found
