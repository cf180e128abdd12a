"""The generated reference pages of the documentation site (docs/reference/)
match the code and the SDL they are written from: a new field, command,
hook, event or error code that is not in them fails here, with the command
that rewrites them."""

from __future__ import annotations

import subprocess
import sys

from scripts.docs_reference import REGENERATE, ROOT, pages, stale


def test_every_generated_page_is_current() -> None:
    old = [str(path.relative_to(ROOT)) for path in stale()]
    assert not old, f"stale: {', '.join(old)}; run: {REGENERATE}"


def test_the_reference_covers_what_the_code_offers() -> None:
    texts = {path.name: write() for path, write in pages().items()}
    assert "### Query.customers" in texts["schema.md"]
    assert "## crmgraph keys revoke" in texts["cli.md"]
    assert "`customer.stage_changed`" in texts["events.md"]
    assert "`VERSION_CONFLICT`" in texts["errors.md"] and "`RATE_LIMITED`" in texts["errors.md"]
    assert "## crmgraph_customer_types" in texts["hooks.md"]
    assert "`run_mutation`" in texts["public-api.md"]


def test_the_check_mode_passes_on_the_committed_pages() -> None:
    """``python -m scripts.docs_reference --check``, as a person runs it."""
    done = subprocess.run(
        [sys.executable, "-m", "scripts.docs_reference", "--check"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
