"""The generated reference pages of the documentation site (docs/reference/).

Each page is written from the code or the SDL it describes, so it cannot drift
from them: ``python -m scripts.docs_reference`` rewrites them, ``--check``
exits 1 naming the stale ones (tests/test_docs_reference.py runs the check).
Plain Python over graphql-core, argparse, ``ast`` and ``inspect`` rather than
a MkDocs plugin (mkdocstrings, mkdocs-gen-files): the pages are committed
files a reader can open on GitHub, and the test needs no MkDocs build.

The settings reference is not here: ``python -m crmgraph.settings_doc``
already embeds it in docs/configuration.md.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
DOCS = ROOT / "docs"
REGENERATE = "python -m scripts.docs_reference"


def pages() -> dict[Path, Callable[[], str]]:
    """Each generated page and the function that writes its text."""
    from scripts.docs_reference import cli_page, code_pages, plugin_pages, schema_page

    ref = DOCS / "reference"
    return {
        ref / "schema.md": schema_page.page,
        ref / "cli.md": cli_page.page,
        ref / "events.md": code_pages.events_page,
        ref / "errors.md": code_pages.errors_page,
        ref / "hooks.md": plugin_pages.hooks_page,
        ref / "public-api.md": plugin_pages.public_api_page,
    }


def stale() -> list[Path]:
    """The generated pages whose file differs from what the code says now."""
    return [
        path
        for path, write in pages().items()
        if not path.exists() or path.read_text(encoding="utf-8") != write()
    ]
