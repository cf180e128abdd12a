"""Authorization: what a caller's role lets them do, which fields they may
read and which customers they may see.

Permissions are declared by plugins through ``crmgraph_permissions`` (the
core's own by the built-in ``crmgraph.plugins.core_access``), each with the
roles granted it; ``admin`` holds every permission. A permission may guard
fields, named by GraphQL coordinate (``Contact.birthday``); a customer type's
attribute declared with ``permission=`` guards its field the same way.

Row scope: a caller without ``customer.read_all`` sees only the customers they
own or that are assigned to one of their teams, on every path (lists, ``node``,
nested fields, mutations); anything hanging off a customer they cannot see is
as absent as a record that does not exist.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import GraphQLError

from crmgraph.auth import ROLES, Principal
from crmgraph.db.queries import CustomerScope
from crmgraph.registry import Catalog, PluginError
from crmgraph.validation import camel

ADMIN = "admin"

# The core's permissions (declared by crmgraph.plugins.core_access).
CUSTOMER_READ_ALL = "customer.read_all"
CUSTOMER_WRITE = "customer.write"
CUSTOMER_DELETE = "customer.delete"
CUSTOMER_ASSIGN = "customer.assign"
CUSTOMER_MERGE = "customer.merge"
AUDIT_READ = "audit.read"
CONTACT_READ_PROFILE = "contact.read_profile"
NOTE_MODERATE = "note.moderate"
PRIVACY_EXPORT = "privacy.export"
PRIVACY_ERASE = "privacy.erase"
# declared by the built-in imports plugin (crmgraph.plugins.imports); checked by
# its mutations (crmgraph.schema.imports) and by the app before it reads an upload
CUSTOMER_IMPORT = "customer.import"


def forbidden(permission: str, doing: str) -> GraphQLError:
    """The error for an operation the caller's role may not perform."""
    return GraphQLError(
        f"Your role may not {doing}: it needs the {permission} permission.",
        extensions={"code": "FORBIDDEN", "permissions": [permission]},
    )


@dataclass(frozen=True)
class Access:
    """One caller's rights, computed once per request."""

    principal: Principal
    permissions: frozenset[str]
    policy: Policy

    def can(self, permission: str) -> bool:
        return permission in self.permissions

    @functools.cached_property
    def scope(self) -> CustomerScope | None:
        """None when every customer is visible."""
        if self.can(CUSTOMER_READ_ALL):
            return None
        return CustomerScope(self.principal.user_id, self.principal.team_ids)

    def sees(self, customer_row: Mapping[str, Any]) -> bool:
        scope = self.scope
        if scope is None:
            return True
        owner, team = customer_row.get("owner"), customer_row.get("team")
        return (owner is not None and owner == scope.owner) or (
            team is not None and team in scope.teams
        )

    def denied_fields(self, coordinates: set[tuple[str, str]]) -> list[tuple[str, str, str]]:
        """(type, field, permission) for every guarded field asked for (to read
        or to write) without the permission guarding it."""
        guarded = self.policy.guarded_fields
        return sorted(
            (type_name, field_name, permission)
            for type_name, field_name in coordinates
            if (permission := guarded.get((type_name, field_name))) is not None
            and not self.can(permission)
        )

    def denied_writes(
        self, type_name: str, sent: Mapping[str, Any], *, creating: bool = False
    ) -> list[tuple[str, str, str]]:
        """(type, field, permission) for every guarded field of ``type_name``
        a write changes without the permission guarding it: what every
        mutation (the core's, a plugin's, an import) refuses.

        ``sent`` maps the input fields the caller sent (snake_case or GraphQL
        names) to their values. A field left out is no write, so an input
        field that may be guarded defaults to strawberry's UNSET (left out of
        ``sent``), never to null: a default cannot be told from a value sent.
        A null clears the field of an existing record, which is a write; on a
        new record (``creating``) it writes nothing."""
        written = {
            (type_name, camel(name))
            for name, value in sent.items()
            if not (creating and value is None)
        }
        return self.denied_fields(written)

    def readable_change(self, field_path: str) -> bool:
        """Whether an audit trail change (``employee.salary``, ``birthday``…)
        may be shown to this caller with its values."""
        permission = self.policy.guarded_change_paths.get(field_path)
        return permission is None or self.can(permission)


@dataclass(frozen=True)
class Policy:
    """Grants and guarded fields, from what the plugins declare; built once."""

    grants: Mapping[str, frozenset[str]]
    # (GraphQL type, field) -> permission, attributes included
    guarded_fields: Mapping[tuple[str, str], str] = field(default_factory=dict)
    # audit trail field names ("employee.salary", "birthday") -> permission
    guarded_change_paths: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_catalog(
        cls, catalog: Catalog, extra_grants: Mapping[str, tuple[str, ...]] | None = None
    ) -> Policy:
        declared = {p.key: p for p in catalog.permissions}
        grants: dict[str, set[str]] = {role: set() for role in ROLES}
        grants[ADMIN] = set(declared)
        guarded_fields: dict[tuple[str, str], str] = {}
        change_paths: dict[str, str] = {}
        for permission in catalog.permissions:
            for role in permission.roles:
                if role not in grants:
                    raise PluginError(
                        catalog.permission_owner(permission.key),
                        f"permission {permission.key!r} names unknown role {role!r} "
                        f"(roles: {', '.join(ROLES)})",
                    )
                grants[role].add(permission.key)
            for coordinate in permission.fields:
                type_name, _, field_name = coordinate.partition(".")
                if not type_name or not field_name:
                    raise PluginError(
                        catalog.permission_owner(permission.key),
                        f"permission {permission.key!r}: field {coordinate!r} must read Type.field",
                    )
                guarded_fields[(type_name, field_name)] = permission.key
                change_paths[field_name] = permission.key
        for registered in catalog.types:
            descriptor = registered.descriptor
            for attr in descriptor.attributes:
                if attr.permission is None:
                    continue
                if attr.permission not in declared:
                    raise PluginError(
                        registered.plugin,
                        f"attribute {descriptor.key}.{attr.name} needs permission "
                        f"{attr.permission!r}, which no plugin declares",
                    )
                for type_name in (descriptor.graphql_name, descriptor.role_graphql_name):
                    guarded_fields[(type_name, camel(attr.name))] = attr.permission
                change_paths[f"{camel(descriptor.key)}.{camel(attr.name)}"] = attr.permission
        for role, keys in (extra_grants or {}).items():
            unknown = [k for k in keys if k not in declared]
            if role not in grants or unknown:
                raise PluginError(
                    "crmgraph settings",
                    f"CRMGRAPH_GRANTS: unknown role {role!r}"
                    if role not in grants
                    else f"CRMGRAPH_GRANTS: unknown permission(s) {', '.join(unknown)}",
                )
            grants[role].update(keys)
        return cls(
            grants={role: frozenset(keys) for role, keys in grants.items()},
            guarded_fields=guarded_fields,
            guarded_change_paths=change_paths,
        )

    def access(self, principal: Principal) -> Access:
        return Access(principal, self.grants.get(principal.role, frozenset()), self)
