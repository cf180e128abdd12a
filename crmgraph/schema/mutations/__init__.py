"""Core mutations: one ``input`` each, a payload with ``userErrors``, one
transaction per call. Each is a short adapter (:mod:`.customers`,
:mod:`.records`) over its operation in :mod:`crmgraph.operations`, put
together by :func:`.build.build_mutation_type`; the inputs and payloads are
in :mod:`.inputs`. The package itself exports what every mutation shares
(:mod:`.common`), and only that: the features' mutations import it, and
through the core types they build on it must lead back to none of them. No
``from __future__ import annotations`` in this package: strawberry reads the
annotations of the classes built per catalog.
"""

from crmgraph.input_checks import camel_keys, forbidden_problem
from crmgraph.schema.mutation_runner import user_errors
from crmgraph.schema.mutations.common import (
    ResultRows,
    WrittenNode,
    customer_rows,
    decode,
    fresh_row,
    given,
    guarded_input_problems,
    input_values,
    live,
    node_payload,
    node_rows,
    plain,
    run_write,
    written_row,
)

__all__ = [
    "ResultRows",
    "WrittenNode",
    "camel_keys",
    "customer_rows",
    "decode",
    "forbidden_problem",
    "fresh_row",
    "given",
    "guarded_input_problems",
    "input_values",
    "live",
    "node_payload",
    "node_rows",
    "plain",
    "run_write",
    "user_errors",
    "written_row",
]
