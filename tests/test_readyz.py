"""/readyz: which dependency is down, never why (the exception goes to the log).

Redis away: 200, ``"redis": "degraded"`` (everything that uses Redis
degrades). The database or the read replica away (PostgreSQL behind a
PgBouncer of the test's own, which is then stopped: its port closes): 503
naming which, and nothing more.
"""

from __future__ import annotations

import contextlib

import pytest

from crmgraph.testing import fresh_postgres_database, live_server, settings_for
from crmgraph.testing.pgbouncer import free_port, pgbouncer


def test_redis_down_is_degraded_without_the_error(database_url: str) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"
    with live_server(settings_for(database_url, redis_url=closed)) as server:
        # a fresh database's funnel phases may still be recomputing (startupWork)
        server.run(lambda state: state.startup_work.finished())
        response = server.http.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["redis"] == "degraded"
    assert set(body) == {"status", "database", "subscriptions", "redis"}, body


@pytest.mark.parametrize("engine", ["postgres"])
def test_database_down_is_503_without_the_error(
    pg_template: str, engine: str, caplog: pytest.LogCaptureFixture
) -> None:
    with fresh_postgres_database(pg_template) as direct, contextlib.ExitStack() as bouncer:
        url = f"{bouncer.enter_context(pgbouncer())}/{direct.rsplit('/', 1)[1]}"
        with live_server(settings_for(url, statement_cache_size=0)) as server:
            assert server.http.get("/readyz").status_code == 200
            bouncer.close()  # the port closes: the database is gone
            response = server.http.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "unavailable"}
    assert "readiness: the database did not answer" in caplog.text


@pytest.mark.parametrize("engine", ["postgres"])
def test_replica_down_is_503_naming_the_replica(pg_template: str, engine: str) -> None:
    with (
        fresh_postgres_database(pg_template) as primary,
        fresh_postgres_database(pg_template) as replica,
        contextlib.ExitStack() as bouncer,
    ):
        read_url = f"{bouncer.enter_context(pgbouncer())}/{replica.rsplit('/', 1)[1]}"
        settings = settings_for(primary, database_read_url=read_url, statement_cache_size=0)
        with live_server(settings) as server:
            assert server.http.get("/readyz").json()["replica"] == "ok"
            bouncer.close()
            response = server.http.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "replica": "unavailable"}
