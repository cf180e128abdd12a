"""Markdown pieces the generated pages share: a header, table cells, and
docstrings (reStructuredText-flavoured) turned into Markdown."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Sequence

from scripts.docs_reference import REGENERATE


def header(title: str, source: str, intro: str) -> str:
    return (
        f"# {title}\n\n"
        f"<!-- Generated from {source} by `{REGENERATE}`; do not edit. -->\n\n"
        f"{intro}\n"
    )


def cell(text: str | None) -> str:
    """Text fit for one table cell: one line, pipes escaped."""
    return " ".join((text or "").split()).replace("|", "\\|")


def table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


ROLE = re.compile(r":(?:class|func|meth|data|attr|mod|exc):`~?([^`]+)`")


def inline(text: str) -> str:
    """``code`` -> `code`; :class:`~a.B` -> `B` (the last dotted part after ~)."""
    text = ROLE.sub(lambda m: f"`{m.group(1).rsplit('.', 1)[-1]}`", text)
    return text.replace("``", "`")


def docstring(text: str | None) -> str:
    """A docstring as Markdown: its ``::`` literal blocks fenced as Python."""
    if not text:
        return ""
    lines = textwrap.dedent(_indent_first(text)).strip("\n").splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.rstrip().endswith("::"):
            out.append(inline(line))
            continue
        out.append(inline(line.rstrip()[:-1]))
        block, i = _literal_block(lines, i)
        out += ["", "```python", *block, "```"]
    return "\n".join(out).strip() + "\n"


def _indent_first(text: str) -> str:
    """Docstrings start right after the quotes: give line one the body's indent."""
    first, _, rest = text.partition("\n")
    indents = [len(x) - len(x.lstrip()) for x in rest.splitlines() if x.strip()]
    return " " * min(indents, default=0) + first.strip() + "\n" + rest


def _literal_block(lines: list[str], i: int) -> tuple[list[str], int]:
    """The indented block from ``lines[i]`` on (blank lines inside kept)."""
    block: list[str] = []
    while i < len(lines) and (not lines[i].strip() or lines[i].startswith(" ")):
        block.append(lines[i])
        i += 1
    while block and not block[-1].strip():
        block.pop()
        i -= 1
    return textwrap.dedent("\n".join(block)).strip("\n").splitlines(), i
