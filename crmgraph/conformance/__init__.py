"""A plugin conformance kit (issue 26): ``crmgraph plugin check [PACKAGE]``
and :func:`check_plugin` for a plugin's own tests.

It loads the plugin alone and beside every built-in, runs the contract every
customer type must keep (create, update, transitions, merge and undo,
personal data export and erasure, CSV round trip, compiled reads equal to
the resolvers, row scope and guarded attributes for an agent) against a
temporary database through the real app, and diffs the GraphQL schema
against a saved one. It drives the whole app, so it sits on the top floor
beside the command line's commands (.importlinter).

In a plugin's tests::

    from crmgraph.testing import assert_conforms

    def test_conforms():
        assert_conforms("my_plugin.plugin")
"""

from __future__ import annotations

from typing import Any

__all__ = ["Check", "Report", "assert_conforms", "check_plugin"]


def __getattr__(name: str) -> Any:
    # imported on first use: the command line imports this package to register
    # ``plugin check`` and must not pay for the whole app on every command
    if name in ("assert_conforms", "check_plugin"):
        from crmgraph.conformance import run

        return getattr(run, name)
    if name in ("Check", "Report"):
        from crmgraph.conformance import report

        return getattr(report, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
