"""What the catalog declares, as the API describes it: customer types with
their stages, transitions and attributes, permissions and plugin metrics."""

import enum
from dataclasses import dataclass
from decimal import Decimal

import strawberry

from crmgraph.registry import Catalog
from crmgraph.schema import core_types as core
from crmgraph.validation import camel


@strawberry.type(description="One stage of a customer type's lifecycle.")
class StageInfo:
    key: str = strawberry.field(
        description="The stage's key (there is no `name`): what `stage`, `toStage` and filters "
        "take, e.g. `active`."
    )
    label: str = strawberry.field(description="The stage's human-readable label, e.g. 'Active'.")
    phase: core.Phase = strawberry.field(
        description="The common lifecycle phase the stage maps onto."
    )
    detour: bool = strawberry.field(
        description="Off the main path (at risk, on leave…): not progress in the funnel."
    )


@strawberry.type(description="A move a customer type's lifecycle allows.")
class TransitionInfo:
    from_stage: str = strawberry.field(description="The stage key it leaves.")
    to_stage: str = strawberry.field(description="The stage key it enters.")
    description: str = strawberry.field(
        description="What the move means, as its plugin says (may be empty)."
    )


@strawberry.type(
    description="A typed attribute of a customer type: a field of its GraphQL type and of its "
    "attribute input."
)
class AttributeInfo:
    name: str = strawberry.field(
        description="The field's name in GraphQL (camelCase), e.g. `taxId`."
    )
    type: str = strawberry.field(
        description="The Python type of its values: str, int, float, bool, Decimal, date."
    )
    description: str = strawberry.field(description="What it holds, as its plugin says.")
    required: bool = strawberry.field(description="A customer of the type must have it.")
    choices: list[str] | None = strawberry.field(
        description="The values it accepts (the GraphQL enum's), or null for any."
    )
    permission: str | None = strawberry.field(
        description="Permission needed to read it, if it is sensitive."
    )
    min_value: Decimal | None = strawberry.field(
        default=None, description="Smallest value it accepts (inclusive), for a number."
    )
    max_value: Decimal | None = strawberry.field(
        default=None, description="Largest value it accepts (inclusive), for a number."
    )


@strawberry.type(description="A permission a plugin declared, and the roles granted it.")
class PermissionInfo:
    key: str = strawberry.field(description="The permission, e.g. `employee.read_pay`.")
    description: str = strawberry.field(description="What it allows, as its plugin says.")
    roles: list[str] = strawberry.field(
        description="The roles granted it (by default and by CRMGRAPH_GRANTS)."
    )


@strawberry.type(description="A metric a plugin contributes, computed in SQL now.")
class MetricValue:
    key: str = strawberry.field(description="The metric's unique key, e.g. `loyalty_points_total`.")
    description: str = strawberry.field(description="What it measures, as its plugin says.")
    value: float | None = strawberry.field(
        description="Its value now; null when the statement found nothing."
    )


@dataclass(frozen=True)
class KindInfos:
    info_type: type
    infos: list


def build_kind_infos(catalog: Catalog, kind_enum: type[enum.Enum]) -> KindInfos:
    """``CustomerKindInfo`` (its ``kind`` is this build's enum) and the value
    of every loaded customer type, computed once per build."""
    CustomerKind = kind_enum

    @strawberry.type(description="A customer type, as its plugin declared it.")
    class CustomerKindInfo:
        kind: CustomerKind = strawberry.field(description="The type's value in `CustomerKind`.")  # type: ignore[valid-type]
        type_name: str = strawberry.field(
            description="The GraphQL object type of such customers, e.g. `Client`."
        )
        description: str = strawberry.field(description="What the type is, as its plugin says.")
        plugin: str = strawberry.field(description="The plugin that declared it.")
        initial_stage: str = strawberry.field(
            description="The stage key a new customer of the type starts at."
        )
        stages: list[StageInfo] = strawberry.field(
            description="Every stage of its lifecycle, in its declared order."
        )
        transitions: list[TransitionInfo] = strawberry.field(
            description="Every move its lifecycle allows."
        )
        attributes: list[AttributeInfo] = strawberry.field(description="Its typed attributes.")

    infos = [
        CustomerKindInfo(
            kind=CustomerKind(t.descriptor.key),
            type_name=t.descriptor.graphql_name,
            description=t.descriptor.description,
            plugin=t.plugin,
            initial_stage=t.descriptor.lifecycle.initial,
            stages=[
                StageInfo(
                    key=s.key, label=s.label, phase=core.Phase(s.phase.value), detour=s.detour
                )
                for s in t.descriptor.lifecycle.stages
            ],
            transitions=[
                TransitionInfo(
                    from_stage=tr.from_stage, to_stage=tr.to_stage, description=tr.description
                )
                for tr in t.descriptor.lifecycle.transitions
            ],
            attributes=[
                AttributeInfo(
                    name=camel(a.name),
                    type=a.type.__name__,
                    description=a.description,
                    required=a.required,
                    choices=list(a.choices) if a.choices else None,
                    permission=a.permission,
                    min_value=a.min_value,
                    max_value=a.max_value,
                )
                for a in t.descriptor.attributes
            ],
        )
        for t in catalog.types
    ]
    return KindInfos(info_type=CustomerKindInfo, infos=infos)
