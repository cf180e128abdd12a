"""Core mutations: one ``input`` each, a payload with ``userErrors``, one
transaction per call. Each is a short adapter (:mod:`.customers`,
:mod:`.records`) over its operation in :mod:`crmgraph.operations`; the
inputs and payloads are in :mod:`.inputs`, what mutations share in
:mod:`.common`. No ``from __future__ import annotations`` in this package:
strawberry reads the annotations of the classes built per catalog.
"""

from crmgraph.input_checks import camel_keys, forbidden_problem
from crmgraph.schema.mutation_runner import user_errors
from crmgraph.schema.mutations.build import build_mutation_type
from crmgraph.schema.mutations.common import (
    ResultRows,
    customer_rows,
    decode,
    fresh_row,
    given,
    guarded_input_problems,
    input_values,
    live,
    node_rows,
    plain,
    run_write,
    written_row,
)

__all__ = [
    "ResultRows",
    "build_mutation_type",
    "camel_keys",
    "customer_rows",
    "decode",
    "forbidden_problem",
    "fresh_row",
    "given",
    "guarded_input_problems",
    "input_values",
    "live",
    "node_rows",
    "plain",
    "run_write",
    "user_errors",
    "written_row",
]
