"""What the catalog declares, as the API describes it: customer types with
their stages, transitions and attributes, permissions and plugin metrics."""

import enum
from dataclasses import dataclass
from decimal import Decimal

import strawberry

from crmgraph.registry import Catalog
from crmgraph.schema import core_types as core
from crmgraph.validation import camel


@strawberry.type
class StageInfo:
    key: str
    label: str
    phase: core.Phase
    detour: bool = strawberry.field(
        description="Off the main path (at risk, on leave…): not progress in the funnel."
    )


@strawberry.type
class TransitionInfo:
    from_stage: str
    to_stage: str
    description: str


@strawberry.type
class AttributeInfo:
    name: str
    type: str
    description: str
    required: bool
    choices: list[str] | None
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
    key: str
    description: str
    roles: list[str]


@strawberry.type(description="A metric a plugin contributes, computed in SQL now.")
class MetricValue:
    key: str
    description: str
    value: float | None


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
        kind: CustomerKind  # type: ignore[valid-type]
        type_name: str
        description: str
        plugin: str
        initial_stage: str
        stages: list[StageInfo]
        transitions: list[TransitionInfo]
        attributes: list[AttributeInfo]

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
