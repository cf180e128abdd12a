"""The loyalty plugin's tests run against crmgraph's own fixtures
(``crmgraph.testing``, loaded by ``-p crmgraph.testing`` in pyproject.toml's
pytest options); this file only says which plugin to load."""

from __future__ import annotations

from collections.abc import Sequence

import pytest


@pytest.fixture
def crmgraph_plugins() -> Sequence[str]:
    return ["crmgraph_loyalty.plugin"]
