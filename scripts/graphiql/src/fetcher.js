// Queries and mutations over HTTP, subscriptions over graphql-ws on the same
// path. A WebSocket cannot carry the Authorization header from GraphiQL's
// headers editor, so it goes in the connection_init payload, where the server
// authenticates WebSockets; one client per distinct header value, so a new key
// (typed, or chosen with the role switch) takes effect on the next subscription.
import { createGraphiQLFetcher } from "@graphiql/toolkit";
import { createClient } from "graphql-ws";

const KEYWORDS = ["query", "mutation", "subscription"];

function header(headers, name) {
  for (const [key, value] of Object.entries(headers || {})) {
    if (key.toLowerCase() === name) return String(value);
  }
  return "";
}

// Read from the text sent, not from GraphiQL's documentAST: GraphiQL parses the
// editor after a short pause, so a run right after typing would see the previous
// document and send a subscription over HTTP.
export function isSubscription(params) {
  const text = (params.query || "").replace(/"{3}[\s\S]*?"{3}|"(?:\\.|[^"\\\n])*"|#[^\n]*/g, " ");
  const tokens = text.match(/[{}()]|[_A-Za-z][_0-9A-Za-z]*/g) || [];
  const operations = [];
  let depth = 0;
  let inDefinition = false;
  tokens.forEach((token, i) => {
    if (token === "{" || token === "(") {
      if (depth === 0 && token === "{") {
        if (!inDefinition) operations.push({ type: "query", name: null }); // { ... } shorthand
        inDefinition = false;
      }
      depth += 1;
    } else if (token === "}" || token === ")") {
      depth -= 1;
    } else if (depth === 0 && !inDefinition) {
      inDefinition = true;
      if (KEYWORDS.includes(token)) {
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

export function crmgraphFetcher(path) {
  const httpFetcher = createGraphiQLFetcher({ url: path });
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const wsUrl = scheme + location.host + path;
  const clients = new Map();
  function wsClient(authorization) {
    if (!clients.has(authorization)) {
      clients.set(authorization, createClient({
        url: wsUrl,
        lazy: true,
        connectionParams: authorization ? { Authorization: authorization } : {},
      }));
    }
    return clients.get(authorization);
  }
  return (params, opts) => {
    if (!isSubscription(params)) return httpFetcher(params, opts);
    return wsClient(header(opts && opts.headers, "authorization")).iterate({
      query: params.query,
      variables: params.variables,
      operationName: params.operationName,
    });
  };
}
