"""validation.phone keeps phonenumbers' answer per text and region: the kept
answer is the one phonenumbers gives, the second time as the first."""

from __future__ import annotations

import itertools

import phonenumbers

from crmgraph import validation as v

PHONES = [
    "+34 600002000", "+34600002000", "600 00 20 00", "+34 (600) 00-20-00", "0034 600002000",
    "+1 650 253 0000", "(650) 253-0000", "+44 20 7031 3000", "020 7031 3000", "+39 06 1234 5678",
    "+34 900 000 000", "+34 12345", "+999 1234567", "12", "phone", "+", "+34 600002000 ext. 12",
    "tel:+34-600-002-000", "1-800-FLOWERS", "+49 (0) 30 123456", "+34 6000020001234567",
]  # fmt: skip
REGIONS = [None, "ES", "US", "GB", "es"]


def reference(value: str, region: str | None) -> tuple[str | None, list[v.Problem]]:
    """validation.phone as it was: phonenumbers asked every time."""
    errors = v.Errors()
    cleaned = v.text(errors, "phone", value, max_length=40)
    assert cleaned is not None
    try:
        parsed = phonenumbers.parse(cleaned, region)
    except phonenumbers.NumberParseException:
        hint = "" if region else " (start it with + and the country code)"
        errors.add("phone", f"phone is not a phone number{hint}", "INVALID_PHONE")
        return None, errors.problems
    if not phonenumbers.is_valid_number(parsed):
        errors.add("phone", "phone is not a valid phone number", "INVALID_PHONE")
        return None, errors.problems
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164), []


def test_kept_answers_are_phonenumbers_answers() -> None:
    cases = list(itertools.product(PHONES, REGIONS))
    for value, region in cases + cases:  # the second time from the kept answers
        errors = v.Errors()
        found = v.phone(errors, "phone", value, region)
        assert (found, errors.problems) == reference(value, region), (value, region)
    errors = v.Errors()
    assert v.phone(errors, "phone", " +34 600 002 000 ", None) == "+34600002000"
    assert v.phone(errors, "phone", "+34 12345", None) is None
    assert [p.code for p in errors.problems] == ["INVALID_PHONE"]
