"""The choices an import takes (plain constants: the command line reads them
without loading the importer)."""

COMMIT_MODES = ("all", "batch")
DUPLICATE_MODES = ("skip", "merge", "create")
DEFAULT_BATCH_SIZE = 1000
# in the order a full export is imported: each names records of those before it
ENTITIES = ("customers", "contacts", "interactions", "needs")
IMPORTABLE = ENTITIES
