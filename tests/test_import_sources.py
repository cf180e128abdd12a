"""Files an import cannot read as they should be (crmgraph.transfer.source):
a byte its encoding does not read rejects that row alone, named by its own
number (the decoder reads ahead in blocks: its error named a row thousands
of rows earlier and ended the import); a header too wide to hold, or not
text, is refused before any row is read; a header's repeated names are
found however wide it is."""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path

import pytest

from crmgraph.app import AppState, with_state
from crmgraph.testing import settings_for
from crmgraph.transfer.report import ImportSummary
from crmgraph.transfer.source import MAX_COLUMNS, CsvSource, SourceError, text_stream
from tests.test_import_export import count, do_import

GOOD_ROWS = 3_000  # far more than the decoder's block: the bad byte is far from the start


def people_with_a_bad_byte() -> tuple[bytes, int]:
    """The file, and the spreadsheet number of its row holding byte 0xFF."""
    rows = [b"name,email,kind\n"]
    rows += [b"P%d,p%d@example.com,prospect\n" % (n, n) for n in range(GOOD_ROWS)]
    rows.insert(GOOD_ROWS // 2, b"Bad \xff byte,bad@example.com,prospect\n")
    return b"".join(rows), GOOD_ROWS // 2 + 1


def source(data: bytes) -> CsvSource:
    return CsvSource(text_stream(io.BytesIO(data)))


def test_a_byte_the_encoding_does_not_read_rejects_its_row_alone() -> None:
    data, bad = people_with_a_bad_byte()
    rows = list(source(data).rows())
    problems = {row.number: row.problem for row in rows if row.problem}
    assert problems == {bad: "the row is not valid text in this encoding (byte 0xFF)"}
    (row,) = [row for row in rows if row.number == bad]
    assert row.values["name"] == "Bad \ufffd byte"  # printable in a report or a response
    assert len(rows) == GOOD_ROWS + 1


def test_the_import_writes_every_other_row(database_url: str, tmp_path: Path) -> None:
    data, bad = people_with_a_bad_byte()
    rejects = tmp_path / "rejects.csv"

    async def work(state: AppState) -> tuple[ImportSummary, int]:
        summary, _ = await do_import(state, data, rejects)
        return summary, await count(state, "customer")

    summary, customers = asyncio.run(with_state(settings_for(database_url), work))
    assert summary.failure is None
    assert summary.rejected == 1
    assert customers == GOOD_ROWS
    report = list(csv.reader(rejects.open(encoding="utf-8")))
    assert [r[0] for r in report[1:]] == [str(bad)]


def test_a_header_too_wide_is_refused_before_any_row() -> None:
    wide = ",".join(f"c{n}" for n in range(100_000)) + "\n" + "v," * 99_999 + "v\n"
    with pytest.raises(SourceError, match=f"100,000 columns: at most {MAX_COLUMNS:,}"):
        source(wide.encode())


def test_repeated_names_in_a_wide_header_are_found() -> None:
    names = [f"c{n}" for n in range(MAX_COLUMNS - 1)] + ["c7"]
    with pytest.raises(SourceError, match="names a column twice: c7"):
        source((",".join(names) + "\n").encode())


def test_a_header_that_is_not_text_is_refused() -> None:
    with pytest.raises(SourceError, match=r"header is not valid text .*0xFE"):
        source(b"name,\xfe,kind\nAna,a@example.com,prospect\n")
