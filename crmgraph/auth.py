"""Authentication: API keys bound to users, sent as ``Authorization: Bearer``.

A key reads ``crm_<prefix>_<secret>``. The prefix is stored in clear to find
the row; only a SHA-256 of the secret is stored (keys are 256-bit random, so
a fast hash is enough and a slow one would cost every request). A key's
principal may be cached for a few seconds (:mod:`crmgraph.principal_cache`,
which says how long a revocation takes to reach a server).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from crmgraph import principal_cache
from crmgraph.db import writes
from crmgraph.db.engine import Database
from crmgraph.observability import request_facts
from crmgraph.principal_cache import PrincipalCache

KEY_SCHEME = "crm"
ROLES = ("admin", "manager", "agent", "viewer")


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user through one of their keys, or the development
    anonymous caller when the settings allow it."""

    user_id: int | None
    name: str
    role: str
    key_prefix: str | None = None
    team_ids: frozenset[int] = frozenset()

    @property
    def is_anonymous(self) -> bool:
        return self.user_id is None

    @property
    def log_name(self) -> str:
        """How logs and traces name the caller: the key's public prefix."""
        return self.key_prefix or "anonymous"


ANONYMOUS = Principal(user_id=None, name="anonymous (development)", role="admin")


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_key(token: str) -> tuple[str, str] | None:
    scheme, _, rest = token.partition("_")
    prefix, _, secret = rest.partition("_")
    if scheme != KEY_SCHEME or not prefix or not secret:
        return None
    return prefix, secret


class AuthError(ValueError):
    pass


async def create_user(db: Database, name: str, email: str, role: str) -> int:
    if role not in ROLES:
        raise AuthError(f"role must be one of {', '.join(ROLES)}")
    existing = await db.fetch("SELECT id FROM crm_user WHERE email = {}", email)
    if existing:
        raise AuthError(f"a user with e-mail {email} exists")
    return await writes.insert(
        db, "crm_user", {"name": name, "email": email, "role": role, "created_at": writes.now()}
    )


async def set_role(db: Database, email: str, role: str) -> None:
    """Give the user another role: their keys' rights change at once in this
    process (and their open connections with them, see crmgraph.auth_changes)."""
    if role not in ROLES:
        raise AuthError(f"role must be one of {', '.join(ROLES)}")
    rows = await db.fetch(
        "UPDATE crm_user SET role = {} WHERE email = {} RETURNING id", role, email
    )
    if not rows:
        raise AuthError(f"no user with e-mail {email}")
    principal_cache.forget()  # the user's cached principals carry the old role


async def create_team(db: Database, name: str) -> int:
    if await db.fetch("SELECT id FROM team WHERE name = {}", name):
        raise AuthError(f"a team named {name} exists")
    return await writes.insert(db, "team", {"name": name, "created_at": writes.now()})


async def add_team_member(db: Database, team: str, email: str) -> None:
    teams = await db.fetch("SELECT id FROM team WHERE name = {}", team)
    users = await db.fetch("SELECT id FROM crm_user WHERE email = {}", email)
    if not teams:
        raise AuthError(f"no team named {team}")
    if not users:
        raise AuthError(f"no user with e-mail {email}")
    team_pk, user_pk = teams[0]["id"], users[0]["id"]
    if not await db.fetch(
        "SELECT id FROM team_member WHERE team = {} AND member = {}", team_pk, user_pk
    ):
        await writes.insert(db, "team_member", {"team": team_pk, "member": user_pk})
        principal_cache.forget()  # the member's cached principals carry their old teams


async def list_teams(db: Database) -> list[dict[str, Any]]:
    return await db.fetch(
        "SELECT t.id, t.name, u.email FROM team t "
        "LEFT JOIN team_member m ON m.team = t.id LEFT JOIN crm_user u ON u.id = m.member "
        "ORDER BY t.name, u.email"
    )


async def create_key(db: Database, email: str, name: str) -> str:
    """A new key for the user with this e-mail; the only time the secret is shown."""
    users = await db.fetch("SELECT id FROM crm_user WHERE email = {}", email)
    if not users:
        raise AuthError(f"no user with e-mail {email}")
    prefix, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    await writes.insert(
        db,
        "api_key",
        {
            "holder": users[0]["id"],
            "name": name,
            "prefix": prefix,
            "secret_hash": hash_secret(secret),
            "created_at": writes.now(),
        },
    )
    return f"{KEY_SCHEME}_{prefix}_{secret}"


async def list_keys(db: Database) -> list[dict[str, Any]]:
    return await db.fetch(
        "SELECT k.prefix, k.name, k.created_at, k.revoked_at, u.email, u.role "
        "FROM api_key k JOIN crm_user u ON u.id = k.holder ORDER BY k.id"
    )


async def revoke_key(db: Database, prefix: str) -> bool:
    rows = await db.fetch(
        "UPDATE api_key SET revoked_at = {} WHERE prefix = {} AND revoked_at IS NULL RETURNING id",
        writes.now(),
        prefix,
    )
    principal_cache.forget(prefix)
    return bool(rows)


# A key, its user, and a row per team of theirs (the SQL's WHERE picks the keys)
PRINCIPAL_ROWS = (
    "SELECT k.prefix, k.secret_hash, k.revoked_at, u.id, u.name, u.role, m.team FROM api_key k "
    "JOIN crm_user u ON u.id = k.holder LEFT JOIN team_member m ON m.member = u.id"
)


def principals_of(rows: Sequence[Mapping[str, Any]]) -> dict[str, Principal]:
    """The principal of each key prefix in rows of :data:`PRINCIPAL_ROWS`."""
    teams: dict[str, set[int]] = {}
    for row in rows:
        members = teams.setdefault(row["prefix"], set())
        if row["team"] is not None:
            members.add(row["team"])
    return {
        row["prefix"]: Principal(
            user_id=row["id"],
            name=row["name"],
            role=row["role"],
            key_prefix=row["prefix"],
            team_ids=frozenset(teams[row["prefix"]]),
        )
        for row in rows
    }


async def authenticate(
    db: Database, token: str, cache: PrincipalCache[Principal] | None = None
) -> Principal | None:
    """The key's user, or None for a malformed, unknown or revoked key."""
    parts = split_key(token)
    if parts is None:
        return None
    prefix, secret = parts
    digest = hash_secret(secret)
    generation = 0
    if cache is not None:
        cached = cache.get(prefix, digest)
        if cached is not None:
            return cached
        generation = cache.generation
    # one statement per request: the key, its user, and a row per team of theirs
    rows = await db.fetch(f"{PRINCIPAL_ROWS} WHERE k.prefix = {{}}", prefix)
    if not rows or rows[0]["revoked_at"] is not None:
        return None
    if not hmac.compare_digest(rows[0]["secret_hash"], digest):
        return None
    principal = principals_of(rows)[prefix]
    if cache is not None:
        cache.put(prefix, digest, principal, generation)
    return principal


def unauthorized_body(message: str) -> bytes:
    return orjson.dumps(
        {"errors": [{"message": message, "extensions": {"code": "UNAUTHENTICATED"}}]}
    )


class Authentication:
    """ASGI wrapper for /graphql: resolves the bearer key to a principal in
    ``scope["state"]["principal"]`` or answers 401 with no data. The GraphiQL
    page itself (a browser's GET for HTML) needs no key; its requests do."""

    def __init__(
        self,
        app: ASGIApp,
        db: Database,
        allow_anonymous: bool,
        cache: PrincipalCache[Principal] | None = None,
    ) -> None:
        self.app = app
        self.db = db
        self.allow_anonymous = allow_anonymous
        self.cache = cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # WebSocket auth belongs to connection_init (subscriptions)
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        if scope.get("method") == "GET" and b"text/html" in headers.get(b"accept", b""):
            await self.app(scope, receive, send)
            return
        authorization = headers.get(b"authorization", b"").decode(errors="replace")
        principal: Principal | None
        if authorization:
            scheme, _, token = authorization.partition(" ")
            valid = scheme.lower() == "bearer" and token.strip()
            principal = await authenticate(self.db, token.strip(), self.cache) if valid else None
            message = "invalid, unknown or revoked API key"
        else:
            principal = ANONYMOUS if self.allow_anonymous else None
            message = "authentication required: send Authorization: Bearer <API key>"
        if principal is None:
            request_facts.note_refusal("UNAUTHENTICATED")
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"www-authenticate", b'Bearer realm="crmgraph"'),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": unauthorized_body(message)})
            return
        scope.setdefault("state", {})["principal"] = principal
        request_facts.note_principal(principal.log_name)
        await self.app(scope, receive, send)
