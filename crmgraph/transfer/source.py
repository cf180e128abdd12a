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
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

SNIFF_BYTES = 64 * 1024
DELIMITERS = ",;\t|"
# every row is held as a dict of its cells, a batch of them at a time: a file
# of 100,000 columns would hold 10^8 cells per batch of 1,000 rows
MAX_COLUMNS = 1_000


class SourceError(Exception):
    """The file cannot be read as CSV at all (no header, wrong encoding)."""


@dataclass(frozen=True)
class SourceRow:
    number: int  # the spreadsheet row: header is 1
    values: dict[str, str]  # header -> cell, as read
    problem: str | None = None  # a row of the wrong width


def text_stream(raw: IO[bytes], encoding: str = "utf-8") -> IO[str]:
    """A text view of ``raw`` that drops a UTF-8 byte-order mark. Bytes the
    encoding cannot read are kept as lone surrogates (``surrogateescape``)
    and found per row (:meth:`CsvSource.rows`): the decoder reads ahead in
    blocks, so its own error named a row thousands of rows before the bad one."""
    if codecs.lookup(encoding).name == "utf-8":
        encoding = "utf-8-sig"
    return io.TextIOWrapper(raw, encoding=encoding, newline="", errors="surrogateescape")


UNDECODABLE = re.compile("[\udc80-\udcff]")  # a byte surrogateescape kept


def undecodable(cells: list[str]) -> str | None:
    """The first byte of ``cells`` the encoding could not read, as ``0xFF``."""
    found = UNDECODABLE.search("".join(cells))
    return None if found is None else f"0x{ord(found.group()) - 0xDC00:02X}"


def readable(cells: list[str]) -> list[str]:
    """The cells with each unreadable byte as U+FFFD (what reports can print)."""
    return [c.encode("utf-8", "surrogateescape").decode("utf-8", "replace") for c in cells]


def sniff_delimiter(sample: str) -> str:
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","  # one column, or nothing to tell: the standard


class CsvSource:
    """The header and rows of one CSV file, read lazily. A file that cannot
    be read as CSV at all raises :class:`SourceError`; a row that cannot (the
    wrong width, bytes its encoding does not read) comes with its problem."""

    def __init__(self, stream: IO[str], delimiter: str | None = None) -> None:
        # to the end of a line, so the sample and the rest join between lines
        sample = stream.read(SNIFF_BYTES)
        sample += stream.readline()
        self.delimiter = delimiter or sniff_delimiter(sample)
        self._reader = csv.reader(_Chained(sample, stream), delimiter=self.delimiter, strict=False)
        try:
            header = next(self._reader)
        except StopIteration:
            raise SourceError("the file is empty: it needs a header row") from None
        bad_byte = undecodable(header)
        if bad_byte is not None:
            raise SourceError(f"the header is not valid text in this encoding (byte {bad_byte})")
        if len(header) > MAX_COLUMNS:
            raise SourceError(f"the header has {len(header):,} columns: at most {MAX_COLUMNS:,}")
        self.header = [name.strip() for name in header]
        if not any(self.header):
            raise SourceError("the header row is empty")
        # counted once: a header of 100,000 names, each counted along the row,
        # took minutes of CPU before a row was read
        duplicated = sorted(h for h, n in Counter(self.header).items() if h and n > 1)
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
                bad_byte = undecodable(cells)
                if bad_byte is not None:
                    problem = f"the row is not valid text in this encoding (byte {bad_byte})"
                    cells = readable(cells)
                yield SourceRow(number, dict(zip(self.header, cells, strict=False)), problem)
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
