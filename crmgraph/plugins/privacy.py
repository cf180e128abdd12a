"""Personal data rights, as a built-in plugin: ``personalDataExport``,
``erasePersonalData`` and ``recordConsent``, and each customer's
``erasedAt``, ``consents`` and ``consentHistory`` (:mod:`crmgraph.schema.privacy`,
:mod:`crmgraph.schema.consent_types`). Disabling it
(``CRMGRAPH_DISABLE_PLUGINS=crmgraph.plugins.privacy``) removes them from the
API; ``crmgraph privacy`` on the command line, the consent rules the core
applies to marketing interactions and the refusal to write to an erased
customer stay."""

from __future__ import annotations

from typing import TYPE_CHECKING

import strawberry

import crmgraph
from crmgraph import CustomerField, GraphQLContribution, Permission, hookimpl
from crmgraph.schema.consent_types import build_consent_types
from crmgraph.schema.privacy import PrivacyQuery, build_privacy_mutation

if TYPE_CHECKING:
    from crmgraph import CoreGraphQLTypes, CustomerFieldTypes


@hookimpl
def crmgraph_customer_fields(types: CustomerFieldTypes) -> list[CustomerField]:
    consents = build_consent_types(types.channel_enum)
    return [
        # the core's column, described once (crmgraph.core_fields)
        types.feature_columns["erased_at"],
        CustomerField(
            "consents",
            strawberry.field(
                resolver=consents.consents,
                description="The consents in force: the newest statement per contact (null: "
                "the customer itself), channel and purpose.",
            ),
            list[consents.consent],  # type: ignore[name-defined]
        ),
        CustomerField(
            "consent_history",
            strawberry.field(
                resolver=consents.history,
                description="Every grant and withdrawal of consent, newest first.",
            ),
            list[consents.consent],  # type: ignore[name-defined]
        ),
    ]


@hookimpl
def crmgraph_graphql(types: CoreGraphQLTypes) -> GraphQLContribution:
    consents = build_consent_types(types.channel_enum)
    return GraphQLContribution(
        query=[PrivacyQuery],
        mutation=[build_privacy_mutation(types.customer_interface, types.channel_enum, consents)],
    )


@hookimpl
def crmgraph_permissions() -> list[Permission]:
    """Exporting a person's data is for managers; erasing it, which cannot be
    undone, for admins only (grant it to others with ``CRMGRAPH_GRANTS``)."""
    return [
        Permission(
            crmgraph.PRIVACY_EXPORT,
            "Export every record about a person or company (personalDataExport): the right "
            "of access",
            roles=("manager",),
        ),
        Permission(
            crmgraph.PRIVACY_ERASE,
            "Erase a customer's personal data for good (erasePersonalData): the right to erasure",
            roles=(),
        ),
    ]
