"""Plausible attribute values: a plugin's attribute declares only a type and
bounds, so the text is guessed from its name (an e-mail, a tax id, a web
site …) and numbers and dates are kept within the declared bounds."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from crmgraph.demo.words import (
    DEPARTMENTS,
    INDUSTRIES,
    INTERESTS,
    LANGUAGES,
    RELATIONS,
    SPANISH,
    STRENGTHS,
    SUPPLY_CATEGORIES,
    WEAKNESSES,
    Locale,
    Rng,
    digits,
)


@dataclass(frozen=True)
class Party:
    name: str
    locale: Locale
    is_person: bool
    domain: str


def ascii_slug(text: str, separator: str = "-") -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    parts = re.findall(r"[a-z0-9]+", plain.replace(".", ""))
    return separator.join(parts)


def within(
    value: Decimal, low: Decimal | None, high: Decimal | None, step: Decimal, kind: type
) -> Any:
    """``value`` rounded to ``step`` and moved into the inclusive bounds (a
    bound finer than the step is taken as it is), in the form ``kind`` stores."""
    rounded = value.quantize(step)
    if low is not None and rounded < low:
        rounded = Decimal(math.ceil(low)) if kind is int else low
    if high is not None and rounded > high:
        rounded = Decimal(math.floor(high)) if kind is int else high
    return kind(rounded)


def fit(text: str, max_length: int | None) -> str:
    """Shorten to ``max_length`` at a word boundary where there is one."""
    if max_length is None or len(text) <= max_length:
        return text
    cut = text[: max_length + 1].rsplit(" ", 1)[0].rstrip(" ,.;")
    return cut if 0 < len(cut) <= max_length else text[:max_length]


def dni(rng: Rng) -> str:
    number = rng.randrange(10_000_000, 100_000_000)
    return f"{number}{'TRWAGMYFPDXBNJZSQVHLCKE'[number % 23]}"


def tax_id(rng: Rng, party: Party) -> str:
    if party.locale is SPANISH:
        return dni(rng) if party.is_person else f"{rng.choice('AB')}{digits(rng, 8)}"
    if party.is_person:
        return f"{digits(rng, 3)}-{digits(rng, 2)}-{digits(rng, 4)}"
    return f"{digits(rng, 2)}-{digits(rng, 7)}"  # an EIN


def website_domain(party: Party) -> str:
    return f"{ascii_slug(party.name)}.example" if party.is_person else party.domain


TextMaker = Callable[[Rng, Party], str]

# Plugins only declare a type and a length, so plausible text is guessed from
# the attribute's name; anything unrecognised gets a short note.
TEXT_HINTS: tuple[tuple[str, TextMaker], ...] = (
    (r"e?mail", lambda rng, party: f"{ascii_slug(party.name, '.')}@{party.domain}"),
    (r"phone|mobile", lambda rng, party: party.locale.mobile(rng)),
    (r"tax|vat|cif|nif|document|passport|dni", tax_id),
    (r"web|url|site", lambda rng, party: f"https://www.{website_domain(party)}"),
    (r"lang", lambda rng, party: rng.choice(LANGUAGES[party.locale.code])),
    (r"industr|sector", lambda rng, party: rng.choice(INDUSTRIES)),
    (r"job|position|title|role", lambda rng, party: rng.choice(party.locale.job_titles)),
    (r"depart|team|area", lambda rng, party: rng.choice(DEPARTMENTS)),
    (r"relation", lambda rng, party: rng.choice(RELATIONS)),
    (r"categor|supplies|product", lambda rng, party: rng.choice(SUPPLY_CATEGORIES)),
    (r"strength", lambda rng, party: rng.choice(STRENGTHS)),
    (r"weakness", lambda rng, party: rng.choice(WEAKNESSES)),
    (r"interest", lambda rng, party: rng.choice(INTERESTS)),
)

# Day offsets from today for date attributes, by name.
DATE_HINTS: tuple[tuple[str, tuple[int, int]], ...] = (
    (r"birth", (-80 * 365, -18 * 365)),
    (r"due|expir|until|renew|deadline|next", (1, 720)),
)
PAST_DAYS = (-6 * 365, -1)
