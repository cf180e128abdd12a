"""A TCP proxy on loopback in front of PostgreSQL that counts the statements
its clients send: simple-protocol Query ('Q') and extended-protocol Execute
('E') messages of the frontend/backend protocol, whatever the driver; and the
round trips: each Sync ('S', the end of an extended-protocol batch, after which
the client waits for ReadyForQuery) and each simple Query is one.

It reads the client's side of the stream only as far as the message framing
(a type byte and a length), forwards every byte unchanged, and answers an
SSLRequest or GSSENCRequest itself with 'N' (no encryption), so drivers that
try TLS first fall back to plain text it can read.
"""

from __future__ import annotations

import asyncio
import struct
from collections import Counter
from dataclasses import dataclass, field

from crmgraph.db.write_batch import CHANGES_ROWS

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
QUERY, EXECUTE, SYNC, PARSE, BIND = b"Q", b"E", b"S", b"P", b"B"

# A statement that writes
WRITES = CHANGES_ROWS


@dataclass
class WireCounter:
    """Message types seen from every client since the last ``reset``."""

    messages: Counter[bytes] = field(default_factory=Counter)
    # round trips (Sync and Query messages) of each transaction a client ended
    # with COMMIT, from its BEGIN to its COMMIT, in the order they ended
    transactions: list[int] = field(default_factory=list)
    # the statements that wrote in each of them, in the same order
    writes: list[list[str]] = field(default_factory=list)
    # the round trips outside any transaction that each of them counts (the
    # statement each sent; "" for a statement's preparation)
    loose: list[list[str]] = field(default_factory=list)

    def reset(self) -> None:
        self.messages.clear()
        self.transactions.clear()
        self.writes.clear()
        self.loose.clear()

    def ended(self, trips: int, writes: list[str], loose: list[str]) -> None:
        self.transactions.append(trips)
        self.writes.append(writes)
        self.loose.append(loose)

    def session(self) -> Session:
        """The counter of one client connection."""
        return Session(self)

    @property
    def queries(self) -> int:
        return self.messages[QUERY]

    @property
    def executes(self) -> int:
        return self.messages[EXECUTE]

    @property
    def statements(self) -> int:
        return self.queries + self.executes

    @property
    def syncs(self) -> int:
        return self.messages[SYNC]

    @property
    def round_trips(self) -> int:
        return self.syncs + self.queries


@dataclass
class Session:
    """What one client connection sends: every message counted, and its
    transactions' round trips (a simple Query BEGIN opens one, COMMIT or
    ROLLBACK ends it; a rolled-back one is not listed). A statement that
    writes sent outside BEGIN is a transaction of its own. The round trips
    this connection made outside a transaction since the last one it ended
    (the reads of a transaction that had not sent BEGIN yet, a statement's
    preparation, but also another task's reads on the same pooled
    connection) are counted in the next one that ends, and listed in
    ``WireCounter.loose`` for a caller to sort out."""

    counter: WireCounter
    open_trips: int | None = None
    loose_trips: list[str] = field(default_factory=list)
    prepared: dict[bytes, str] = field(default_factory=dict)
    bound: str = ""
    written: list[str] = field(default_factory=list)

    def see(self, kind: bytes, body: bytes) -> None:
        self.counter.messages[kind] += 1
        text = ""
        if kind == PARSE:
            name, _, rest = body.partition(b"\0")
            self.prepared[name] = rest.partition(b"\0")[0].decode(errors="replace")
        elif kind == BIND:
            name = body.partition(b"\0")[2].partition(b"\0")[0]
            self.bound = self.prepared.get(name, "")
            if WRITES.search(self.bound):
                self.written.append(self.bound)
        elif kind == QUERY:
            text = body.rstrip(b"\0").decode(errors="replace").strip().rstrip(";").upper()
            if text.startswith(("BEGIN", "START TRANSACTION")):
                self.open_trips = 0
                self.written = []
        if kind in (QUERY, SYNC):
            self.round_trip(kind, text)
        if text.startswith(("COMMIT", "ROLLBACK")) and self.open_trips is not None:
            if text.startswith("COMMIT"):
                loose = self.loose_trips
                self.counter.ended(self.open_trips + len(loose), self.written, loose)
            self.open_trips, self.written, self.loose_trips = None, [], []

    def round_trip(self, kind: bytes, text: str) -> None:
        statement, self.bound = (text if kind == QUERY else self.bound), ""
        if self.open_trips is not None:
            self.open_trips += 1
            return
        self.loose_trips.append(statement)
        if kind == SYNC and self.written:
            loose = self.loose_trips
            self.counter.ended(len(loose), self.written, loose)
            self.loose_trips, self.written = [], []


@dataclass
class CountingProxy:
    upstream_host: str
    upstream_port: int
    counter: WireCounter = field(default_factory=WireCounter)
    port: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            server_r, server_w = await asyncio.open_connection(
                self.upstream_host, self.upstream_port
            )
        except OSError:
            client_w.close()
            self._tasks.discard(task)
            return
        back = asyncio.create_task(pipe(server_r, client_w))
        self._tasks.add(back)
        try:
            await self._client_to_server(client_r, client_w, server_w)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            server_w.close()
            back.cancel()
            await asyncio.gather(back, return_exceptions=True)
            client_w.close()
            self._tasks.discard(back)
            self._tasks.discard(task)

    async def _client_to_server(
        self,
        client_r: asyncio.StreamReader,
        client_w: asyncio.StreamWriter,
        server_w: asyncio.StreamWriter,
    ) -> None:
        # start-up phase: untyped messages (length, code, ...)
        while True:
            head = await client_r.readexactly(8)
            length, code = struct.unpack("!II", head)
            rest = await client_r.readexactly(length - 8)
            if code in (SSL_REQUEST, GSSENC_REQUEST):
                client_w.write(b"N")
                await client_w.drain()
                continue
            server_w.write(head + rest)
            await server_w.drain()
            break
        # typed messages: a type byte, then a length that counts itself
        session = self.counter.session()
        while True:
            head = await client_r.readexactly(5)
            kind, length = head[:1], struct.unpack("!I", head[1:])[0]
            body = await client_r.readexactly(length - 4)
            session.see(kind, body)
            server_w.write(head + body)
            await server_w.drain()


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()
