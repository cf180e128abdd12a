"""Users and teams by what a file names them with, read once per import
(both tables are small next to the rows being imported)."""

from __future__ import annotations

from dataclasses import dataclass, field

from crmgraph.db.engine import Database
from crmgraph.transfer.coerce import cell
from crmgraph.validation import Errors


@dataclass
class People:
    users: dict[str, int] = field(default_factory=dict)  # lower-cased e-mail -> id
    teams: dict[str, int] = field(default_factory=dict)  # lower-cased name -> id
    user_ids: set[int] = field(default_factory=set)
    team_ids: set[int] = field(default_factory=set)

    @classmethod
    async def load(cls, db: Database) -> People:
        users = await db.fetch("SELECT id, email FROM crm_user")
        teams = await db.fetch("SELECT id, name FROM team")
        return cls(
            {row["email"].lower(): row["id"] for row in users},
            {row["name"].lower(): row["id"] for row in teams},
            {row["id"] for row in users},
            {row["id"] for row in teams},
        )

    def user(self, errors: Errors, path: str, value: str | None) -> int | None:
        """A user named by e-mail or id."""
        return self._find(errors, path, value, self.users, self.user_ids, "user")

    def team(self, errors: Errors, path: str, value: str | None) -> int | None:
        """A team named by name or id."""
        return self._find(errors, path, value, self.teams, self.team_ids, "team")

    @staticmethod
    def _find(
        errors: Errors,
        path: str,
        value: str | None,
        by_name: dict[str, int],
        ids: set[int],
        what: str,
    ) -> int | None:
        text = cell(value)
        if text is None:
            return None
        found = by_name.get(text.lower())
        if found is None and text.isdigit() and int(text) in ids:
            found = int(text)
        if found is None:
            errors.add(path, f"{path}: no {what} {text!r}", "NOT_FOUND")
        return found
