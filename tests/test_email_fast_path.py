"""validation.email answers plain addresses from a kept domain verdict instead
of calling validate_email: over a generated corpus of addresses, ordinary and
odd, it gives exactly validate_email's normalised address or error message."""

from __future__ import annotations

import itertools
import random

import email_validator
import pytest
from email_validator import EmailNotValidError, validate_email

from crmgraph import validation as v


def wide(text: str) -> str:
    """``text`` in full-width forms (U+FF01 to U+FF5E), which IDNA maps to ASCII."""
    return "".join(chr(ord(c) + 0xFEE0) for c in text)


LOCALS = [
    "a", "john.doe", "John.Doe", "x_y-z+tag", "!#$%&'*+/=?^_`{|}~-", "a.b.c.d", "0",
    ".a", "a.", "a..b", "a b", '"a b"', '"a@b"', '"john.doe"', '"a\\"b"', "ñoño", "δοκιμή",
    "e\u0301", "\u0301a", "a\u200bb", "INFO", "Postmaster", "www", "sales.x", "a<b", "a>b",
    "a,b", "a;b", "a:b", "a(b)", "a[b]", "a\\b", "a\tb", "用户", "a" * 64, "a" * 65,
    "b" * 100, "x" * 63 + ".", "=\u0338",
]  # fmt: skip
DOMAINS = [
    "example.com", "EXAMPLE.COM", "Example.Com", "example.com.", "example..com", ".example.com",
    "-example.com", "example-.com", "ex-.ample.com", "ex.-ample.com", "sub.example.co.uk",
    "localhost", "foo.localhost", "x.test", "test", "x.local", "x.invalid", "x.onion",
    "1.168.192.in-addr.arpa", "arpa", "com", "a.b", "a.1", "example.123", "1.2.3.4",
    "münchen.de", "MÜNCHEN.DE", "xn--mnchen-3ya.de", "XN--MNCHEN-3YA.DE", "xn--bad--.com",
    "xn--.com", "xn--4dbc.com", "1.xn--4dbc.com", "xn--4dbc.1.com", "bücher.example",
    wide("example.com"), "例え.テスト", "例え。テスト", "exa\u200dmple.com", "ex ample.com",
    "ex_ample.com", "ex!ample.com", "@example.com", "b@example.com", "example.com>",
    "<example.com", "[127.0.0.1]", "[IPv6:::1]", "[300.1.1.1]", "[foo]", "[127.0.0.1",
    "\u0301example.com", "example.com\u0301", "exa\u00admple.com", "ex\u2024ample.com",
    "a" * 63 + ".com", "a" * 64 + ".com", ".".join(["a" * 63] * 3) + ".com",
    ".".join(["b" * 61] * 4), ".".join(["c" * 62] * 4) + ".co", "ä" * 50 + ".de",
    "é" * 60 + "." + "a" * 60 + ".com", "",
]  # fmt: skip
WHOLE = [
    "", "a", "@", "a@", "@b.com", "a@@b.com", "Name <a@b.com>", "<a@b.com>", "a @b.com",
    "a@ b.com", "a@b.com ", "a\x00@b.com", wide("AB@") + "example.com", "a﹫example.com",
]  # fmt: skip


def reference(value: str) -> tuple[str | None, list[str]]:
    """validation.email as it was: every address through validate_email."""
    errors = v.Errors()
    cleaned = v.text(errors, "email", value, max_length=320)
    messages = [p.message for p in errors.problems]  # too long is reported, and checked on
    if cleaned is None:
        return None, messages
    try:
        return validate_email(cleaned, check_deliverability=False).normalized, messages
    except EmailNotValidError as exc:
        return None, [*messages, f"email is not a valid e-mail address: {exc}"]


def checked(value: str) -> tuple[str | None, list[str]]:
    errors = v.Errors()
    return v.email(errors, "email", value), [p.message for p in errors.problems]


def corpus() -> list[str]:
    rng = random.Random(28)
    addresses = [f"{local}@{domain}" for local, domain in itertools.product(LOCALS, DOMAINS)]
    for _ in range(3000):  # lengths around the limits of 64, 253 and 254 characters
        local = rng.choice(LOCALS[:4]) + "x" * rng.randint(0, 70)
        labels = ["d" * rng.randint(1, 63) for _ in range(rng.randint(1, 5))]
        tld = rng.choice(["com", "münchen", "xn--mnchen-3ya", "test", "COM", "com."])
        addresses.append(f"{local}@{'.'.join(labels)}.{tld}")
    return addresses + WHOLE


def test_fast_path_answers_as_validate_email_does() -> None:
    addresses = corpus()
    # twice: the first time keeps each domain's verdict, the second answers from it
    for address in addresses + addresses:
        assert checked(address) == reference(address), address


def test_plain_addresses_take_the_fast_path() -> None:
    """The comparison above would pass with the fast path never taken."""
    assert v.email(v.Errors(), "email", "p1.2@example1.com") == "p1.2@example1.com"
    assert v._plain_email("P1.2@EXAMPLE1.COM") == "P1.2@example1.com"
    assert v._plain_email("Info@Example.com") == "info@example.com"
    assert v._plain_email("a@xn--mnchen-3ya.de") == "a@münchen.de"
    assert v._plain_email("a@münchen.de") == "a@münchen.de"
    assert v._plain_email('"a"@example.com') is None
    assert v._plain_email("a@localhost") is None


@pytest.mark.parametrize("setting", ["TEST_ENVIRONMENT", "GLOBALLY_DELIVERABLE"])
def test_a_verdict_holds_for_the_library_settings_it_was_made_under(setting: str) -> None:
    """validate_email reads its module defaults at each call; so does the fast path."""
    addresses = [f"{local}@{domain}" for local in ("a", "Info") for domain in DOMAINS]
    before = [checked(a) for a in addresses]
    flipped = not getattr(email_validator, setting)
    setattr(email_validator, setting, flipped)
    try:
        after = [checked(a) for a in addresses]
        assert after == [reference(a) for a in addresses]
    finally:
        setattr(email_validator, setting, not flipped)
    assert [checked(a) for a in addresses] == before
    if setting == "TEST_ENVIRONMENT":
        assert before != after  # x.test passes only in a test environment
