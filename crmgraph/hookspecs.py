"""Every extension point of crmgraph, one documented hookspec each.

Plugins implement these with ``@crmgraph.hookimpl`` (Datasette's
``hookspecs.py`` is the model). Built-in customer types under
``crmgraph/plugins/`` use exactly the same hooks as a partner's package.
``docs/plugins.md`` has a section and a worked example for each; a test fails
if a hookspec is missing there.

Start-up hooks (types, channels, relationship kinds, GraphQL, customer fields,
piccolo apps, permissions, metrics, background services, start-up work) are
called once when the app is built or starts and fail start-up loudly, naming
the plugin. Run-time hooks (validation, transitions, events)
are called one implementation at a time: a plugin that raises yields a clean
GraphQL error naming it (``extensions.code = PLUGIN_ERROR``), the mutation's
transaction rolls back, and the server keeps serving. Any hook may be a plain
or an ``async`` function.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import datetime
    import random

    from crmgraph.customer_types import CustomerType, RelationshipKind
    from crmgraph.db.engine import Database
    from crmgraph.extension_points import (
        BackgroundService,
        CoreGraphQLTypes,
        CustomerField,
        CustomerFieldTypes,
        CustomerWrite,
        GraphQLContribution,
        Metric,
        Permission,
    )
    from crmgraph.hook_contexts import MergeContext, TransitionContext
    from crmgraph.settings import Settings
    from crmgraph.startup_work import StartupWork

hookspec = pluggy.HookspecMarker("crmgraph")
hookimpl = pluggy.HookimplMarker("crmgraph")


@hookspec
def crmgraph_customer_types() -> list[CustomerType]:
    """Return the customer types this plugin adds.

    Each :class:`~crmgraph.customer_types.CustomerType` becomes a concrete
    GraphQL type implementing ``Customer`` (one typed field per attribute), a
    ``CustomerKind`` value, a typed ``<Type>AttributesInput`` on
    ``createCustomer``/``updateCustomer``, and a lifecycle the engine enforces.
    Start-up fails, naming the plugin, on a taken key or GraphQL name, a
    transition naming an unknown stage, or an attribute clashing with a core field.

    Example::

        @hookimpl
        def crmgraph_customer_types():
            return [CustomerType(key="distributor", graphql_name="Distributor",
                                 description="Resells our products.", lifecycle=...)]
    """


@hookspec
def crmgraph_validate_customer(write: CustomerWrite) -> list[Any] | None:
    """Check a customer about to be created or updated; return problems.

    Called inside the write's transaction for every create and update, after
    field validation. Return strings (reported on the attribute input of the
    customer's kind) or ``(field, message)`` pairs; all problems of all plugins
    are collected into ``userErrors`` and nothing is written. A party's further
    role (``addRole``, ``updateRole``) comes with ``write.kind`` the role's kind
    and ``write.primary_kind`` the party's.

    Example::

        @hookimpl
        def crmgraph_validate_customer(write):
            if write.kind == "supplier" and write.attributes.get("rating", 0) > 5:
                return [("supplier.rating", "rating is 1 to 5")]
    """


@hookspec
def crmgraph_validate_transition(ctx: TransitionContext) -> list[str] | None:
    """Refuse a lifecycle move with reasons (a rule that spans plugins).

    Called for every ``transitionCustomer`` and for each option listed by
    ``Customer.allowedTransitions``, after the type's own guards. Return the
    reasons the move may not happen (empty or ``None`` lets it pass). Every
    reason of every plugin is reported together. ``ctx.facts`` answers
    questions about the customer (interactions, purchases, relationships).

    Example::

        @hookimpl
        async def crmgraph_validate_transition(ctx):
            if ctx.to_stage == "loyal" and await points(ctx.db, ctx.customer.pk) < 100:
                return ["needs 100 loyalty points to become loyal"]
    """


@hookspec
def crmgraph_after_transition(ctx: TransitionContext) -> None:
    """Side effects of a lifecycle move that must commit or roll back with it.

    Called inside the transition's transaction after the stage, the
    ``stage_change`` row and the outbox event are written. Use ``ctx.db`` to
    write; raising rolls the whole move back. ``await ctx.emit(type, payload)``
    records an event of the plugin's own about the customer in the same
    transaction (see ``crmgraph.events.emit`` for the naming rules). Work that
    talks to the outside world belongs in an event handler instead.

    Example::

        @hookimpl
        async def crmgraph_after_transition(ctx):
            if ctx.to_stage == "active":
                await ctx.db.fetch("INSERT INTO loyalty_account (customer, points) VALUES ({}, 0)",
                                   ctx.customer.pk)
    """


@hookspec
def crmgraph_graphql(types: CoreGraphQLTypes) -> GraphQLContribution | None:
    """Add GraphQL queries, mutations, subscriptions and types.

    Called while the schema is assembled, with the core types built so far
    (``types.customer_interface`` to return customers, ``types.customer(row)``
    to build one from a row). Return a
    :class:`~crmgraph.extension_points.GraphQLContribution` whose ``query``,
    ``mutation`` and ``subscription`` are strawberry types whose fields are
    merged into the roots. A field name already taken fails start-up, naming
    both plugins.

    Example::

        @strawberry.type
        class LoyaltyQuery:
            @strawberry.field
            async def loyalty_points(self, info, customer_id: strawberry.ID) -> int: ...

        @hookimpl
        def crmgraph_graphql(types):
            return GraphQLContribution(query=[LoyaltyQuery])
    """


@hookspec
def crmgraph_customer_fields(types: CustomerFieldTypes) -> list[CustomerField] | None:
    """Add fields to the ``Customer`` interface, and so to every customer type.

    Called while the schema is assembled, before the customer types are built
    (they inherit the interface), with the core types built so far
    (``types.interaction_cls``, ``types.channel_enum``, ``types.kind_enum``).
    Return :class:`~crmgraph.extension_points.CustomerField` values; each
    resolver receives the customer as its root (``root.pk`` is its key) and
    must keep to what the caller may see. A name already taken (by the core,
    another plugin or a customer type's attribute) fails start-up, naming the
    plugin. Disabling the plugin removes the fields.

    Example::

        async def loyalty_points(root, info) -> int:
            return await points(info.context.db, root.pk)

        @hookimpl
        def crmgraph_customer_fields(types):
            return [CustomerField("loyalty_points", strawberry.field(
                resolver=loyalty_points, description="Points the customer holds."))]
    """


@hookspec
def crmgraph_startup(db: Database, catalog: Any, startup_work: StartupWork) -> None:
    """Work to do once when a server starts, before it serves a request.

    Called after migrations with the database pool open (``db``) and the
    app's ``Catalog``; an ``async`` implementation is awaited. Raising stops
    the server from starting, naming the plugin. Keep it quick and idempotent:
    every server process runs it (several may at once).

    Work that grows with the data goes to ``startup_work``
    (:class:`crmgraph.startup_work.StartupWork`): ``startup_work.start(name,
    coroutine)`` runs it beside the first requests, names it in ``GET
    /readyz`` until it is done and cancels it when the server stops. What
    reads its result meanwhile must wait for it (a lock the work holds).

    Example::

        @hookimpl
        async def crmgraph_startup(db, catalog, startup_work):
            await db.fetch("DELETE FROM loyalty_cache")
            startup_work.start("loyalty tiers", recompute_tiers(db))
    """


@hookspec
def crmgraph_background_services(db: Database, settings: Settings) -> list[BackgroundService]:
    """Return the background work this plugin runs while a server serves.

    Called once when the app is built. Each
    :class:`~crmgraph.extension_points.BackgroundService` is started after
    ``crmgraph_startup`` and stopped (last started, first stopped) when the
    server stops;
    ``wake()`` is called after each committed write that left outbox events
    (``crmgraph.PollingLoop`` is a ready base: implement
    ``run_pass``). The command line's one-off commands run no services.

    Example::

        class Reminders(PollingLoop):
            def __init__(self, db):
                super().__init__(poll_seconds=60, logger=logging.getLogger(__name__))
                self.db = db

            async def run_pass(self):
                await send_due_reminders(self.db)
                return 60  # seconds until the next pass

        @hookimpl
        def crmgraph_background_services(db, settings):
            return [Reminders(db)]
    """


@hookspec
def crmgraph_piccolo_apps() -> list[str]:
    """Return the dotted paths of this plugin's piccolo app modules.

    Each module defines ``APP_CONFIG`` (a piccolo ``AppConfig``) with the
    plugin's own tables and migrations; ``crmgraph migrate`` runs them after
    the core app, and their tables are bound to the server's database.

    Example::

        @hookimpl
        def crmgraph_piccolo_apps():
            return ["crmgraph_loyalty.piccolo_app"]
    """


@hookspec
def crmgraph_interaction_channels() -> list[str]:
    """Return extra interaction channels (UPPER_CASE) for the
    ``InteractionChannel`` enum.

    Example::

        @hookimpl
        def crmgraph_interaction_channels():
            return ["WHATSAPP"]
    """


@hookspec
def crmgraph_relationship_kinds() -> list[RelationshipKind]:
    """Return the kinds of party-to-party relationship this plugin declares.

    ``linkCustomers`` accepts only declared kinds, between the customer types
    the kind allows.

    Example::

        @hookimpl
        def crmgraph_relationship_kinds():
            return [RelationshipKind("guarantees", "Guarantees", from_kinds=("guarantor",),
                                     to_kinds=("client",))]
    """


@hookspec
def crmgraph_event_handlers() -> dict[str, Any]:
    """Return handlers for outbox events, keyed by event type (``"*"`` for all).

    Every mutation writes its events (``customer.created``, ``customer.updated``,
    ``customer.stage_changed``, …, and plugins' own, written with
    ``crmgraph.events.emit``) in its own transaction; handlers run after the
    commit, outside the write transaction, in order per customer, at least
    once, and a failing handler never undoes the write (it is retried). Each handler receives one
    :class:`~crmgraph.extension_points.Event`.

    Example::

        @hookimpl
        def crmgraph_event_handlers():
            return {"customer.stage_changed": notify_sales_channel}
    """


@hookspec
def crmgraph_analytics_metrics() -> list[Metric]:
    """Return analytics metrics this plugin contributes (computed in SQL).

    Each statement returns one row with a column ``value``. It runs in the
    caller's analytics scope and may read ``analytics_customer`` (the customers
    the filter selects and the caller may see) and ``analytics_period`` (one row:
    ``starts_at``, ``ends_at``); served as ``analytics { metrics }``.

    Example::

        @hookimpl
        def crmgraph_analytics_metrics():
            return [Metric("loyalty_points_total", "Points held by the customers in scope",
                           sql="SELECT COALESCE(SUM(a.points), 0) AS value "
                               "FROM loyalty_account a "
                               "JOIN analytics_customer c ON c.id = a.customer_id")]
    """


@hookspec
def crmgraph_permissions() -> list[Permission]:
    """Declare permissions this plugin uses, with the roles granted them by default
    (``admin`` holds every permission) and the GraphQL fields they guard.

    A guarded field (``Permission.fields`` coordinates, or an attribute with
    ``permission=...``) is readable and writable only by holders: a query
    asking for it otherwise is refused before it runs. Plugin resolvers check
    ``info.context.access.can(key)`` and ``info.context.access.sees(row)``.

    Example::

        @hookimpl
        def crmgraph_permissions():
            return [Permission("contact.read_profile", "Personal profiles",
                               roles=("manager",), fields=("Contact.birthday",))]
    """


@hookspec
def crmgraph_merge_customers(ctx: MergeContext) -> list[str] | None:
    """Take part in merging two customers, and in undoing a merge.

    Called inside the merge's transaction (``ctx.phase == "merge"``) after the
    core has checked the request and before it moves the merged customer's
    rows, and again inside the undo's (``ctx.phase == "undo"``). Return reasons
    to refuse (every plugin's are reported together as ``MERGE_VETOED``, naming
    the plugin, and nothing is written); otherwise move your own rows keyed by
    customer from ``ctx.merged.pk`` to ``ctx.survivor.pk`` with ``ctx.db`` (and
    back on undo). ``ctx.saved`` is a JSON-able dict kept with the merge and
    handed back to the undo call; ``ctx.moved`` counts what you moved. Raising
    rolls the whole merge back with a ``PLUGIN_ERROR`` naming the plugin.

    Example::

        @hookimpl
        async def crmgraph_merge_customers(ctx):
            if ctx.is_undo:
                await ctx.db.fetch("UPDATE wallet SET customer_id = {} WHERE id = {}",
                                   ctx.merged.pk, ctx.saved["wallet"])
            elif rows := await ctx.db.fetch("UPDATE wallet SET customer_id = {} "
                                            "WHERE customer_id = {} RETURNING id",
                                            ctx.survivor.pk, ctx.merged.pk):
                ctx.saved["wallet"] = rows[0]["id"]
                ctx.moved["wallets"] = 1
    """


@hookspec
def crmgraph_personal_data_export(
    db: Database, customer_pk: int, customer_pks: tuple[int, ...]
) -> Any:
    """Return this plugin's part of a person's data export (the right of access).

    Called by ``personalDataExport`` and ``crmgraph privacy export`` inside one
    read transaction. ``customer_pk`` is the customer asked about;
    ``customer_pks`` is it and every customer merged into it (the same party):
    look your rows up by all of them. Return a JSON-able value (a dict or a
    list; dates as ISO strings), shown under ``plugins.<your plugin>`` in the
    document, or ``None`` when you hold nothing about the party. Include every
    row of yours about the person; raising fails the export with a
    ``PLUGIN_ERROR`` naming the plugin.

    Example::

        @hookimpl
        async def crmgraph_personal_data_export(db, customer_pks):
            rows = await db.fetch("SELECT points, tier FROM loyalty_account "
                                  f"WHERE customer_id IN ({', '.join('{}' for _ in customer_pks)})",
                                  *customer_pks)
            return {"accounts": rows} if rows else None
    """


@hookspec
def crmgraph_erase_personal_data(
    db: Database, customer_pk: int, customer_pks: tuple[int, ...], reason: str
) -> dict[str, int] | None:
    """Erase what this plugin holds about a person (the right to erasure).

    Called inside the erasure's transaction (``erasePersonalData``, ``crmgraph
    privacy erase``), before the core anonymises its own tables, so the
    party's values are still there to find your rows by. Anonymise every
    personal value in your tables for ``customer_pks`` (the customer and those
    merged into it) with ``db``; keep the non-personal facts your metrics
    count (points, amounts, dates) so totals do not change. Return counts of
    what you anonymised (``{"accounts": 1}``), recorded with the erasure as
    ``<plugin>.<what>``. Raising aborts the whole erasure: the caller gets a
    ``PLUGIN_ERROR`` user error naming the plugin and nothing is erased.

    Example::

        @hookimpl
        async def crmgraph_erase_personal_data(db, customer_pks):
            rows = await db.fetch("UPDATE wallet SET holder_name = NULL "
                                  f"WHERE customer_id IN ({', '.join('{}' for _ in customer_pks)}) "
                                  "RETURNING id", *customer_pks)
            return {"wallets": len(rows)}
    """


@hookspec
def crmgraph_seed_demo(
    db: Database, customer_pks: list[int], rng: random.Random, now: datetime.datetime
) -> None:
    """Add this plugin's rows to the demo data set (``crmgraph demo``,
    ``serve --demo``), so a demo database shows your feature too.

    Called once, inside the seed's transaction, after the core rows exist
    (users; customers with their roles and stage histories; contacts,
    interactions, needs, relationships, notes and tasks). ``customer_pks`` are
    the demo customers' ids in the order they were planned; read what else you
    need (their kind, owner, ``created_at``) with ``db``. Draw every random
    choice from ``rng``, a ``random.Random`` seeded from the demo's seed and
    your plugin's stable name, and date rows no later than ``now``: the same
    seed then gives the same rows, whatever other plugins draw. Raising aborts
    the seed with an error naming the plugin; nothing is written.

    Example::

        @hookimpl
        async def crmgraph_seed_demo(db, customer_pks, rng, now):
            for pk in rng.sample(customer_pks, len(customer_pks) // 4):
                await db.fetch("INSERT INTO loyalty_account (customer_id, points) "
                               "VALUES ({}, {})", pk, rng.randint(0, 5000))
    """
