"""The compiled read path: a validated query over data columns, relations and
connections becomes one SQL statement that builds the response JSON in the
database, sent as the bytes the database returned.

- :mod:`~crmgraph.compiled.dialect`: how each value and JSON structure is
  written in PostgreSQL and in SQLite, exactly as the resolver path prints it.
- :mod:`~crmgraph.compiled.fields`: which fields can be read from a column,
  and how (the compilable set).
- :mod:`~crmgraph.compiled.plan`: a selection, once per query document, turned
  into a tree of what to read, or refused (the resolver path answers).
- :mod:`~crmgraph.compiled.render`: a plan and one request's arguments turned
  into the SQL statement and its bound values.
- :mod:`~crmgraph.compiled.cache`: the bounded plan cache.
- :mod:`~crmgraph.compiled.extension`: the schema extension that runs a
  compiled statement in place of execution.
"""
