"""crmgraph: a plugin-first CRM GraphQL server."""

__version__ = "0.1.0"
