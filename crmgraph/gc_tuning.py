"""How CPython's cyclic garbage collector runs while a bulk job works.

A full collection walks every object the collector tracks. A started app
holds ~160,000 of them (the GraphQL schema, the catalog, the plugins'
modules), none of which ever becomes garbage, and an import's batches (a
thousand rows, each a dozen dicts, tuples and records) outlive the young
generations and are promoted fast enough that a full collection ran about
once a batch. Importing 20,000 customer rows into the 1,000,000-customer
database spent ~2 s of ~10 s in the collector, on the import's critical path
(``bench.import_cpu``; ``docs/benchmarks.md``).

:func:`bulk_work` freezes what is alive when the job starts (``gc.freeze``:
out of the collector's sight), unless the process froze its start-up
already (a server does, once started: ``crmgraph.app``), and lets the young
generation grow to :data:`BULK_YOUNG_THRESHOLD` container allocations before
it is collected, where CPython's default is 700: a batch's rows are freed by
reference counting long before that. Both are undone when the last bulk job
of the process ends, so nothing it froze stays out of reach: an object that
became cyclic garbage meanwhile is collected then.

Nothing to add from a library: ``gc`` is the whole tool, and this module
only says when to use it. Jobs of one process share the collector, so
overlapping jobs (two imports on one server) are counted: the first in
freezes, the last out restores.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

# container allocations between two collections of the young generation, in a bulk job
BULK_YOUNG_THRESHOLD = 10_000


class _Jobs:
    """The bulk jobs running in this process, the thresholds before the first,
    and whether the first froze what was alive (a started server froze its
    start-up already, crmgraph.app: left as it is)."""

    running = 0
    saved: tuple[int, int, int] = gc.get_threshold()
    froze = False


@contextlib.contextmanager
def bulk_work() -> Iterator[None]:
    """Within: the collector tuned for a bulk job (see the module's docstring)."""
    if _Jobs.running == 0:
        _Jobs.saved = gc.get_threshold()
        _Jobs.froze = gc.get_freeze_count() == 0
        if _Jobs.froze:
            gc.freeze()
        gc.set_threshold(max(BULK_YOUNG_THRESHOLD, _Jobs.saved[0]), *_Jobs.saved[1:])
    _Jobs.running += 1
    try:
        yield
    finally:
        _Jobs.running -= 1
        if _Jobs.running == 0:
            gc.set_threshold(*_Jobs.saved)
            if _Jobs.froze:
                gc.unfreeze()
