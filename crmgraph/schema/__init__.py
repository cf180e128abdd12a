"""The GraphQL schema, assembled at start-up from the plugin catalog."""
