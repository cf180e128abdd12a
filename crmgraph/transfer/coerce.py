"""The text of a cell as the type its field takes.

An empty cell is no value (``None``). A cell that cannot be read as the
type is a problem on the row, named by the field's input path, the same
path ``createCustomer`` would report.
"""

from __future__ import annotations

import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from crmgraph.validation import Errors, utc

TRUE = frozenset({"true", "yes", "y", "1", "t", "si", "sí"})
FALSE = frozenset({"false", "no", "n", "0", "f"})


def cell(value: str | None) -> str | None:
    if value is None:
        return None
    stripped = value.strip()
    return stripped or None


def typed(errors: Errors, path: str, kind: type, value: str | None) -> Any:
    """``value`` read as ``kind`` (str, int, float, Decimal, bool, date,
    datetime); None when empty or unreadable (then a problem is recorded)."""
    text = cell(value)
    if text is None or kind is str:
        return text if kind is str else None
    try:
        return _READERS[kind](text)
    except (ValueError, InvalidOperation, KeyError):
        errors.add(path, f"{path}: {text!r} is not {_NAMES[kind]}", "INVALID")
        return None


def _integer(text: str) -> int:
    number = Decimal(text)
    if number != number.to_integral_value():
        raise ValueError(text)
    return int(number)


def _decimal(text: str) -> Decimal:
    number = Decimal(text)
    if not number.is_finite():
        raise ValueError(text)
    return number


def _float(text: str) -> float:
    number = float(text)
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(text)
    return number


def _boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE:
        return False
    raise ValueError(text)


def _datetime(text: str) -> datetime.datetime:
    """ISO 8601; a bare date is its midnight; no offset means UTC."""
    parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return utc(parsed)  # type: ignore[return-value]


_READERS: dict[type, Any] = {
    int: _integer,
    float: _float,
    Decimal: _decimal,
    bool: _boolean,
    datetime.date: datetime.date.fromisoformat,
    datetime.datetime: _datetime,
}
_NAMES = {
    int: "a whole number",
    float: "a number",
    Decimal: "a number",
    bool: "true or false",
    datetime.date: "a date (YYYY-MM-DD)",
    datetime.datetime: "a date-time (ISO 8601)",
}
