"""Deliberately faulty plugins, loaded by name in tests (``plugins=(...)``)."""
