"""Reading a CSV file row by row.

The text is decoded as UTF-8 by default, a byte-order mark dropped (files
saved by spreadsheets often start with one); another encoding can be named.
The delimiter is given or sniffed from the first lines among ``,;\\t|``.
Rows are numbered as a spreadsheet shows them: the header is row 1, the
first record row 2 (a quoted field spanning lines still counts as one row).
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

SNIFF_BYTES = 64 * 1024
DELIMITERS = ",;\t|"


class SourceError(Exception):
    """The file cannot be read as CSV at all (no header, wrong encoding)."""


@dataclass(frozen=True)
class SourceRow:
    number: int  # the spreadsheet row: header is 1
    values: dict[str, str]  # header -> cell, as read
    problem: str | None = None  # a row of the wrong width


def text_stream(raw: IO[bytes], encoding: str = "utf-8") -> IO[str]:
    """A text view of ``raw`` that drops a UTF-8 byte-order mark."""
    if codecs.lookup(encoding).name == "utf-8":
        encoding = "utf-8-sig"
    return io.TextIOWrapper(raw, encoding=encoding, newline="")


def sniff_delimiter(sample: str) -> str:
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","  # one column, or nothing to tell: the standard


class CsvSource:
    """The header and rows of one CSV file, read lazily."""

    def __init__(self, stream: IO[str], delimiter: str | None = None) -> None:
        try:
            # to the end of a line, so the sample and the rest join between lines
            sample = stream.read(SNIFF_BYTES)
            sample += stream.readline()
        except UnicodeDecodeError as exc:
            raise SourceError(f"the file is not valid text in this encoding: {exc}") from exc
        self.delimiter = delimiter or sniff_delimiter(sample)
        self._reader = csv.reader(_Chained(sample, stream), delimiter=self.delimiter, strict=False)
        try:
            header = next(self._reader)
        except StopIteration:
            raise SourceError("the file is empty: it needs a header row") from None
        self.header = [name.strip() for name in header]
        if not any(self.header):
            raise SourceError("the header row is empty")
        duplicated = sorted({h for h in self.header if h and self.header.count(h) > 1})
        if duplicated:
            raise SourceError(f"the header names a column twice: {', '.join(duplicated)}")

    def rows(self) -> Iterator[SourceRow]:
        width = len(self.header)
        number = 1
        try:
            for cells in self._reader:
                number += 1
                if not cells or (len(cells) == 1 and not cells[0].strip() and width > 1):
                    continue  # a blank line is no record
                problem = None
                if len(cells) != width:
                    problem = f"the row has {len(cells)} fields, the header {width}"
                yield SourceRow(number, dict(zip(self.header, cells, strict=False)), problem)
        except UnicodeDecodeError as exc:
            raise SourceError(
                f"row {number + 1} is not valid text in this encoding: {exc}"
            ) from exc
        except csv.Error as exc:
            raise SourceError(f"row {number + 1} is not valid CSV: {exc}") from exc


class _Chained:
    """The sniffed sample, then the rest of the stream, as lines for csv."""

    def __init__(self, sample: str, rest: IO[str]) -> None:
        self._head = io.StringIO(sample)
        self._rest = rest

    def __iter__(self) -> Iterator[str]:
        yield from self._head
        yield from self._rest
