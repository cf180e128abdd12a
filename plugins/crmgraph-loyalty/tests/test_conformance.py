"""The loyalty plugin keeps crmgraph's plugin contract (``crmgraph plugin
check``): loads alone and with the built-ins, and the distributor type passes
the contract suite against a temporary SQLite database."""

from __future__ import annotations

from crmgraph.testing import assert_conforms


def test_the_plugin_keeps_the_contract() -> None:
    assert_conforms("crmgraph_loyalty.plugin")
