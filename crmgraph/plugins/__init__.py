"""Built-in plugins. Each module registers exactly as a partner's package would."""
