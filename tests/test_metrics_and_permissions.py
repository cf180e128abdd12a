"""Metrics and permissions plugins declare are served through the schema."""

from __future__ import annotations

from crmgraph.testing import LiveServer, live_server, settings_for
from tests.helpers import create_customer


def test_plugin_metric_is_computed_in_sql(database_url: str) -> None:
    settings = settings_for(database_url, plugins=("tests.plugins_for_tests.counting_metric",))
    with live_server(settings) as server:
        query = "{ pluginMetrics { key description value } }"
        assert server.gql(query)["pluginMetrics"] == [
            {"key": "active_clients", "description": "Clients not deleted", "value": 0.0}
        ]
        for name in ("One", "Two", "Three"):
            create_customer(server, name=name)
        assert server.gql(query)["pluginMetrics"][0]["value"] == 3.0


def test_declared_permissions_and_sensitive_attributes(server: LiveServer) -> None:
    data = server.gql(
        "{ permissions { key roles } customerKinds { typeName attributes { name permission } } }"
    )
    assert {"key": "employee.read_pay", "roles": ["admin", "manager"]} in data["permissions"]
    employee = next(k for k in data["customerKinds"] if k["typeName"] == "Employee")
    sensitive = {a["name"] for a in employee["attributes"] if a["permission"]}
    assert sensitive == {"salary", "bonusTarget"}
