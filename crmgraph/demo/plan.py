"""What the demo seed writes, planned in memory (:class:`DemoPlan`), and how
much of it (:class:`DemoSummary`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crmgraph.operations.new_customers import NewCustomer

Row = dict[str, Any]


@dataclass(frozen=True)
class DemoSummary:
    users: int
    customers: int
    contacts: int
    interactions: int
    needs: int
    relationships: int
    stage_changes: int

    def __str__(self) -> str:
        return (
            f"{self.customers} customers, {self.contacts} contacts, "
            f"{self.interactions} interactions, {self.needs} needs, "
            f"{self.relationships} relationships, {self.stage_changes} stage changes, "
            f"{self.users} users"
        )


@dataclass
class DemoPlan:
    """Rows to insert. Foreign keys hold list positions (``customer`` is an
    index into ``customers``, a customer's ``owner`` and its stage entries'
    ``by`` index into ``users``) until the database has assigned ids."""

    users: list[Row] = field(default_factory=list)
    # each with its roles and stage history (crmgraph.operations.new_customers)
    customers: list[NewCustomer] = field(default_factory=list)
    contacts: list[Row] = field(default_factory=list)
    interactions: list[Row] = field(default_factory=list)
    needs: list[Row] = field(default_factory=list)
    relationships: list[Row] = field(default_factory=list)
    # team work, so GraphiQL shows notes, mentions, tasks and a full timeline
    notes: list[Row] = field(default_factory=list)
    note_mentions: list[Row] = field(default_factory=list)
    tasks: list[Row] = field(default_factory=list)

    def summary(self) -> DemoSummary:
        return DemoSummary(
            users=len(self.users),
            customers=len(self.customers),
            contacts=len(self.contacts),
            interactions=len(self.interactions),
            needs=len(self.needs),
            relationships=len(self.relationships),
            stage_changes=sum(len(customer.history) for customer in self.customers),
        )
