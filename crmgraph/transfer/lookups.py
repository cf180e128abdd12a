"""Users and teams by what a file names them with, read once per import
(both tables are small next to the rows being imported).

An import on the command line adds the owners and teams a file names that
the database lacks (:meth:`People.add_user`, :meth:`People.add_team`), so a
full export imports into an empty database. A user made so is an ``agent``
(:data:`NEW_USER_ROLE`): an owner works on their own customers, and a file
never says what rights anyone has. No API key is made: an admin issues one
(``crmgraph keys create``) and may change the role when the person is known."""

from __future__ import annotations

from dataclasses import dataclass, field

from crmgraph import auth
from crmgraph import validation as v
from crmgraph.db.engine import Database
from crmgraph.transfer.coerce import cell
from crmgraph.validation import Errors

NEW_USER_ROLE = "agent"


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

    async def add_user(self, db: Database, email: str | None, name: str | None) -> None:
        """Create the user ``email`` names when there is none (a valid e-mail only)."""
        text = cell(email)
        if text is None or text.lower() in self.users or text.isdigit():
            return
        if v.email(Errors(), "owner", text) is None:
            return  # not an e-mail: the row is rejected as naming no user
        shown = (cell(name) or text.partition("@")[0])[:200]
        pk = await auth.create_user(db, shown, text, NEW_USER_ROLE)
        self.users[text.lower()] = pk
        self.user_ids.add(pk)

    async def add_team(self, db: Database, name: str | None) -> None:
        """Create the team ``name`` names when there is none."""
        text = cell(name)
        if text is None or text.lower() in self.teams or text.isdigit() or len(text) > 100:
            return
        pk = await auth.create_team(db, text)
        self.teams[text.lower()] = pk
        self.team_ids.add(pk)

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
