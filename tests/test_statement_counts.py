"""No N+1: a nested list costs the same fixed number of SQL statements for one
customer as for a page of many (counted by the server, not timed)."""

from __future__ import annotations

from tests.conftest import LiveServer

ALIASES_PER_REQUEST = 25  # under the server's alias limit
# A page of 40 customers against one: a statement per customer or per relation
# row shows at any page size over one, and the loaders take a whole batch at
# once (crmgraph.schema.dataloader, no max_batch_size), so no batch limit hides
# under 100 that 40 would miss. Each customer takes five writes to seed (~20 ms
# each on SQLite): 100 of them took 10.7 s.
MANY = 40


def mutate_in_batches(server: LiveServer, parts: list[str]) -> dict:
    """Aliased mutations, a few per request so each stays under the query limits."""
    out: dict = {}
    for start in range(0, len(parts), ALIASES_PER_REQUEST):
        chunk = parts[start : start + ALIASES_PER_REQUEST]
        out |= server.gql("mutation {\n" + "\n".join(chunk) + "\n}")
    return out


def bulk(server: LiveServer, template: str, count: int) -> dict:
    return mutate_in_batches(server, [template.format(i=i) for i in range(count)])


def seed(server: LiveServer, count: int) -> list[str]:
    created = bulk(
        server,
        'c{i}: createCustomer(input: {{kind: CLIENT, name: "Customer {i:03d}"}}) '
        "{{ customer {{ id }} userErrors {{ message }} }}",
        count,
    )
    ids = [created[f"c{i}"]["customer"]["id"] for i in range(count)]
    parts = []
    for i, cid in enumerate(ids):
        parts.append(
            f'a{i}: addContact(input: {{customerId: "{cid}", name: "Person {i}"}}) '
            "{ userErrors { message } }"
        )
        for j in range(2):
            parts.append(
                f'i{i}_{j}: logInteraction(input: {{customerId: "{cid}", channel: EMAIL, '
                f'direction: INBOUND, subject: "Hello {j}"}}) {{ userErrors {{ message }} }}'
            )
        parts.append(
            f'n{i}: recordNeed(input: {{customerId: "{cid}", title: "Need {i}"}}) '
            "{ userErrors { message } }"
        )
    out = mutate_in_batches(server, parts)
    assert all(not payload["userErrors"] for payload in out.values())
    return ids


NESTED = """query($first: Int) { customers(first: $first) { edges { node {
  id name stage
  contacts { name }
  interactions(first: 5) { edges { node { subject channel } } }
  needs { title status }
} } } }"""

EVERYTHING = """query($first: Int) { customers(first: $first) { totalCount edges { node {
  id name owner { name }
  contacts { name }
  interactions(first: 5) { edges { node { subject } } pageInfo { hasNextPage } }
  needs { title }
  stageHistory { toStage }
  relationships { kind fromCustomer { name } toCustomer { name } }
} } } }"""


def test_nested_list_costs_a_fixed_number_of_statements(server: LiveServer) -> None:
    seed(server, MANY)
    one = server.statements(NESTED, {"first": 1})
    many = server.statements(NESTED, {"first": MANY})
    # compiled (crmgraph.compiled): one statement builds the whole answer
    assert one == many == 1
    page = server.gql(NESTED, {"first": MANY})["customers"]["edges"]
    assert len(page) == MANY
    assert all(len(e["node"]["interactions"]["edges"]) == 2 for e in page)
    assert all(len(e["node"]["contacts"]) == 1 for e in page)

    # relationships are resolved in Python over the compiled page: one
    # statement builds the rest, one batch loads the relationships (the
    # customers at either end come from the page, primed in the DataLoader,
    # or in one more batch when present elsewhere)
    assert (
        server.statements(EVERYTHING, {"first": 1})
        == server.statements(EVERYTHING, {"first": MANY})
        == 2
    )


def test_node_lookups_batch(server: LiveServer) -> None:
    ids = seed(server, 10)
    query = (
        "query($ids: [ID!]!) { nodes(ids: $ids) { id ... on Customer { name contacts { name } } "
        "... on Contact { name } } }"
    )
    # customers' IDs only: compiled, one statement
    assert server.statements(query, {"ids": ids[:1]}) == server.statements(query, {"ids": ids}) == 1
    # with another type's ID the resolvers answer: a batch per type and relation
    contact = server.gql(
        "query($id: ID!) { customer(id: $id) { contacts { id } } }", {"id": ids[0]}
    )["customer"]["contacts"][0]["id"]
    one, ten = ({"ids": [*some, contact]} for some in (ids[:1], ids))
    assert server.statements(query, one) == server.statements(query, ten) == 3
