// The starter's three operations against a running crmgraph, from Node:
//   npm run smoke -- http://127.0.0.1:8000/graphql   (key in CRMGRAPH_API_KEY)
// Lists customers, logs an interaction with the first (and shows a refused
// one's userErrors), and receives that write's event over graphql-ws. Prints
// one JSON line with what it saw; exits 1 on any failure.
import WebSocket from "ws";
import { CrmClient } from "./client.js";
import { CustomerEvents, ListCustomers, LogInteraction } from "./operations.js";

const EVENT_WAIT_MS = 2000;
const ATTEMPTS = 10;

async function main(url: string, apiKey: string | undefined): Promise<void> {
  let connected!: () => void;
  const isConnected = new Promise<void>((resolve) => (connected = resolve));
  const client = new CrmClient({ url, apiKey, webSocketImpl: WebSocket, on: { connected } });
  try {
    const listed = await client.execute(ListCustomers, { first: 5 });
    const customer = listed.customers.nodes[0];
    if (!customer) throw new Error("the server has no customer this key may see");

    const refused = await client.execute(LogInteraction, {
      input: { customerId: customer.id, channel: "PHONE", direction: "OUTBOUND", subject: "", satisfaction: 9 },
    });
    const codes = refused.logInteraction.userErrors.map((e) => `${e.field}:${e.code}`);
    if (!codes.length) throw new Error("an empty subject and satisfaction 9 were not refused");

    const events = client.subscribe(CustomerEvents);
    const next = events.next();
    await isConnected;
    // The server starts the subscription shortly after the socket is up, with
    // no message saying so: log again until the event of a write arrives.
    let logged: string | undefined;
    let event: Awaited<typeof next> | undefined;
    let attempt = 0;
    for (; attempt < ATTEMPTS && !event; attempt++) {
      const written = await client.execute(LogInteraction, {
        input: { customerId: customer.id, channel: "PHONE", direction: "OUTBOUND", subject: "Starter call" },
      });
      if (written.logInteraction.userErrors.length) {
        throw new Error(JSON.stringify(written.logInteraction.userErrors));
      }
      logged ??= written.logInteraction.interaction?.id;
      event = await Promise.race([next, new Promise<undefined>((r) => setTimeout(r, EVENT_WAIT_MS))]);
    }
    if (!event || event.done) throw new Error("no event arrived over the subscription");
    await events.return?.();
    console.log(JSON.stringify({
      listed: listed.customers.nodes.length,
      customer: customer.name,
      refused: codes,
      logged,
      writes: attempt,
      event: { type: event.value.customerEvents.type, customerId: event.value.customerEvents.customerId },
    }));
  } finally {
    await client.close();
  }
}

const [url] = process.argv.slice(2);
if (!url) {
  console.error("usage: npm run smoke -- http://HOST:PORT/graphql  (API key in CRMGRAPH_API_KEY)");
  process.exit(2);
}
main(url, process.env.CRMGRAPH_API_KEY).catch((error: unknown) => {
  console.error(`smoke: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
