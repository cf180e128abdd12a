"""Input validation that reports every problem at once, each naming its field.

Validators return the normalised value (trimmed text, lower-cased e-mail
domain, E.164 phone) and record problems on an :class:`Errors` collector that
mutations turn into ``userErrors``.
"""

from __future__ import annotations

import datetime
import enum
import functools
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import email_validator
import phonenumbers
from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES

from crmgraph.customer_types import Attribute, CustomerType, Number, bound_text, exact_number


@dataclass(frozen=True)
class Problem:
    field: str | None
    message: str
    code: str


@dataclass
class Errors:
    problems: list[Problem] = field(default_factory=list)

    def add(self, field_path: str | None, message: str, code: str = "INVALID") -> None:
        self.problems.append(Problem(field_path, message, code))

    def __bool__(self) -> bool:
        return bool(self.problems)


class UserInputError(Exception):
    """Raised inside a mutation to roll its transaction back and report problems."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems

    @classmethod
    def single(cls, field_path: str | None, message: str, code: str) -> UserInputError:
        return cls([Problem(field_path, message, code)])


@functools.lru_cache(maxsize=4096)  # field names, a few per row of every write and import
def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def text(
    errors: Errors,
    path: str,
    value: str | None,
    *,
    max_length: int,
    required: bool = False,
) -> str | None:
    if value is None:
        if required:
            errors.add(path, f"{path} is required", "REQUIRED")
        return None
    cleaned = value.strip()
    if not cleaned:
        if required:
            errors.add(path, f"{path} must not be blank", "REQUIRED")
        return None
    if len(cleaned) > max_length:
        errors.add(path, f"{path} must be at most {max_length} characters", "TOO_LONG")
    if "\x00" in cleaned:  # PostgreSQL text cannot hold it; refused on SQLite too, alike
        errors.add(path, f"{path} must not contain NUL characters", "INVALID")
        return None
    return cleaned


# RFC 5322 atext as a dot-atom, ASCII only: a local part email_validator
# returns as it is (its DOT_ATOM_TEXT accepts every one), whatever its options.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_ASCII_DOT_ATOM = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*")
_MAILBOX_NAMES = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)  # lower-cased by email_validator
# the longest local part and address (in UTF-8) email_validator lets pass in strict mode
_LOCAL_MAX, _ADDRESS_MAX = 64, 254


# bounded: a file of a million rows may name as many domains
@functools.lru_cache(maxsize=4096)
def _domain_of(
    domain_part: str, test_environment: bool, globally_deliverable: bool
) -> tuple[str, str] | None:
    """email_validator's normal forms of ``domain_part`` (Unicode, ASCII):
    what validate_email makes of it behind a local part that needs nothing
    (``a``); None when it refuses it (its error is then the address's to find)."""
    try:
        probe = validate_email(
            "a@" + domain_part,
            check_deliverability=False,
            test_environment=test_environment,
            globally_deliverable=globally_deliverable,
        )
    except EmailNotValidError:
        return None
    return probe.domain, probe.ascii_domain


def _plain_email(cleaned: str) -> str | None:
    """validate_email's normalised address for an ASCII dot-atom local part
    and a domain it accepted before, with no length limit reached; None for
    any other address, left to validate_email."""
    local, at, domain_part = cleaned.partition("@")
    if not at or len(local) > _LOCAL_MAX or not domain_part or domain_part[0] == "[":
        return None  # no @, strict mode's limit, no domain, a domain literal
    if not _ASCII_DOT_ATOM.fullmatch(local):
        return None
    # validate_email reads these module defaults at each call, so a verdict is kept per setting
    domains = _domain_of(
        domain_part, email_validator.TEST_ENVIRONMENT, email_validator.GLOBALLY_DELIVERABLE
    )
    if domains is None:
        return None
    domain, ascii_domain = domains
    normal = local.lower() if local.lower() in _MAILBOX_NAMES else local
    normalized = f"{normal}@{domain}"
    # validate_email's length checks: the address as given, normalised, in IDNA ASCII
    for address in (cleaned, normalized, f"{normal}@{ascii_domain}"):
        if len(address.encode()) > _ADDRESS_MAX:
            return None
    return normalized


def email(errors: Errors, path: str, value: str | None) -> str | None:
    cleaned = text(errors, path, value, max_length=320)
    if cleaned is None:
        return None
    plain = _plain_email(cleaned)
    if plain is not None:
        return plain
    try:
        result = validate_email(cleaned, check_deliverability=False)
    except EmailNotValidError as exc:
        errors.add(path, f"{path} is not a valid e-mail address: {exc}", "INVALID_EMAIL")
        return None
    return result.normalized


class PhoneVerdict(enum.Enum):
    NOT_A_NUMBER = "not a phone number"
    INVALID = "not a valid phone number"


# A number repeats in a file (a switchboard, a shared line) and in API writes;
# phonenumbers' answer depends on the text and the region only.
@functools.lru_cache(maxsize=4096)
def _e164(cleaned: str, default_region: str | None) -> str | PhoneVerdict:
    try:
        parsed = phonenumbers.parse(cleaned, default_region)
    except phonenumbers.NumberParseException:
        return PhoneVerdict.NOT_A_NUMBER
    if not phonenumbers.is_valid_number(parsed):
        return PhoneVerdict.INVALID
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def phone(errors: Errors, path: str, value: str | None, default_region: str | None) -> str | None:
    cleaned = text(errors, path, value, max_length=40)
    if cleaned is None:
        return None
    found = _e164(cleaned, default_region)
    if found is PhoneVerdict.NOT_A_NUMBER:
        hint = "" if default_region else " (start it with + and the country code)"
        errors.add(path, f"{path} is not a phone number{hint}", "INVALID_PHONE")
        return None
    if found is PhoneVerdict.INVALID:
        errors.add(path, f"{path} is not a valid phone number", "INVALID_PHONE")
        return None
    return found


def number_range(
    errors: Errors,
    path: str,
    value: Number | None,
    minimum: Number | None,
    maximum: Number | None,
) -> None:
    """Inclusive bounds, compared exactly: value and bounds each as the decimal
    it was written as (a float by its shortest spelling), so 0.3 is within
    ``max_value=0.3`` whichever of int, float and Decimal each one is."""
    if value is None:
        return
    exact = exact_number(value)
    if minimum is not None and exact < exact_number(minimum):
        errors.add(path, f"{path} must be at least {bound_text(minimum)}", "OUT_OF_RANGE")
    if maximum is not None and exact > exact_number(maximum):
        errors.add(path, f"{path} must be at most {bound_text(maximum)}", "OUT_OF_RANGE")


def utc(value: datetime.datetime | None) -> datetime.datetime | None:
    """Every stored timestamp is UTC, so they compare and sort the same on both engines."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=datetime.UTC)
    return value.astimezone(datetime.UTC)


def money(errors: Errors, path: str, value: Decimal | None) -> Decimal | None:
    if value is None:
        return None
    try:
        quantized = value.quantize(Decimal("0.01"))
    except InvalidOperation:
        errors.add(path, f"{path} is not a valid amount", "INVALID")
        return None
    if not quantized.is_finite() or abs(quantized) >= Decimal("1e12"):
        errors.add(path, f"{path} is out of range", "OUT_OF_RANGE")
        return None
    return quantized


def attribute_value(errors: Errors, path: str, attr: Attribute, value: Any) -> Any:
    """Validate one typed attribute and return it in its JSON-storable form."""
    if value is None:
        if attr.required:
            errors.add(path, f"{path} is required", "REQUIRED")
        return None
    if attr.type is str:
        cleaned = text(
            errors, path, value, max_length=attr.max_length or 1000, required=attr.required
        )
        if cleaned is not None and attr.choices and cleaned not in attr.choices:
            errors.add(path, f"{path} must be one of {', '.join(attr.choices)}", "INVALID_CHOICE")
        return cleaned
    if attr.type in (int, float, Decimal):
        if isinstance(value, Decimal) and not value.is_finite():  # NaN cannot even be compared
            errors.add(path, f"{path} must be a finite number", "INVALID")
            return None
        number_range(errors, path, value, attr.min_value, attr.max_value)
        return str(value) if attr.type is Decimal else value
    if attr.type is datetime.date:
        return value.isoformat()
    return value


def attributes(
    errors: Errors,
    prefix: str,
    descriptor: CustomerType,
    given: dict[str, Any],
    existing: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Merge ``given`` attribute values over ``existing`` ones and validate the
    result; only attributes the caller sent are re-validated, but a required
    attribute must be present in the merged result."""
    merged = dict(existing or {})
    for attr in descriptor.attributes:
        path = f"{prefix}.{camel(attr.name)}"
        if attr.name in given:
            merged[attr.name] = attribute_value(errors, path, attr, given[attr.name])
        elif attr.required and merged.get(attr.name) is None:
            errors.add(path, f"{path} is required", "REQUIRED")
    return {k: v for k, v in merged.items() if v is not None}
