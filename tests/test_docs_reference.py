"""The generated reference pages of the documentation site (docs/reference/)
match the code and the SDL they are written from: a new field, command,
hook, event or error code that is not in them fails here, with the command
that rewrites them (``python -m scripts.docs_reference``; ``--check`` does
what this test does)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.docs_reference import REGENERATE, ROOT, pages


@pytest.fixture(scope="module")
def written() -> dict[Path, str]:
    return {path: write() for path, write in pages().items()}


def test_every_generated_page_is_current(written: dict[Path, str]) -> None:
    stale = [
        str(path.relative_to(ROOT))
        for path, text in written.items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]
    assert not stale, f"stale: {', '.join(stale)}; run: {REGENERATE}"


def test_the_reference_covers_what_the_code_offers(written: dict[Path, str]) -> None:
    texts = {path.name: text for path, text in written.items()}
    assert "### Query.customers" in texts["schema.md"]
    assert "## crmgraph keys revoke" in texts["cli.md"]
    assert "`customer.stage_changed`" in texts["events.md"]
    assert "`VERSION_CONFLICT`" in texts["errors.md"] and "`RATE_LIMITED`" in texts["errors.md"]
    assert "## crmgraph_customer_types" in texts["hooks.md"]
    assert "`run_mutation`" in texts["public-api.md"]
