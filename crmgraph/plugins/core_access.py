"""The core's permissions, declared through the same hook as any plugin's
(the built-in features declare their own: ``customer.merge`` in
:mod:`crmgraph.plugins.dedupe`, ``note.moderate`` in
:mod:`crmgraph.plugins.teamwork`, ``privacy.export`` and ``privacy.erase`` in
:mod:`crmgraph.plugins.privacy`, so they go when the feature is disabled).

Defaults: managers do everything but hold no plugin-specific rights unless a
plugin grants them; agents work on their own and their teams' customers;
viewers read every customer and change nothing. ``admin`` holds every
permission without being listed. Exporting a person's data is for managers;
erasing it, which cannot be undone, for admins only (grant it to others with
``CRMGRAPH_GRANTS``).
"""

from __future__ import annotations

import crmgraph
from crmgraph import Permission, hookimpl

PERMISSIONS = [
    Permission(
        crmgraph.CUSTOMER_READ_ALL,
        "See every customer, not only those owned by the caller or assigned to their teams",
        roles=("manager", "viewer"),
    ),
    Permission(
        crmgraph.CUSTOMER_WRITE,
        "Create and change customers and their contacts, interactions, needs and relationships",
        roles=("manager", "agent"),
    ),
    Permission(crmgraph.CUSTOMER_DELETE, "Delete and restore customers", roles=("manager",)),
    Permission(
        crmgraph.CUSTOMER_ASSIGN,
        "Give a customer to another owner or team (without it, only to yourself and your teams)",
        roles=("manager",),
    ),
    Permission(
        crmgraph.AUDIT_READ,
        "Read the audit trail of the customers the caller can see",
        roles=("manager", "agent"),
    ),
    Permission(
        crmgraph.CONTACT_READ_PROFILE,
        "Read and write a person's personal profile: a contact's birthday and home "
        "address, an address-book contact's birthday",
        roles=("manager",),
        fields=("Contact.birthday", "Contact.homeAddress"),
    ),
]


@hookimpl
def crmgraph_permissions() -> list[Permission]:
    return PERMISSIONS
