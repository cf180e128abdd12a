"""GraphiQL served by crmgraph itself, so it works with no internet.

The page is GraphiQL 5 with the explorer, docs and history plugins, built by
``scripts/install-graphiql`` (npm packages from the registry, bundled by
esbuild from ``scripts/graphiql``) into ``crmgraph/static/vendor/graphiql`` (or
``CRMGRAPH_GRAPHIQL_ASSETS``); the build is not committed. This module writes
the HTML around it and the page's settings: the headers editor's key and, on
the demo, the example tabs and the role switch's keys.

``serve --demo`` sets ``CRMGRAPH_GRAPHIQL_EXAMPLES`` (open with the example
tabs) and, bound to a loopback address only, ``CRMGRAPH_GRAPHIQL_DEMO_KEYS``
(JSON ``{role: key}`` for the admin, agent and viewer). A key reaches the page
only through ``page(token=...)``, which the app passes for a browser on this
machine alone (:func:`is_local_browser`).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path

import orjson

ASSET_FILES = (
    "graphiql.js",
    "graphiql.css",
    "editor.worker.js",
    "json.worker.js",
    "graphql.worker.js",
)
# one tab per file, in name order; NAME.json beside NAME.graphql holds its variables
EXAMPLES_DIR = Path(__file__).parent / "static" / "graphiql-examples"
DEMO_KEYS_VARIABLE = "CRMGRAPH_GRAPHIQL_DEMO_KEYS"
EXAMPLES_VARIABLE = "CRMGRAPH_GRAPHIQL_EXAMPLES"

DEFAULT_QUERY = """# Welcome to crmgraph. Press the play button (Ctrl-Enter) to run.
{
  customers(first: 5) {
    edges { node { id name kind stage phase email roles { kind stage } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


def assets_dir() -> Path:
    configured = os.environ.get("CRMGRAPH_GRAPHIQL_ASSETS")
    if configured:
        return Path(configured)
    return Path(__file__).parent / "static" / "vendor" / "graphiql"


def missing_assets(directory: Path | None = None) -> list[str]:
    directory = directory or assets_dir()
    return [name for name in ASSET_FILES if not (directory / name).is_file()]


def example_tabs() -> list[dict[str, str]]:
    """The example operations, one tab per file: ``{query, variables}``."""
    tabs = []
    for path in sorted(EXAMPLES_DIR.glob("*.graphql")):
        variables = path.with_suffix(".json")
        tabs.append(
            {
                "query": path.read_text(),
                "variables": variables.read_text().strip() if variables.exists() else "",
            }
        )
    return tabs


def demo_keys_from_env() -> dict[str, str]:
    raw = os.environ.get(DEMO_KEYS_VARIABLE)
    if not raw:
        return {}
    keys = orjson.loads(raw)
    if not isinstance(keys, dict) or not all(isinstance(v, str) for v in keys.values()):
        raise ValueError(f"{DEMO_KEYS_VARIABLE} must be a JSON object of role: key")
    return keys


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>crmgraph · GraphiQL</title>
<link rel="stylesheet" href="{prefix}/graphiql.css">
</head>
<body>
<div id="graphiql">Loading GraphiQL…</div>
<script id="crmgraph-graphiql" type="application/json">{config}</script>
<script src="{prefix}/graphiql.js"></script>
</body>
</html>
"""

MISSING_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>crmgraph · GraphiQL</title></head>
<body><h1>GraphiQL assets are not installed</h1>
<p>Missing: {missing}. Run <code>scripts/install-graphiql</code> (it builds them from the
npm registry's packages) or set <code>CRMGRAPH_GRAPHIQL_ASSETS</code>. The API at
<code>/graphql</code> works without them.</p></body></html>
"""


# set by a reverse proxy: the browser is elsewhere, whatever the peer address says
FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-forwarded-host", "x-real-ip")


def is_loopback_address(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def is_loopback_name(host_header: str) -> bool:
    """``Host`` names this machine (``localhost``, ``127.0.0.1:8000``, ``[::1]:8000``)."""
    host = host_header.strip().lower()
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    return host == "localhost" or host.endswith(".localhost") or is_loopback_address(host)


def is_local_browser(client_host: str | None, headers: Mapping[str, str]) -> bool:
    """A browser on this machine talking to this server directly: the peer
    is a loopback address, no proxy forwarded the request, and the page is
    asked for by a loopback name (a page of another site that rebinds its
    DNS name to 127.0.0.1 sends that name, not ours)."""
    return (
        client_host is not None
        and is_loopback_address(client_host)
        and not any(name in headers for name in FORWARDING_HEADERS)
        and is_loopback_name(headers.get("host", ""))
    )


def page(
    prefix: str = "/graphiql-assets",
    token: str | None = None,
    demo_keys: Mapping[str, str] | None = None,
    examples: bool | None = None,
) -> str:
    """The GraphiQL page. ``token`` (the demo admin key, for a local browser
    only) starts the headers editor; the role switch gets ``demo_keys`` only
    beside it, so no path hands a key to a page that was given none."""
    missing = missing_assets()
    if missing:
        return MISSING_PAGE.format(missing=", ".join(missing))
    keys: dict[str, str] = {}
    if token:
        given = demo_keys if demo_keys is not None else demo_keys_from_env()
        keys = {"admin": token} | {role: k for role, k in given.items() if role != "admin"}
    if examples is None:
        examples = os.environ.get(EXAMPLES_VARIABLE, "") not in ("", "0")
    config = {
        "assets": prefix,
        "keys": keys,
        "defaultQuery": DEFAULT_QUERY,
        "tabs": example_tabs() if examples else [],
    }
    # "</" escaped: the JSON sits in a <script> element
    text = orjson.dumps(config).decode().replace("</", "<\\/")
    return PAGE.format(prefix=prefix, config=text)
