"""How likely two parties are one: their normal forms, blocking keys and score.

Pure functions of the values given (no database): the stored keys and pairs
(crmgraph.db.match_keys) and the dedupe feature's lookups (crmgraph.dedupe.matching)
both score with them, and so do the migrations that rebuild the stored pairs.

Blocking keys (:meth:`Normal.blocking_keys`): the normal e-mail (``EMAIL``),
E.164 phone (``PHONE``), normal tax id (``TAX_ID``, from ``attributes["tax_id"]``)
and two name keys (``NAME``, see :func:`crmgraph.db.normalize.name_keys`).

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
whose duplicate rule is ``block`` refuses a create at that score.

Probes hold raw values; they are normalised here (a phone without ``+`` is
read in ``region``, normally ``settings.default_phone_region``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rapidfuzz import fuzz

from crmgraph.db.normalize import (
    comparable_name,
    name_keys,
    normalize_email,
    normalize_phone,
    normalize_tax_id,
)
from crmgraph.db.queries import load_json

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

    def blocking_keys(self) -> tuple[tuple[str, str], ...]:
        # kept on the instance (frozen, so it never changes): pair upkeep and
        # screening ask a holder's keys once per block it is met in
        keys: tuple[tuple[str, str], ...] | None = self.__dict__.get("_blocking_keys")
        if keys is None:
            found = [(t, v) for t, v in ((EMAIL, self.email), (PHONE, self.phone)) if v]
            if self.tax_id:
                found.append((TAX_ID, self.tax_id))
            keys = (*found, *((NAME, key) for key in self.name_keys))
            self.__dict__["_blocking_keys"] = keys
        return keys


def keys_that_can_reach(normal: Normal, min_score: float) -> list[tuple[str, str]]:
    """The blocking keys through which a candidate can score ``min_score``: a
    similar name alone weighs at most :data:`NAME_WEIGHT`, so above it only a
    shared e-mail, phone or tax id can get there and the name keys, whose
    blocks grow with the table, are not looked up (an import asks at
    :data:`STRONG`)."""
    keys = normal.blocking_keys()
    return [k for k in keys if k[0] != NAME] if min_score > NAME_WEIGHT else list(keys)


def match_keys(probe: Probe, region: str | None = None) -> list[tuple[str, str]]:
    """The (key_type, key_value) blocking keys of a probe."""
    return list(Normal.of(probe, region).blocking_keys())


@dataclass(frozen=True)
class Reason:
    """One piece of evidence: a code and, for a similarity, its value."""

    code: str
    detail: str | None = None

    def __str__(self) -> str:
        return f"{self.code} {self.detail}" if self.detail else self.code


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
