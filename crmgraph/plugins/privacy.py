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

from crmgraph import CustomerField, GraphQLContribution, hookimpl
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
