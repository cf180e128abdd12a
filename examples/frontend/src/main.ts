// The browser side: a customer list with a search box, a form that logs an
// interaction (showing its userErrors by field), and the live event feed.
// Served by any static server; the endpoint and key come from the page's
// address: index.html?url=http://127.0.0.1:8000/graphql&key=crm_...
import { CrmClient, RequestFailed } from "./client.js";
import { CustomerEvents, ListCustomers, LogInteraction } from "./operations.js";

const params = new URLSearchParams(location.search);
const client = new CrmClient({
  url: params.get("url") ?? `${location.origin}/graphql`,
  apiKey: params.get("key") ?? undefined,
});

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`#${id} is missing from index.html`);
  return found as T;
}

function item(text: string): HTMLLIElement {
  const li = document.createElement("li");
  li.textContent = text;
  return li;
}

async function showCustomers(search: string): Promise<void> {
  const list = element<HTMLUListElement>("customers");
  const select = element<HTMLSelectElement>("customer");
  const { customers } = await client.execute(ListCustomers, { first: 20, search: search || null });
  list.replaceChildren(...customers.nodes.map((c) => item(`${c.name} · ${c.kind} · ${c.stageLabel}`)));
  select.replaceChildren(
    ...customers.nodes.map((c) => Object.assign(document.createElement("option"), { value: c.id, text: c.name })),
  );
}

async function logInteraction(form: HTMLFormElement): Promise<void> {
  const data = new FormData(form);
  const { logInteraction } = await client.execute(LogInteraction, {
    input: {
      customerId: String(data.get("customer")),
      channel: "PHONE",
      direction: "OUTBOUND",
      subject: String(data.get("subject")),
    },
  });
  const errors = logInteraction.userErrors.map((e) => `${e.field ?? "input"}: ${e.message}`);
  element("result").textContent = errors.length
    ? errors.join("\n")
    : `logged ${logInteraction.interaction?.subject ?? ""}`;
}

async function follow(): Promise<void> {
  const feed = element<HTMLUListElement>("events");
  for await (const { customerEvents: event } of client.subscribe(CustomerEvents)) {
    feed.prepend(item(`${event.occurredAt} ${event.type} ${event.customer?.name ?? event.customerId}`));
  }
}

function report(error: unknown): void {
  element("result").textContent = error instanceof RequestFailed || error instanceof Error
    ? error.message
    : String(error);
}

element<HTMLInputElement>("search").addEventListener("input", (event) => {
  showCustomers((event.target as HTMLInputElement).value).catch(report);
});
element<HTMLFormElement>("log").addEventListener("submit", (event) => {
  event.preventDefault();
  logInteraction(event.target as HTMLFormElement).catch(report);
});
showCustomers("").catch(report);
follow().catch(report);
