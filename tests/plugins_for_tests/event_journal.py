"""A test plugin for a server run as a separate process: appends each event
it is handed to the file named by ``CRMGRAPH_TEST_JOURNAL``, and fails while
a file of the same name plus ``.fail`` exists (a downstream system that is down)."""

from __future__ import annotations

import os
from pathlib import Path

from crmgraph.extension_points import Event
from crmgraph.hookspecs import hookimpl


def journal() -> Path:
    return Path(os.environ["CRMGRAPH_TEST_JOURNAL"])


def write_down(event: Event) -> None:
    path = journal()
    if path.with_name(path.name + ".fail").exists():
        raise ConnectionError("the journal is unavailable")
    with path.open("a") as out:
        out.write(f"{event.id} {event.type} {event.customer_id}\n")


@hookimpl
def crmgraph_event_handlers() -> dict:
    return {"*": write_down}
