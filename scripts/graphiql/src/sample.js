// The example tabs' variables name a demo customer by placeholder ("CUSTOMER_ID",
// "CUSTOMER_VERSION"): the examples are also the docs' text, where no real id
// exists. On the demo the page asks the server for a client in its first stage
// (moving it straight to "loyal" is refused, which the stage example shows) and
// puts its id and version in; without a key the placeholders stay, for the
// person to replace.
const SAMPLE = `{ customers(first: 1, filter: {kinds: [CLIENT], stages: ["interest"]}) {
  nodes { id version } } }`;
const PLACEHOLDERS = ["CUSTOMER_ID", "CUSTOMER_VERSION"];

async function sampleCustomer(headers) {
  try {
    const response = await fetch(window.location.pathname, {
      method: "POST",
      headers: { "Content-Type": "application/json", ...JSON.parse(headers) },
      body: JSON.stringify({ query: SAMPLE }),
    });
    const body = await response.json();
    return body.data.customers.nodes[0] || null;
  } catch {
    return null;
  }
}

function replaced(value, customer) {
  if (value === "CUSTOMER_ID") return customer.id;
  if (value === "CUSTOMER_VERSION") return customer.version;
  if (Array.isArray(value)) return value.map((item) => replaced(item, customer));
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, replaced(v, customer)]));
  }
  return value;
}

export async function fillSample(tabs, headers) {
  const texts = tabs.map((tab) => tab.variables || "");
  const wanted = texts.some((text) => PLACEHOLDERS.some((name) => text.includes(name)));
  const customer = wanted && headers ? await sampleCustomer(headers) : null;
  if (!customer) return texts;
  return texts.map((text) =>
    text ? JSON.stringify(replaced(JSON.parse(text), customer), null, 2) : text,
  );
}
