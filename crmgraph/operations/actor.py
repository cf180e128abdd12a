"""Who an operation runs for: the caller's rights and the settings its rules read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from crmgraph.access import Access
from crmgraph.settings import Settings


@dataclass(frozen=True)
class Actor:
    """The caller of an operation: ``access`` (principal, permissions, row
    scope, guarded fields) plus the settings the rules need."""

    access: Access
    phone_region: str | None = None
    duplicate_rules: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, access: Access, settings: Settings) -> Actor:
        return cls(access, settings.default_phone_region, settings.duplicate_rules)

    @property
    def user_id(self) -> int | None:
        return self.access.principal.user_id

    @property
    def team_ids(self) -> frozenset[int]:
        return self.access.principal.team_ids

    def can(self, permission: str) -> bool:
        return self.access.can(permission)

    def sees(self, customer_row: Mapping[str, Any]) -> bool:
        """Row scope: whether the caller may see this customer."""
        return self.access.sees(customer_row)
