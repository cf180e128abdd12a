"""Import and export at scale: CSV in (customers, contacts, interactions,
needs), CSV or JSON Lines out; a full export imports back.

- :mod:`.source` reads a CSV file (encoding, BOM, delimiter) row by row;
  :mod:`.mapping` says which column feeds which field; :mod:`.coerce` turns
  the text of a cell into the field's type.
- :mod:`.references` gives every exported row a stable ``ref`` and remembers
  the refs an import took in, so the files of one export name the same
  parties and a second import of them creates nothing; :mod:`.refs` finds a
  row's customer and contact by it (or by e-mail, tax id, global ID).
- :mod:`.customers`, :mod:`.contacts`, :mod:`.interactions`, :mod:`.needs` validate a batch
  of rows with the same checks the GraphQL mutations use
  (:mod:`crmgraph.input_checks`, the type's attributes, plugins'
  ``crmgraph_validate_customer``) and write it with one multi-row statement
  per table (:mod:`.bulk`), leaving what a single create leaves: role and
  stage (the exported one), stage history, an audit entry per row, a ``*.created`` /
  ``*.logged`` / ``*.added`` event per row and the customers' match keys.
- :mod:`.duplicates` decides, for a batch of customer rows, which repeat a
  customer already in the database or an earlier row of the file, through
  :mod:`crmgraph.dedupe`.
- :mod:`.importer` runs batches in one transaction for the whole file or one
  per batch, and collects the rejected rows (:mod:`.report`).
- :mod:`.export` streams rows out in keyset-ordered batches.
"""
