"""A progress bar for long imports (``rich``), on standard error and only
when it is a terminal: piped or redirected output stays clean."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

CHUNK = 1 << 20


def count_records(path: Path) -> int:
    """Lines after the header: the rows, or a little more when quoted cells
    span lines (the bar then ends short of full, never past it)."""
    lines = 0
    last = b"\n"
    with path.open("rb") as raw:
        while chunk := raw.read(CHUNK):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    if last != b"\n":
        lines += 1
    return max(lines - 1, 0)


@contextlib.contextmanager
def progress_bar(
    what: str, total: int | None, quiet: bool = False
) -> Iterator[Callable[[int], None] | None]:
    """Yields a callback taking the rows done so far, or None when quiet."""
    console = Console(stderr=True)
    if quiet or not sys.stderr.isatty():
        yield None
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(what, total=total)
        yield lambda done: bar.update(task, completed=done)
