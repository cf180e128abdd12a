"""Operations: each write's rules as a plain function of the database, the
catalog, the plugin manager, the :class:`~crmgraph.operations.actor.Actor` it
runs for and a plain input (decoded primary keys, no GraphQL objects). It
applies the rules in one transaction (:mod:`.runner`) and returns what it
wrote, or raises :class:`~crmgraph.validation.UserInputError`. The GraphQL
mutations (:mod:`crmgraph.schema.mutations`) are short adapters over them;
:mod:`.new_customers` writes what a new customer leaves in the database.
"""
