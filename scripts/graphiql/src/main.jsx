// crmgraph's GraphiQL page: GraphiQL 5 with the explorer, docs and history
// plugins, subscriptions over graphql-ws, the demo's example tabs and role
// switch. The server writes the page's settings as JSON into
// <script id="crmgraph-graphiql" type="application/json">; see crmgraph/graphiql.py.
import "graphiql/style.css";
import "@graphiql/plugin-explorer/style.css";
import "./page.css";
import { createRoot } from "react-dom/client";
import { GraphiQL, HISTORY_PLUGIN } from "graphiql";
import { explorerPlugin } from "@graphiql/plugin-explorer";
import { useGraphiQL } from "@graphiql/react";
import { crmgraphFetcher } from "./fetcher.js";
import { RoleSwitch, bearer } from "./roles.jsx";
import { fillSample } from "./sample.js";

const config = JSON.parse(document.getElementById("crmgraph-graphiql").textContent);

// Monaco runs its language services in web workers, built beside this bundle.
globalThis.MonacoEnvironment = {
  getWorker(_id, label) {
    const name = label === "json" ? "json" : label === "graphql" ? "graphql" : "editor";
    return new Worker(`${config.assets}/${name}.worker.js`);
  },
};

// The editors, for the browser test (tests/test_graphiql_browser.py) to read
// the answer whole: Monaco puts only the visible lines in the DOM.
function ExposeEditors() {
  // one selector per editor: a selector returning a new object would re-render forever
  const query = useGraphiQL((state) => state.queryEditor);
  const variables = useGraphiQL((state) => state.variableEditor);
  const headers = useGraphiQL((state) => state.headerEditor);
  const response = useGraphiQL((state) => state.responseEditor);
  // the operations GraphiQL parsed from the editor (after a pause): the play
  // button runs at once only when there is one, else it opens a menu
  const parsed = useGraphiQL((state) => state.operations);
  const operations = (parsed || []).map((operation) => operation.name?.value ?? null);
  window.crmgraphEditors = { query, variables, headers, response, operations };
  return null;
}

async function start() {
  const fetcher = crmgraphFetcher(window.location.pathname);
  const headers = bearer(config.keys.admin);
  const variables = await fillSample(config.tabs, headers);
  const defaultTabs = config.tabs.map((tab, i) => ({
    query: tab.query,
    variables: variables[i],
    headers,
  }));
  const plugins = [HISTORY_PLUGIN, explorerPlugin({ showAttribution: false })];
  const roles = Object.keys(config.keys).length > 1;
  createRoot(document.getElementById("graphiql")).render(
    <GraphiQL
      fetcher={fetcher}
      plugins={plugins}
      defaultQuery={config.defaultQuery}
      defaultHeaders={headers}
      defaultTabs={defaultTabs.length ? defaultTabs : undefined}
      defaultEditorToolsVisibility={true}
    >
      <GraphiQL.Logo>
        {roles ? <RoleSwitch keys={config.keys} /> : null}
        <span className="crmgraph-logo">crmgraph</span>
        <ExposeEditors />
      </GraphiQL.Logo>
    </GraphiQL>,
  );
}

start();
