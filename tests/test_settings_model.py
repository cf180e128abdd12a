"""The settings model (crmgraph.settings): typed CRMGRAPH_* variables, errors that
name the variable, warnings for typos, .env files, the generated reference, and
page sizes read from the environment and honoured by a real server."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path

import pydantic
import pytest

from crmgraph import settings_doc
from crmgraph.cli import main
from crmgraph.query_cost import QueryLimits
from crmgraph.settings import NOT_SETTINGS, Settings, SettingsError, env_name
from crmgraph.testing import LiveServer, live_server
from tests.helpers import create_customer

DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A working directory of its own and no CRMGRAPH_* setting in the environment."""
    for name in Settings.model_fields:
        monkeypatch.delenv(env_name(name), raising=False)
    monkeypatch.delenv("CRMGRAPH_ENV_FILE", raising=False)
    monkeypatch.chdir(tmp_path)
    yield tmp_path


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "crmgraph.settings"]


def test_a_typo_warns_with_the_closest_name(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="crmgraph.settings")
    settings = Settings.from_env(
        {"CRMGRAPH_MAX_PAGESIZE": "5", "CRMGRAPH_NO_SUCH_THING": "1", "OTHER_VARIABLE": "x"}
        | {name: "1" for name in NOT_SETTINGS}
    )
    assert warnings_of(caplog) == [
        "unknown setting CRMGRAPH_MAX_PAGESIZE is ignored; did you mean CRMGRAPH_MAX_PAGE_SIZE?",
        "unknown setting CRMGRAPH_NO_SUCH_THING is ignored",
    ]
    assert settings.max_page_size == 100  # ignored, not half-read


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"CRMGRAPH_POOL_MAX_SIZE": "ten"}, "CRMGRAPH_POOL_MAX_SIZE='ten': expected an integer"),
        ({"CRMGRAPH_EVENT_POLL_SECONDS": "soon"}, "'soon': expected a number"),
        (
            {"CRMGRAPH_EVENT_POLL_SECONDS": "0"},
            "CRMGRAPH_EVENT_POLL_SECONDS='0': expected a number > 0",
        ),
        (
            {"CRMGRAPH_GRAPHIQL": "flase"},
            "CRMGRAPH_GRAPHIQL='flase': expected a flag: 1/true/yes/on",
        ),
        (
            {"CRMGRAPH_LOG_FORMAT": "xml"},
            "CRMGRAPH_LOG_FORMAT='xml': expected 'auto', 'json' or 'text'",
        ),
        ({"CRMGRAPH_LOG_LEVEL": "loud"}, "CRMGRAPH_LOG_LEVEL='loud': expected a logging level"),
        ({"CRMGRAPH_STATEMENT_CACHE_SIZE": "-1"}, "'-1': expected an integer >= 0"),
        ({"CRMGRAPH_MAX_PAGE_SIZE": "0"}, "CRMGRAPH_MAX_PAGE_SIZE='0': expected an integer >= 1"),
        ({"CRMGRAPH_DUPLICATE_RULES": "supplier"}, "'supplier' is not one"),
        ({"CRMGRAPH_DATABASE_URL": "mysql://db/crm"}, "expected sqlite:///path or postgresql://"),
        (
            {"CRMGRAPH_DEFAULT_PAGE_SIZE": "50", "CRMGRAPH_MAX_PAGE_SIZE": "10"},
            "CRMGRAPH_DEFAULT_PAGE_SIZE=50 is more than CRMGRAPH_MAX_PAGE_SIZE=10",
        ),
        (
            {"CRMGRAPH_EVENT_BACKOFF_SECONDS": "-1"},
            "CRMGRAPH_EVENT_BACKOFF_SECONDS='-1': expected a number >= 0",
        ),
        ({"CRMGRAPH_EVENT_BACKOFF_MAX_SECONDS": "an hour"}, "'an hour': expected a number"),
        ({"CRMGRAPH_EVENT_MAX_ATTEMPTS": "0"}, "'0': expected an integer >= 1"),
        (
            {"CRMGRAPH_EVENT_BACKOFF_SECONDS": "60", "CRMGRAPH_EVENT_BACKOFF_MAX_SECONDS": "5"},
            "CRMGRAPH_EVENT_BACKOFF_SECONDS=60.0 is more than CRMGRAPH_EVENT_BACKOFF_MAX_SECONDS=5.0",
        ),
        (
            {"CRMGRAPH_POOL_MIN_SIZE": "20"},
            "CRMGRAPH_POOL_MIN_SIZE=20 is more than CRMGRAPH_POOL_MAX_SIZE=10",
        ),
    ],
)
def test_a_bad_value_names_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(environ)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)  # one problem, one line


def test_every_bad_value_is_named_at_once() -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"CRMGRAPH_POOL_MAX_SIZE": "ten", "CRMGRAPH_ANONYMOUS": "maybe"})
    assert str(raised.value).splitlines() == [
        "CRMGRAPH_POOL_MAX_SIZE='ten': expected an integer",
        "CRMGRAPH_ANONYMOUS='maybe': expected a flag: 1/true/yes/on or 0/false/no/off",
    ]


def test_the_formats_operators_write_are_kept() -> None:
    settings = Settings.from_env(
        {
            "CRMGRAPH_PLUGINS": "my.plugin, other.plugin,,",
            "CRMGRAPH_DISABLE_PLUGINS": "crmgraph.plugins.supplier",
            "CRMGRAPH_GRANTS": "agent=employee.read_pay,audit.read;viewer=audit.read",
            "CRMGRAPH_DUPLICATE_RULES": "supplier=block, client=warn",
            "CRMGRAPH_GRAPHIQL": "Off",
            "CRMGRAPH_ANONYMOUS": " yes ",
            "CRMGRAPH_EXPOSE_SQL_COUNT": "on",
            "CRMGRAPH_INTROSPECTION": "no",
            "CRMGRAPH_LOG_LEVEL": "DEBUG",
            "CRMGRAPH_REDIS_URL": "",  # empty: the default
            "CRMGRAPH_DATABASE_URL": "",
            "CRMGRAPH_MAX_QUERY_COST": "",
        }
    )
    assert settings.plugins == ("my.plugin", "other.plugin")
    assert settings.disabled_plugins == ("crmgraph.plugins.supplier",)
    assert settings.grants == {
        "agent": ("employee.read_pay", "audit.read"),
        "viewer": ("audit.read",),
    }
    assert settings.duplicate_rules == {"supplier": "block", "client": "warn"}
    assert (settings.graphiql, settings.anonymous, settings.expose_sql_count) == (False, True, True)
    assert settings.introspection is False
    assert settings.log_level == "debug"
    assert settings.redis_url is None
    assert settings.database_url == "sqlite:///crmgraph.sqlite"
    assert settings.max_query_cost == 25_000
    for flag in ("1", "true", "TRUE", "yes", "on"):
        assert Settings.from_env({"CRMGRAPH_METRICS": flag}).metrics is True
    for flag in ("0", "false", "No", "off"):
        assert Settings.from_env({"CRMGRAPH_ACCESS_LOG": flag}).access_log is False


def test_keyword_construction_is_typed_frozen_and_reads_nothing(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (clean_environment / ".env").write_text("CRMGRAPH_POOL_MAX_SIZE=3\n")
    monkeypatch.setenv("CRMGRAPH_MAX_PAGE_SIZE", "7")
    settings = Settings(database_url="sqlite:///x.sqlite", disabled_plugins=["a"])
    assert (settings.pool_max_size, settings.max_page_size) == (10, 100)
    assert settings.disabled_plugins == ("a",)
    assert settings.sqlite_path == Path("x.sqlite") and settings.is_sqlite
    moved = settings.with_database("postgresql://postgres@127.0.0.1/crm")
    assert (moved.database_url, moved.is_sqlite, settings.is_sqlite) == (
        "postgresql://postgres@127.0.0.1/crm",
        False,
        True,
    )
    assert settings.model_copy(update={"anonymous": True}).anonymous is True
    with pytest.raises(pydantic.ValidationError):
        settings.anonymous = True  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        Settings(databse_url="sqlite:///typo.sqlite")  # type: ignore[call-arg]


def test_dotenv_is_read_and_the_environment_wins(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="crmgraph.settings")
    (clean_environment / ".env").write_text(
        "# local development\n"
        "CRMGRAPH_POOL_MAX_SIZE=3\n"
        'CRMGRAPH_GRANTS="agent=audit.read;viewer=audit.read"\n'
        "CRMGRAPH_MAX_PAGE_SIZE=40\n"
        "CRMGRAPH_MAX_QUERY_DEPHT=4\n"
        "SOMETHING_ELSE=1\n"
    )
    monkeypatch.setenv("CRMGRAPH_MAX_PAGE_SIZE", "60")
    settings = Settings.from_env()
    assert settings.pool_max_size == 3
    assert settings.grants == {"agent": ("audit.read",), "viewer": ("audit.read",)}
    assert settings.max_page_size == 60  # the environment wins over the file
    assert warnings_of(caplog) == [
        "unknown setting CRMGRAPH_MAX_QUERY_DEPHT is ignored; did you mean "
        "CRMGRAPH_MAX_QUERY_DEPTH?"
    ]
    # a given mapping is all there is: no .env (tests stay deterministic)
    assert Settings.from_env({}).pool_max_size == 10


def test_crmgraph_env_file_names_another_file(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (clean_environment / ".env").write_text("CRMGRAPH_POOL_MAX_SIZE=3\n")
    (clean_environment / "production.env").write_text("CRMGRAPH_POOL_MAX_SIZE=30\n")
    monkeypatch.setenv("CRMGRAPH_ENV_FILE", "production.env")
    assert Settings.from_env().pool_max_size == 30
    monkeypatch.setenv("CRMGRAPH_ENV_FILE", "missing.env")
    with pytest.raises(SettingsError) as raised:
        Settings.from_env()
    assert str(raised.value) == "CRMGRAPH_ENV_FILE='missing.env': no such file"


def test_the_cli_prints_a_bad_value_and_exits(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CRMGRAPH_POOL_MAX_SIZE", "ten")
    assert main(["plugins"]) == 2
    err = capsys.readouterr().err
    assert "crmgraph: CRMGRAPH_POOL_MAX_SIZE='ten': expected an integer" in err
    assert "Traceback" not in err


def test_crmgraph_settings_prints_the_reference(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["settings", "--markdown"]) == 0
    assert capsys.readouterr().out == settings_doc.markdown_table()
    assert main(["settings"]) == 0
    assert "CRMGRAPH_POOL_MAX_SIZE = 10  (integer ≥ 1)" in capsys.readouterr().out


@pytest.mark.parametrize("page", ["configuration.md", "deployment.md"])
def test_the_docs_hold_the_generated_table(page: str) -> None:
    text = (DOCS / page).read_text(encoding="utf-8")
    assert settings_doc.embedded(text) == settings_doc.markdown_table(), (
        f"docs/{page} is stale: python -m crmgraph.settings_doc docs/{page}"
    )


def test_every_setting_is_described_once() -> None:
    rows = settings_doc.rows()
    assert all(description for *_, description in rows)
    assert len({variable for variable, *_ in rows}) == len(rows)
    assert env_name("disabled_plugins") == "CRMGRAPH_DISABLE_PLUGINS"
    assert not {variable for variable, *_ in rows} & NOT_SETTINGS


def test_query_limits_take_their_defaults_from_the_settings() -> None:
    defaults = Settings()
    limits = QueryLimits()
    assert dataclasses.astuple(limits) == dataclasses.astuple(QueryLimits.from_settings(defaults))
    assert (limits.max_cost, limits.max_depth) == (
        defaults.max_query_cost,
        defaults.max_query_depth,
    )


def test_page_sizes_from_the_environment_are_honoured(database_url: str) -> None:
    settings = Settings.from_env(
        {
            "CRMGRAPH_DATABASE_URL": database_url,
            "CRMGRAPH_LOAD_ENTRY_POINTS": "0",
            "CRMGRAPH_MIGRATE_ON_START": "0",
            "CRMGRAPH_ANONYMOUS": "1",
            "CRMGRAPH_RATE_LIMIT_COST": "0",
            "CRMGRAPH_MAX_PAGE_SIZE": "30",
            "CRMGRAPH_DEFAULT_PAGE_SIZE": "2",
        }
    )
    server: LiveServer
    with live_server(settings) as server:
        for name in ("Ana", "Bea", "Cai"):
            create_customer(server, name=name)
        query = "{ customers%s { edges { node { id } } pageInfo { hasNextPage } } }"
        # `first: null`: the default page size (the SDL's `first: Int = 20` is the schema's own)
        page = server.gql(query % "(first: null)")["customers"]
        assert (len(page["edges"]), page["pageInfo"]["hasNextPage"]) == (2, True)
        assert len(server.gql(query % "")["customers"]["edges"]) == 3
        assert len(server.gql(query % "(first: 30)")["customers"]["edges"]) == 3
        for _ in range(2):  # twice: the second may be answered straight from the request
            body = server.post(query % "(first: 31)")
            [error] = body["errors"]
            assert error["extensions"] == {"code": "PAGE_SIZE_OUT_OF_RANGE", "maximum": 30}
            assert "between 0 and 30" in error["message"]
