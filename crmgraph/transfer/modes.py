"""The choices an import takes (plain constants: the command line reads them
without loading the importer)."""

COMMIT_MODES = ("all", "batch")
DUPLICATE_MODES = ("skip", "merge", "create")
DEFAULT_BATCH_SIZE = 1000
ENTITIES = ("customers", "contacts", "interactions")
IMPORTABLE = ENTITIES
