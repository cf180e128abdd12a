"""The ASCII fast paths of the name folds give what the character-by-character
folds give (crmgraph.db.text_keys.fold, crmgraph.db.normalize.transliterate):
they decide the stored name_folded/name_sort columns and the match keys, so a
difference would split a name's key or search from the same name written
before. Pure functions: no database, so no engine to run them on."""

from __future__ import annotations

import random
import string

from crmgraph.db.normalize import transliterate, transliterate_unicode
from crmgraph.db.text_keys import fold, fold_unicode

# every ASCII character, controls and the separators \s matches included
ASCII = "".join(chr(code) for code in range(128))
SAMPLES = [
    "",
    " ",
    "Ana  García",
    "ANA\tLOPEZ\n",
    "  O'Brien-Smith Jr.  ",
    "a \x00",
    "\x1c\x1d\x1e\x1fname\x7f",
    "x\x0b\x0cy\r\nz",
    "info@Example.COM",
    string.printable,
    ASCII,
]


def random_ascii(rng: random.Random) -> str:
    alphabet = ASCII + string.ascii_letters * 3 + " " * 10
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))


def test_fold_of_ascii_is_the_general_fold() -> None:
    rng = random.Random(28)
    texts = SAMPLES + [random_ascii(rng) for _ in range(5000)]
    differing = [t for t in texts if fold(t) != fold_unicode(t)]
    assert differing == []
    assert fold("  Ana\x00  GARCÍA ") == fold_unicode("  Ana\x00  GARCÍA ") == "ana garcia"


def test_transliterate_of_ascii_is_the_general_transliteration() -> None:
    rng = random.Random(29)
    texts = SAMPLES + [random_ascii(rng) for _ in range(5000)]
    differing = [t for t in texts if transliterate(t) != transliterate_unicode(t)]
    assert differing == []
    assert transliterate("Łódź 東京") == transliterate_unicode("Łódź 東京")
