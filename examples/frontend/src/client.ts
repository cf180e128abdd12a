// A typed GraphQL client in a page of code: queries and mutations over HTTP,
// subscriptions over graphql-ws. Each operation is sent as the exact text of
// the persisted-documents manifest, so the same build runs against an
// ordinary crmgraph and one in trusted-documents mode (which runs only the
// manifest's documents, recognised by their SHA-256).
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { createClient, type Client, type ClientOptions } from "graphql-ws";
import manifest from "./gql/persisted-documents.json" with { type: "json" };

export interface GraphQLError {
  message: string;
  extensions?: { code?: string };
}

export class RequestFailed extends Error {
  constructor(readonly errors: GraphQLError[]) {
    super(errors.map((e) => e.message).join("; "));
  }
}

type Persisted = { __meta__?: { hash?: string } };

function text(document: TypedDocumentNode<unknown, never> | Persisted): string {
  const hash = (document as Persisted).__meta__?.hash;
  const found = hash ? (manifest as Record<string, string>)[hash] : undefined;
  if (!found) throw new Error("the operation is not in the persisted-documents manifest: run npm run codegen");
  return found;
}

export interface Options {
  /** the GraphQL endpoint, e.g. http://127.0.0.1:8000/graphql */
  url: string;
  /** an API key (crmgraph keys create, or one `serve --demo` prints) */
  apiKey?: string;
  /** a WebSocket class where there is no global one (Node 20: the ws package) */
  webSocketImpl?: unknown;
  /** graphql-ws's event listeners (connected, closed, error...) */
  on?: ClientOptions["on"];
}

export class CrmClient {
  private ws: Client | undefined;

  constructor(private readonly options: Options) {}

  private get authorization(): Record<string, string> {
    return this.options.apiKey ? { Authorization: `Bearer ${this.options.apiKey}` } : {};
  }

  async execute<Result, Variables>(
    document: TypedDocumentNode<Result, Variables>,
    ...[variables]: Variables extends Record<string, never> ? [] : [Variables]
  ): Promise<Result> {
    const response = await fetch(this.options.url, {
      method: "POST",
      headers: { "Content-Type": "application/json", ...this.authorization },
      body: JSON.stringify({ query: text(document), variables }),
    });
    const body = (await response.json()) as { data?: Result; errors?: GraphQLError[] };
    if (body.errors?.length || !body.data) throw new RequestFailed(body.errors ?? []);
    return body.data;
  }

  /** Each event as it arrives; return from the loop to unsubscribe. */
  subscribe<Result, Variables>(
    document: TypedDocumentNode<Result, Variables>,
    variables?: Variables,
  ): AsyncIterableIterator<Result> {
    this.ws ??= createClient({
      url: this.options.url.replace(/^http/, "ws"),
      connectionParams: this.authorization,
      webSocketImpl: this.options.webSocketImpl,
      on: this.options.on,
    });
    const events = this.ws.iterate<Result>({
      query: text(document),
      variables: (variables ?? {}) as Record<string, unknown>,
    });
    return (async function* () {
      for await (const event of events) {
        if (event.errors?.length) throw new RequestFailed(event.errors as GraphQLError[]);
        if (event.data) yield event.data;
      }
    })() as AsyncIterableIterator<Result>;
  }

  async close(): Promise<void> {
    await this.ws?.dispose();
  }
}
