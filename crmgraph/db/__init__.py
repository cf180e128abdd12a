"""Data layer: piccolo tables, engine set-up, migrations, queries."""
