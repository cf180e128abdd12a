// The starter's three operations. `npm run codegen` types each against the
// schema; a schema change that breaks one fails `npm run typecheck` (and CI).
import { graphql } from "./gql/index.js";

export const ListCustomers = graphql(`
  query StarterListCustomers($first: Int!, $search: String) {
    customers(first: $first, filter: { search: $search }) {
      nodes {
        id
        name
        kind
        stageLabel
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

export const LogInteraction = graphql(`
  mutation StarterLogInteraction($input: LogInteractionInput!) {
    logInteraction(input: $input) {
      interaction {
        id
        subject
        occurredAt
      }
      userErrors {
        field
        message
        code
      }
    }
  }
`);

export const CustomerEvents = graphql(`
  subscription StarterCustomerEvents {
    customerEvents {
      type
      customerId
      occurredAt
      customer {
        name
      }
    }
  }
`);
