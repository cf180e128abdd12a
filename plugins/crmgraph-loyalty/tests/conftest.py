"""The loyalty plugin's tests run against crmgraph's own fixtures
(``crmgraph.testing``, registered with pytest through its ``pytest11`` entry
point); this file only says which plugin to load."""

from __future__ import annotations

from collections.abc import Sequence

import pytest


@pytest.fixture
def crmgraph_plugins() -> Sequence[str]:
    return ["crmgraph_loyalty.plugin"]
