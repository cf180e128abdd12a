"""GraphiQL served by crmgraph itself, so it works with no internet.

The assets (GraphiQL 3 and React 18 UMD builds, and graphql-ws's browser
build) are installed from the npm registry by ``scripts/install-graphiql`` into
``crmgraph/static/vendor`` (or ``CRMGRAPH_GRAPHIQL_ASSETS``); they are not
committed. GraphiQL's own fetcher speaks only HTTP, so the page brings one
that runs subscriptions over graphql-transport-ws (:data:`FETCHER`).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path

import orjson

ASSET_FILES = (
    "react.production.min.js",
    "react-dom.production.min.js",
    "graphiql.min.js",
    "graphiql.min.css",
    "graphql-ws.min.js",
)


def assets_dir() -> Path:
    configured = os.environ.get("CRMGRAPH_GRAPHIQL_ASSETS")
    if configured:
        return Path(configured)
    return Path(__file__).parent / "static" / "vendor" / "graphiql"


def missing_assets(directory: Path | None = None) -> list[str]:
    directory = directory or assets_dir()
    return [name for name in ASSET_FILES if not (directory / name).is_file()]


# Queries and mutations over HTTP (GraphiQL's fetcher), subscriptions over
# graphql-ws on the same path. A WebSocket cannot carry the Authorization
# header from GraphiQL's headers editor, so it goes in the connection_init
# payload, where the server authenticates WebSockets; one client per distinct
# header value, so editing the key takes effect on the next subscription.
FETCHER = r"""
const httpFetcher = GraphiQL.createFetcher({ url: window.location.pathname });
const scheme = location.protocol === "https:" ? "wss://" : "ws://";
const wsUrl = scheme + location.host + location.pathname;
const wsClients = new Map();
function wsClient(authorization) {
  if (!wsClients.has(authorization)) {
    wsClients.set(authorization, graphqlWs.createClient({
      url: wsUrl,
      lazy: true,
      connectionParams: authorization ? { Authorization: authorization } : {},
    }));
  }
  return wsClients.get(authorization);
}
function header(headers, name) {
  for (const [key, value] of Object.entries(headers || {})) {
    if (key.toLowerCase() === name) return String(value);
  }
  return "";
}
// Read from the text sent, not from GraphiQL's documentAST: GraphiQL parses
// the editor after a short pause, so a run right after typing would see the
// previous document and send a subscription over HTTP.
function isSubscription(params) {
  const text = (params.query || "").replace(/"{3}[\s\S]*?"{3}|"(?:\\.|[^"\\\n])*"|#[^\n]*/g, " ");
  const tokens = text.match(/[{}()]|[_A-Za-z][_0-9A-Za-z]*/g) || [];
  const keywords = ["query", "mutation", "subscription"];
  const operations = [];
  let depth = 0;
  let inDefinition = false;
  tokens.forEach((token, i) => {
    if (token === "{" || token === "(") {
      if (depth === 0 && token === "{") {
        if (!inDefinition) operations.push({ type: "query", name: null });  // { ... } shorthand
        inDefinition = false;
      }
      depth += 1;
    } else if (token === "}" || token === ")") {
      depth -= 1;
    } else if (depth === 0 && !inDefinition) {
      inDefinition = true;
      if (keywords.includes(token)) {
        const next = tokens[i + 1] || "";
        operations.push({ type: token, name: /^[_A-Za-z]/.test(next) ? next : null });
      }
    }
  });
  const chosen = params.operationName
    ? operations.find((operation) => operation.name === params.operationName)
    : operations[0];
  return !!chosen && chosen.type === "subscription";
}
function fetcher(params, opts) {
  if (!isSubscription(params)) return httpFetcher(params, opts);
  return wsClient(header(opts && opts.headers, "authorization")).iterate({
    query: params.query,
    variables: params.variables,
    operationName: params.operationName,
  });
}
"""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>crmgraph · GraphiQL</title>
<link rel="stylesheet" href="{prefix}/graphiql.min.css">
<style>html, body, #graphiql {{ height: 100%; margin: 0; }}</style>
</head>
<body>
<div id="graphiql">Loading GraphiQL…</div>
<script src="{prefix}/react.production.min.js"></script>
<script src="{prefix}/react-dom.production.min.js"></script>
<script src="{prefix}/graphiql.min.js"></script>
<script src="{prefix}/graphql-ws.min.js"></script>
<script>{fetcher}
  const defaultQuery = `# Welcome to crmgraph. Press the play button (Ctrl-Enter) to run.
{{
  customers(first: 5) {{
    edges {{ node {{ id name kind stage phase email }} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}
`;
  const defaultHeaders = {headers};
  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {{
      fetcher, defaultQuery, defaultHeaders, defaultEditorToolsVisibility: true
    }})
  );
</script>
</body>
</html>
"""

MISSING_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>crmgraph · GraphiQL</title></head>
<body><h1>GraphiQL assets are not installed</h1>
<p>Missing: {missing}. Run <code>scripts/install-graphiql</code> (it fetches them from the
npm registry) or set <code>CRMGRAPH_GRAPHIQL_ASSETS</code>. The API at <code>/graphql</code>
works without them.</p></body></html>
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


def page(prefix: str = "/graphiql-assets", token: str | None = None) -> str:
    """The GraphiQL page; ``token`` (the demo key of ``serve --demo``) is put in
    its headers editor so a first-time user can run queries at once."""
    missing = missing_assets()
    if missing:
        return MISSING_PAGE.format(missing=", ".join(missing))
    headers = orjson.dumps({"Authorization": f"Bearer {token}"}).decode() if token else ""
    # a JS string literal holding the JSON text GraphiQL expects for its headers editor
    return PAGE.format(prefix=prefix, headers=orjson.dumps(headers).decode(), fetcher=FETCHER)
