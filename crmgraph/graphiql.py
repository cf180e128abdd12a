"""GraphiQL served by crmgraph itself, so it works with no internet.

The assets (GraphiQL 3 and React 18 UMD builds) are installed from the npm
registry by ``scripts/install-graphiql`` into ``crmgraph/static/vendor`` (or
``CRMGRAPH_GRAPHIQL_ASSETS``); they are not committed.
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson

ASSET_FILES = (
    "react.production.min.js",
    "react-dom.production.min.js",
    "graphiql.min.js",
    "graphiql.min.css",
)


def assets_dir() -> Path:
    configured = os.environ.get("CRMGRAPH_GRAPHIQL_ASSETS")
    if configured:
        return Path(configured)
    return Path(__file__).parent / "static" / "vendor" / "graphiql"


def missing_assets(directory: Path | None = None) -> list[str]:
    directory = directory or assets_dir()
    return [name for name in ASSET_FILES if not (directory / name).is_file()]


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
<script>
  const fetcher = GraphiQL.createFetcher({{ url: window.location.pathname }});
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


def page(prefix: str = "/graphiql-assets", token: str | None = None) -> str:
    """The GraphiQL page; ``token`` (the demo key of ``serve --demo``) is put in
    its headers editor so a first-time user can run queries at once."""
    missing = missing_assets()
    if missing:
        return MISSING_PAGE.format(missing=", ".join(missing))
    headers = orjson.dumps({"Authorization": f"Bearer {token}"}).decode() if token else ""
    # a JS string literal holding the JSON text GraphiQL expects for its headers editor
    return PAGE.format(prefix=prefix, headers=orjson.dumps(headers).decode())
