"""Which column of a file feeds which field.

A mapping is given as ``Source column=field`` pairs (``--map "Full
name=name"``, repeatable) and/or a mapping file: a JSON object ``{"Source
column": "field"}`` or lines ``Source column=field`` (``#`` starts a comment).
A field of ``-`` (or nothing) ignores the column.

Columns not mapped explicitly map themselves when their name, spelled in any
of the usual ways (``E-mail``, ``Tax ID``, ``taxId``), is a field of the
entity: a core field (``name``, ``email``…) or, for customers, a typed
attribute of a customer type (``segment``, ``tax_id``; also written
``attributes.segment``). Other columns are ignored and listed in the summary.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ATTRIBUTE_PREFIX = "attributes."
IGNORE = "-"

# common spellings of a field that normalising alone does not reach
ALIASES = {"e_mail": "email", "mail": "email", "full_name": "name", "phone_number": "phone"}


class MappingError(Exception):
    """The mapping cannot work for this file; nothing is imported."""


def snake(name: str) -> str:
    """``Tax ID``, ``tax-id``, ``taxId`` and ``TAX_ID`` all become ``tax_id``."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name.strip())
    return re.sub(r"[^a-z0-9.]+", "_", spaced.lower()).strip("_")


def parse_pairs(specs: Iterable[str]) -> dict[str, str]:
    """``["Full name=name", ...]`` -> ``{"Full name": "name"}``."""
    pairs: dict[str, str] = {}
    for spec in specs:
        source, sep, target = spec.rpartition("=")
        if not sep or not source.strip():
            raise MappingError(f"a mapping reads 'Source column=field', not {spec!r}")
        pairs[source.strip()] = target.strip()
    return pairs


def read_mapping_file(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise MappingError(f"cannot read mapping file {path}: {exc.strerror}") from exc
    if text.lstrip().startswith("{"):
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as exc:
            raise MappingError(f"mapping file {path} is not valid JSON: {exc}") from exc
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in loaded.items()):
            raise MappingError(f"mapping file {path}: every key and value must be a string")
        return {k.strip(): v.strip() for k, v in loaded.items()}
    lines = [line.strip() for line in text.splitlines()]
    return parse_pairs(line for line in lines if line and not line.startswith("#"))


@dataclass(frozen=True)
class Fields:
    """What an entity's columns may feed: core fields and typed attributes."""

    core: frozenset[str]
    attributes: frozenset[str] = frozenset()
    required: tuple[str, ...] = ()

    def target(self, name: str) -> str | None:
        """The field ``name`` names (``attributes.x`` for an attribute), or None."""
        key = snake(name)
        key = ALIASES.get(key, key)
        if key in self.core:
            return key
        bare = key.removeprefix(ATTRIBUTE_PREFIX)
        if bare in self.attributes:
            return ATTRIBUTE_PREFIX + bare
        return None


@dataclass
class ColumnMap:
    """The header of one file, each column resolved to a field or ignored."""

    columns: dict[str, str]  # header -> field
    ignored: list[str] = field(default_factory=list)

    def project(self, values: dict[str, str]) -> dict[str, str]:
        """One row's cells under their field names."""
        return {target: values.get(source, "") for source, target in self.columns.items()}


def resolve(header: Sequence[str], explicit: dict[str, str], fields: Fields) -> ColumnMap:
    problems = []
    missing = sorted(source for source in explicit if source not in header)
    if missing:
        problems.append(
            f"mapped column(s) {', '.join(map(repr, missing))} not in the file "
            f"(its columns: {', '.join(header)})"
        )
    columns: dict[str, str] = {}
    ignored: list[str] = []
    for source in header:
        if source in explicit:
            wanted = explicit[source]
            if wanted in ("", IGNORE):
                ignored.append(source)
                continue
            target = fields.target(wanted)
            if target is None:
                problems.append(f"column {source!r}: {wanted!r} is not a field one can import")
                continue
        else:
            target = fields.target(source) if source else None
            if target is None:
                ignored.append(source)
                continue
        if target in columns.values():
            taken = next(s for s, t in columns.items() if t == target)
            problems.append(f"columns {taken!r} and {source!r} both feed {target}")
            continue
        columns[source] = target
    for needed in fields.required:
        if needed not in columns.values():
            problems.append(f"no column gives {needed}: map one with --map 'Column={needed}'")
    if problems:
        raise MappingError("; ".join(problems))
    return ColumnMap(columns, ignored)
