"""Normal forms of what identifies a party, so two spellings of the same
e-mail, phone, tax id or name compare equal (or share a blocking key).

- E-mail: lower-cased; for the providers in :data:`DOT_INSENSITIVE_DOMAINS`
  dots in the local part are dropped, for those in
  :data:`PLUS_ADDRESSING_DOMAINS` a ``+tag`` is dropped, and
  :data:`DOMAIN_ALIASES` folds a provider's second domain onto its first
  (``googlemail.com`` is ``gmail.com``). Other domains keep dots and ``+``: on
  a company's own server ``ana+sales@`` may be a different mailbox.
- Phone: E.164 with ``phonenumbers``; a number without ``+`` and country code
  is read in ``region`` (crmgraph passes ``CRMGRAPH_DEFAULT_PHONE_REGION``,
  the same setting input validation uses; unset, such a number has no normal
  form and gives no evidence).
- Tax id: upper-cased, only letters and digits kept, and an EU VAT country
  prefix (``ES``, ``DE``, …) dropped when a number follows, so ``ES-B12.345.678``
  and ``b12345678`` are the same id. Two countries' ids that differ only in
  the prefix then compare equal: rare, and a merge is never automatic.
- Name: transliterated to Latin letters (``anyascii``: ``Иван Петров`` is
  ``ivan petrov``, ``Γιώργος`` is ``giorgos``, ``トヨタ`` is ``toyota``), so
  names in every script have keys and a Latin spelling of a Cyrillic or Greek
  name matches the original; accents folded, lower-cased, punctuation
  dropped, and the legal forms and particles in :data:`NAME_NOISE` left out
  (``Acme, S.L.`` is ``acme``; ``Banco de Santander`` is ``banco santander``;
  ``株式会社トヨタ`` and ``トヨタ株式会社`` are ``toyota``). Arabic and Hebrew
  vowel points are dropped first (they are optional in writing), and a run of
  Han, kana or Hangul is a word of its own, since those scripts put no space
  between a name and its legal form.
"""

from __future__ import annotations

import functools
import re
import unicodedata

import phonenumbers
from anyascii import anyascii

# Providers that deliver ``a.n.a@`` to ``ana@``.
DOT_INSENSITIVE_DOMAINS: frozenset[str] = frozenset({"gmail.com"})

# Providers that deliver ``ana+anything@`` to ``ana@``.
PLUS_ADDRESSING_DOMAINS: frozenset[str] = frozenset(
    {
        "gmail.com",
        "outlook.com",
        "hotmail.com",
        "live.com",
        "msn.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "fastmail.com",
        "fastmail.fm",
        "protonmail.com",
        "proton.me",
        "pm.me",
        "zoho.com",
    }
)

# A provider's other domain -> the one it is compared as.
DOMAIN_ALIASES: dict[str, str] = {"googlemail.com": "gmail.com"}

# Country prefixes of EU VAT numbers (Greece writes EL), plus XI (Northern Ireland).
VAT_PREFIXES: frozenset[str] = frozenset(
    {
        "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "EL", "ES", "FI", "FR", "HR", "HU",
        "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK", "XI",
    }
)  # fmt: skip

# Words that do not tell two parties apart: legal forms and name particles.
NAME_NOISE: frozenset[str] = frozenset(
    {
        # legal forms (after dots are dropped: "S.L." is "sl")
        "sl", "slu", "sll", "sa", "sau", "sc", "scp", "cb", "ltd", "limited", "inc",
        "incorporated", "llc", "llp", "lp", "plc", "corp", "corporation", "co", "company",
        "cia", "gmbh", "ag", "kg", "bv", "nv", "srl", "spa", "sas", "sarl", "ab", "oy", "as",
        "coop", "scoop", "sccl",
        # particles
        "de", "del", "la", "las", "los", "el", "y", "e", "i", "the", "and", "of", "da", "do",
        "dos", "das", "di", "du", "van", "von", "der", "den",
        # legal forms in other scripts, as transliterated: Russian OOO, ZAO, OAO,
        # PAO; Greek AE, EPE; Japanese 株式会社, 有限会社; Chinese 有限公司; Arabic
        # sharika ("company")
        "ooo", "zao", "oao", "pao", "ae", "epe", "zhushihuishe", "youxianhuishe", "kk",
        "youxiangongsi", "shrkh",
    }
)  # fmt: skip

_TOKEN = re.compile(r"[a-z0-9]+")
# Scripts written without spaces between words, each run of one a word of its
# own: Han (with its compatibility block), kana (with half-width forms), Hangul.
_UNSPACED_SCRIPTS = (
    ("han", ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x3134F))),
    ("kana", ((0x3040, 0x30FF), (0x31F0, 0x31FF), (0xFF66, 0xFF9F))),
    ("hangul", ((0x1100, 0x11FF), (0x3130, 0x318F), (0xAC00, 0xD7AF))),
)
# Vowel points of abjads (Hebrew, Arabic, Syriac, Thaana, …), optional in
# writing: "محمد" and "مُحَمَّد" are one name.
_POINTED_SCRIPTS = (0x0590, 0x08FF)
# Greek omicron-upsilon (with or without an accent on the upsilon) is "ou" in
# Latin spellings (Papadopoulos), not letter by letter "oy".
_GREEK_OU = re.compile("\u03bf[\u03c5\u03cd\u03cb\u03b0]")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


def normalize_email(value: str | None) -> str | None:
    """The mailbox an address reaches, as one string; None if it is no address."""
    if not value:
        return None
    address = value.strip().lower()
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        return None
    domain = DOMAIN_ALIASES.get(domain, domain)
    if domain in PLUS_ADDRESSING_DOMAINS:
        local = local.split("+", 1)[0]
    if domain in DOT_INSENSITIVE_DOMAINS:
        local = local.replace(".", "")
    return f"{local}@{domain}" if local else None


def normalize_phone(value: str | None, region: str | None = None) -> str | None:
    """E.164 (``+14155550100``), or None for what cannot be a phone number."""
    if not value:
        return None
    if _E164.fullmatch(value):  # stored phones are validated E.164 already: skip parsing
        return value
    try:
        parsed = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalize_tax_id(value: str | None) -> str | None:
    if not value:
        return None
    plain = "".join(ch for ch in value.upper() if ch.isascii() and ch.isalnum())
    rest = plain[2:]
    if plain[:2] in VAT_PREFIXES and len(rest) >= 5 and any(ch.isdigit() for ch in rest):
        plain = rest
    return plain or None


def _unspaced_script(ch: str) -> str | None:
    code = ord(ch)
    for script, ranges in _UNSPACED_SCRIPTS:
        if any(low <= code <= high for low, high in ranges):
            return script
    return None


def _without_vowel_points(text: str) -> str:
    low, high = _POINTED_SCRIPTS
    return "".join(
        ch for ch in text if not (low <= ord(ch) <= high and unicodedata.category(ch) == "Mn")
    )


def transliterate(name: str) -> str:
    """``name`` in Latin letters, accents and vowel points dropped, with a
    space where a run of Han, kana or Hangul begins or ends. An ASCII name
    (most of them) is only folded: the character loop keeps it as it is, and
    cost an import a sixth of its Python time."""
    if name.isascii():
        return name.casefold()
    return transliterate_unicode(name)


def transliterate_unicode(name: str) -> str:
    """:func:`transliterate` of any name, character by character."""
    text = _without_vowel_points(unicodedata.normalize("NFC", name.casefold()))
    text = _GREEK_OU.sub("ou", text)
    spaced, previous = [], None
    for ch in text:
        script = _unspaced_script(ch)
        if script != previous:
            spaced.append(" ")
            previous = script
        spaced.append(ch)
    return anyascii("".join(spaced))


@functools.lru_cache(maxsize=65_536)
def name_tokens(name: str | None) -> tuple[str, ...]:
    """The words of a name that tell parties apart, in their order, in Latin
    letters whatever the script. Noise words are kept when nothing else is
    left (a company called "The Company").
    Cached: names repeat, and every candidate read is normalised."""
    if not name:
        return ()
    folded = transliterate(name).lower()
    words = _TOKEN.findall(folded.replace(".", "").replace("'", ""))
    meaningful = tuple(w for w in words if w not in NAME_NOISE)
    return meaningful or tuple(words)


def comparable_name(name: str | None) -> str:
    return " ".join(name_tokens(name))


def name_keys(name: str | None) -> tuple[str, ...]:
    """Blocking keys: names that may be the same party share at least one.

    The words are sorted, so word order does not matter, and of the first and
    last word each key keeps one whole and the other's first two letters: a
    typo anywhere in one word still leaves one key shared ("jon smith" and
    "john smith" share ``jo|smith``). Typos in both words are missed; keeping
    two letters rather than one keeps blocks small (every "John S…" in one
    block would grow with the database). A one-word name keys on its first
    four letters."""
    tokens = sorted(name_tokens(name))
    if not tokens:
        return ()
    if len(tokens) == 1:
        return (f"1:{tokens[0][:4]}",)
    first, last = tokens[0], tokens[-1]
    return tuple(sorted({f"2:{first[:2]}|{last}", f"2:{first}|{last[:2]}"}))
