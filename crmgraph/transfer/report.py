"""What an import did: counts, and every rejected row with every reason.

Rejected rows go to a CSV file as they are found: the row's number in the
file (the header is row 1), its original cells under the original header,
and a ``reasons`` column listing each problem as ``field: message [CODE]``,
separated by `` | ``. The summary gives the counts and the rate.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from crmgraph.validation import Problem

REASON_SEPARATOR = " | "


@dataclass(frozen=True)
class Rejection:
    row: int
    values: dict[str, str]
    problems: tuple[Problem, ...]

    def reasons(self) -> str:
        return REASON_SEPARATOR.join(
            f"{p.field}: {p.message} [{p.code}]" if p.field else f"{p.message} [{p.code}]"
            for p in self.problems
        )


class Rejections:
    """Collects rejections: all of them into a CSV file when given one, and
    the first ``keep`` in memory (for the GraphQL payload and tests)."""

    def __init__(self, header: Sequence[str], path: Path | None = None, keep: int = 100) -> None:
        self.header = list(header)
        self.path = path
        self.keep = keep
        self.first: list[Rejection] = []
        self.count = 0
        self._file: IO[str] | None = None
        self._writer: csv.writer | None = None  # type: ignore[valid-type]

    def add(self, rejection: Rejection) -> None:
        self.count += 1
        if len(self.first) < self.keep:
            self.first.append(rejection)
        if self.path is None:
            return
        if self._writer is None:
            self._file = self.path.open("w", encoding="utf-8", newline="")
            self._writer = csv.writer(self._file)
            self._writer.writerow(["row", *self.header, "reasons"])
        cells = (rejection.values.get(h, "") for h in self.header)
        self._writer.writerow([rejection.row, *cells, rejection.reasons()])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


@dataclass
class ImportSummary:
    entity: str
    commit: str
    read: int = 0
    created: int = 0
    merged: int = 0
    skipped_duplicates: int = 0
    roles_added: int = 0  # further roles added to existing parties (add_roles)
    rejected: int = 0
    seconds: float = 0.0
    ignored_columns: list[str] = field(default_factory=list)
    # the last row of the last committed batch: a re-run resumes after it
    committed_through: int | None = None
    failure: str | None = None

    @property
    def rows_per_second(self) -> float:
        return self.read / self.seconds if self.seconds > 0 else 0.0

    @property
    def written(self) -> int:
        return self.created + self.merged + self.roles_added

    def lines(self) -> list[str]:
        lines = [
            f"{self.entity}: read {self.read}, created {self.created}, merged {self.merged}, "
            f"skipped as duplicate {self.skipped_duplicates}, rejected {self.rejected} "
            f"in {self.seconds:.1f} s ({self.rows_per_second:,.0f} rows/s)"
        ]
        if self.roles_added:
            lines.append(f"roles added to existing parties: {self.roles_added}")
        if self.ignored_columns:
            lines.append(f"ignored columns: {', '.join(self.ignored_columns)}")
        if self.failure:
            lines.append(f"failed: {self.failure}")
            if self.commit == "all":
                lines.append("nothing was written (--commit all)")
            elif self.committed_through is not None:
                lines.append(
                    f"rows up to {self.committed_through} are committed; "
                    f"re-run with --resume-after {self.committed_through} to go on"
                )
            else:
                lines.append("no batch was committed")
        return lines
