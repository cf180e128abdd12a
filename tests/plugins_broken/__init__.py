"""Plugins that break crmgraph's plugin contract on purpose, for
tests/test_plugin_check.py: the conformance kit must name each fault."""
