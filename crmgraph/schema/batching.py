"""How the per-request DataLoaders share out what one statement read: rows
grouped per key, and pages loaded together for every key that asks with the
same arguments."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any

Rows = list[dict[str, Any]]


def group(rows: Rows, column: str, keys: Sequence[Any]) -> list[Rows]:
    """The rows whose ``column`` is each key, in the keys' order."""
    grouped: dict[Any, Rows] = defaultdict(list)
    for row in rows:
        grouped[row[column]].append(row)
    return [grouped.get(key, []) for key in keys]


def owner_and_arguments(key: Any) -> tuple[int, tuple[Any, ...]]:
    """A page key's owner (its first field) and the arguments of its page
    (the rest, in order): a page key is a frozen dataclass laid out so."""
    owner, *arguments = (getattr(key, f.name) for f in dataclasses.fields(key))
    return owner, tuple(arguments)


async def pages_by_arguments(
    keys: Sequence[Hashable],
    load: Callable[[tuple[Any, ...], list[int]], Awaitable[Rows]],
    column: str,
) -> list[Rows]:
    """Each key's page of rows (keys: :func:`owner_and_arguments`). Keys
    sharing arguments (the usual case: one selection over a page of owners)
    load together, in one ``load(arguments, owner ids)`` call; a page is the
    rows whose ``column`` is the key's owner."""
    split = [owner_and_arguments(key) for key in keys]
    groups: dict[tuple[Any, ...], set[int]] = defaultdict(set)
    for owner, args in split:
        groups[args].add(owner)
    found: dict[tuple[int, tuple[Any, ...]], Rows] = {}
    for args, members in groups.items():
        ids = sorted(members)
        rows = await load(args, ids)
        for pk, page in zip(ids, group(rows, column, ids), strict=True):
            found[(pk, args)] = page
    return [found[pair] for pair in split]
