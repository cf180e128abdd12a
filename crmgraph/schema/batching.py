"""How the per-request DataLoaders share out what one statement read: rows
grouped per key, and pages loaded together for every key that asks with the
same arguments."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, TypeVar

Rows = list[dict[str, Any]]
K = TypeVar("K")


def group(rows: Rows, column: str, keys: Sequence[Any]) -> list[Rows]:
    """The rows whose ``column`` is each key, in the keys' order."""
    grouped: dict[Any, Rows] = defaultdict(list)
    for row in rows:
        grouped[row[column]].append(row)
    return [grouped.get(key, []) for key in keys]


async def pages_by_arguments(
    keys: Sequence[K],
    owner: Callable[[K], int],
    arguments: Callable[[K], Hashable],
    load: Callable[[Any, list[int]], Awaitable[Rows]],
    column: str,
) -> list[Rows]:
    """Each key's page of rows. Keys sharing ``arguments`` (the usual case:
    one selection over a page of owners) load together, in one
    ``load(arguments, owner ids)`` call; a page is the rows whose ``column``
    is the key's ``owner``."""
    groups: dict[Hashable, set[int]] = defaultdict(set)
    for key in keys:
        groups[arguments(key)].add(owner(key))
    found: dict[tuple[Hashable, int], Rows] = {}
    for args, members in groups.items():
        ids = sorted(members)
        rows = await load(args, ids)
        for pk, page in zip(ids, group(rows, column, ids), strict=True):
            found[(args, pk)] = page
    return [found[(arguments(key), owner(key))] for key in keys]
