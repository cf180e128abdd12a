"""Schema extensions of our own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from strawberry.extensions import SchemaExtension

from crmgraph.db.engine import StatementCounter, current_counter


class SQLStatementCount(SchemaExtension):
    """Counts the SQL statements an operation runs and reports the number in
    ``extensions.sqlStatements`` (on when ``CRMGRAPH_EXPOSE_SQL_COUNT`` is set;
    tests assert on it, and it shows N+1 regressions in GraphiQL)."""

    def on_operation(self) -> Iterator[None]:
        self.counter = StatementCounter()
        token = current_counter.set(self.counter)
        try:
            yield
        finally:
            current_counter.reset(token)

    def get_results(self) -> dict[str, Any]:
        return {"sqlStatements": self.counter.count}
