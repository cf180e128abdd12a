"""crmgraph: a plugin-first CRM GraphQL server.

This module is the public plugin API: everything a plugin imports comes from
``crmgraph`` (and, in its tests, ``crmgraph.testing``); every name is
documented in docs/plugins.md, "Public API". Other modules are internal and
may change between releases.

``import crmgraph`` stays cheap and free of import cycles: the names are
loaded on first use (PEP 562), from the modules in ``_PUBLIC``; the
``TYPE_CHECKING`` imports let type checkers and IDEs see them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# How a plugin's test suite turns on crmgraph's fixtures: ``-p crmgraph.testing``
# in pytest's options, or ``pytest_plugins = [crmgraph.TEST_FIXTURES]`` in its
# root conftest.py.
TEST_FIXTURES = "crmgraph.testing"

if TYPE_CHECKING:
    from crmgraph.access import (
        AUDIT_READ,
        CONTACT_READ_PROFILE,
        CUSTOMER_ASSIGN,
        CUSTOMER_DELETE,
        CUSTOMER_IMPORT,
        CUSTOMER_MERGE,
        CUSTOMER_READ_ALL,
        CUSTOMER_WRITE,
        NOTE_MODERATE,
        PRIVACY_ERASE,
        PRIVACY_EXPORT,
        Access,
    )
    from crmgraph.auth import Principal
    from crmgraph.background import PollingLoop
    from crmgraph.customer_types import (
        Attribute,
        CustomerType,
        Guard,
        Lifecycle,
        Phase,
        RelationshipKind,
        Stage,
        Transition,
    )
    from crmgraph.db.engine import Database
    from crmgraph.db.queries import load_json
    from crmgraph.db.writes import live_customer, visible_customer
    from crmgraph.event_types import EventTypeError, emit, record_change
    from crmgraph.extension_points import (
        BackgroundService,
        CoreGraphQLTypes,
        CustomerField,
        CustomerFieldTypes,
        CustomerWrite,
        Event,
        GraphQLContribution,
        Metric,
        Permission,
    )
    from crmgraph.hook_contexts import (
        CustomerSnapshot,
        Direction,
        Facts,
        LinkedParty,
        MergeContext,
        TransitionContext,
    )
    from crmgraph.hookspecs import hookimpl
    from crmgraph.ids import InvalidId, decode_id, encode_id
    from crmgraph.plugin_calls import PluginFailure
    from crmgraph.plugin_errors import PluginError
    from crmgraph.privacy import ERASED
    from crmgraph.privacy.party import plain_rows
    from crmgraph.schema.mutation_runner import caller, may, require, run_mutation
    from crmgraph.schema.pagination import Connection, Edge, PageInfo, keyset_connection
    from crmgraph.schema.user_errors import UserError, UserErrorCode, user_errors
    from crmgraph.settings import Settings
    from crmgraph.startup_work import StartupWork
    from crmgraph.validation import Errors, Problem, UserInputError

# public name -> the module that defines it
_PUBLIC: dict[str, str] = {
    # the plugin contract
    "hookimpl": "crmgraph.hookspecs",
    "CustomerType": "crmgraph.customer_types",
    "Attribute": "crmgraph.customer_types",
    "Lifecycle": "crmgraph.customer_types",
    "Stage": "crmgraph.customer_types",
    "Transition": "crmgraph.customer_types",
    "Phase": "crmgraph.customer_types",
    "Guard": "crmgraph.customer_types",
    "RelationshipKind": "crmgraph.customer_types",
    "GraphQLContribution": "crmgraph.extension_points",
    "CoreGraphQLTypes": "crmgraph.extension_points",
    "CustomerField": "crmgraph.extension_points",
    "CustomerFieldTypes": "crmgraph.extension_points",
    "BackgroundService": "crmgraph.extension_points",
    "PollingLoop": "crmgraph.background",
    "CustomerWrite": "crmgraph.extension_points",
    "Event": "crmgraph.extension_points",
    "Metric": "crmgraph.extension_points",
    "Permission": "crmgraph.extension_points",
    # what hooks receive
    "TransitionContext": "crmgraph.hook_contexts",
    "CustomerSnapshot": "crmgraph.hook_contexts",
    "Facts": "crmgraph.hook_contexts",
    "LinkedParty": "crmgraph.hook_contexts",
    "Direction": "crmgraph.hook_contexts",
    "MergeContext": "crmgraph.hook_contexts",
    "Database": "crmgraph.db.engine",
    "Settings": "crmgraph.settings",
    "StartupWork": "crmgraph.startup_work",
    # global IDs
    "encode_id": "crmgraph.ids",
    "decode_id": "crmgraph.ids",
    "InvalidId": "crmgraph.ids",
    # errors
    "UserInputError": "crmgraph.validation",
    "Problem": "crmgraph.validation",
    "Errors": "crmgraph.validation",
    "UserError": "crmgraph.schema.user_errors",
    "UserErrorCode": "crmgraph.schema.user_errors",
    "user_errors": "crmgraph.schema.user_errors",
    "PluginError": "crmgraph.plugin_errors",
    "PluginFailure": "crmgraph.plugin_calls",
    "EventTypeError": "crmgraph.event_types",
    # the caller, permissions and row scope
    "Access": "crmgraph.access",
    "Principal": "crmgraph.auth",
    "caller": "crmgraph.schema.mutation_runner",
    "may": "crmgraph.schema.mutation_runner",
    "require": "crmgraph.schema.mutation_runner",
    "live_customer": "crmgraph.db.writes",
    "visible_customer": "crmgraph.db.writes",
    "CUSTOMER_READ_ALL": "crmgraph.access",
    "CUSTOMER_WRITE": "crmgraph.access",
    "CUSTOMER_DELETE": "crmgraph.access",
    "CUSTOMER_ASSIGN": "crmgraph.access",
    "CUSTOMER_IMPORT": "crmgraph.access",
    "CUSTOMER_MERGE": "crmgraph.access",
    "AUDIT_READ": "crmgraph.access",
    "CONTACT_READ_PROFILE": "crmgraph.access",
    "NOTE_MODERATE": "crmgraph.access",
    "PRIVACY_EXPORT": "crmgraph.access",
    "PRIVACY_ERASE": "crmgraph.access",
    # writing: mutations, audit and events
    "run_mutation": "crmgraph.schema.mutation_runner",
    "record_change": "crmgraph.event_types",
    "emit": "crmgraph.event_types",
    # reading: lists and stored values
    "Connection": "crmgraph.schema.pagination",
    "Edge": "crmgraph.schema.pagination",
    "PageInfo": "crmgraph.schema.pagination",
    "keyset_connection": "crmgraph.schema.pagination",
    "load_json": "crmgraph.db.queries",
    "plain_rows": "crmgraph.privacy.party",
    "ERASED": "crmgraph.privacy",
}

# every public name (tests/test_public_api.py checks it against _PUBLIC)
__all__ = [
    "AUDIT_READ",
    "CONTACT_READ_PROFILE",
    "CUSTOMER_ASSIGN",
    "CUSTOMER_DELETE",
    "CUSTOMER_IMPORT",
    "CUSTOMER_MERGE",
    "CUSTOMER_READ_ALL",
    "CUSTOMER_WRITE",
    "ERASED",
    "NOTE_MODERATE",
    "PRIVACY_ERASE",
    "PRIVACY_EXPORT",
    "TEST_FIXTURES",
    "Access",
    "Attribute",
    "BackgroundService",
    "Connection",
    "CoreGraphQLTypes",
    "CustomerField",
    "CustomerFieldTypes",
    "CustomerSnapshot",
    "CustomerType",
    "CustomerWrite",
    "Database",
    "Direction",
    "Edge",
    "Errors",
    "Event",
    "EventTypeError",
    "Facts",
    "GraphQLContribution",
    "Guard",
    "InvalidId",
    "Lifecycle",
    "LinkedParty",
    "MergeContext",
    "Metric",
    "PageInfo",
    "Permission",
    "Phase",
    "PluginError",
    "PluginFailure",
    "PollingLoop",
    "Principal",
    "Problem",
    "RelationshipKind",
    "Settings",
    "Stage",
    "StartupWork",
    "Transition",
    "TransitionContext",
    "UserError",
    "UserErrorCode",
    "UserInputError",
    "__version__",
    "caller",
    "decode_id",
    "emit",
    "encode_id",
    "hookimpl",
    "keyset_connection",
    "live_customer",
    "load_json",
    "may",
    "plain_rows",
    "record_change",
    "require",
    "run_mutation",
    "user_errors",
    "visible_customer",
]


def __getattr__(name: str) -> Any:
    module_name = _PUBLIC.get(name)
    if module_name is None:
        raise AttributeError(f"module 'crmgraph' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
