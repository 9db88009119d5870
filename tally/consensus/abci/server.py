"""An asyncio ABCI 2.0 socket server (TCP or unix socket) for CometBFT v0.38.

Connection model.  CometBFT opens four connections (consensus, mempool, query/info,
snapshot) and sends uvarint-framed `Request` messages on each.  It pipelines: the
mempool connection may send hundreds of CheckTx before a Flush, and it waits for the
answers only after the Flush.  So per connection we read every complete frame that has
arrived, answer in order into a write buffer, and put the buffer on the wire when a
Flush comes (or the buffer grows large).

Threading.  Application methods run on the event loop, one at a time, across all
connections, like CometBFT's own Go socket server (which holds one mutex around the
app).  The application therefore needs no locks, and CometBFT's own guarantees about
call order (for example: no CheckTx while Commit runs) carry over unchanged.  A worker
thread would buy nothing under the GIL but races.  What we do add is fairness: after
each request, if more requests are already queued on that connection, the handler
yields to the loop, so a burst of CheckTx on the mempool connection cannot hold back a
FinalizeBlock waiting on the consensus connection by more than one CheckTx per turn.

Errors.  If an application method raises, the app state may be half-updated, and
CometBFT treats any ABCI failure as fatal anyway.  The server logs the traceback,
sends `ResponseException` (the protocol's error message, never a made-up answer),
closes the connection and, by default, stops entirely; `serve_forever` then raises
`ApplicationError`.  CometBFT, on losing the connection, logs "connection terminated.
Did the application crash?" and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError

from tally.consensus.abci.application import Application
from tally.consensus.abci.proto_gen.tendermint.abci import types_pb2 as abci
from tally.consensus.abci.wire import FramingError, encode_uvarint, split_frames

log = logging.getLogger("tally.abci")

#: Request oneof field -> (Application method, Response oneof field).
DISPATCH: dict[str, tuple[str, str]] = {
    "info": ("info", "info"),
    "query": ("query", "query"),
    "check_tx": ("check_tx", "check_tx"),
    "init_chain": ("init_chain", "init_chain"),
    "prepare_proposal": ("prepare_proposal", "prepare_proposal"),
    "process_proposal": ("process_proposal", "process_proposal"),
    "extend_vote": ("extend_vote", "extend_vote"),
    "verify_vote_extension": ("verify_vote_extension", "verify_vote_extension"),
    "finalize_block": ("finalize_block", "finalize_block"),
    "commit": ("commit", "commit"),
    "list_snapshots": ("list_snapshots", "list_snapshots"),
    "offer_snapshot": ("offer_snapshot", "offer_snapshot"),
    "load_snapshot_chunk": ("load_snapshot_chunk", "load_snapshot_chunk"),
    "apply_snapshot_chunk": ("apply_snapshot_chunk", "apply_snapshot_chunk"),
}

_READ_CHUNK = 1 << 16
#: While a connection has requests queued, yield to the other connections after this
#: many: often enough that a burst of CheckTx delays a FinalizeBlock by well under a
#: millisecond, rarely enough that an event-loop turn is not paid per request.
_YIELD_EVERY = 8
#: ... and after this long in one connection's requests, whatever their count: one
#: CheckTx of a 250-transaction bundle takes tens of milliseconds, so eight of them
#: would hold a ProcessProposal back for a large part of a block interval.
_YIELD_AFTER_S = 0.002
_WRITE_HIGH_WATER = 1 << 20  # write out without waiting for Flush past this many bytes


class ApplicationError(RuntimeError):
    """An application method raised; the server stopped instead of answering."""


@dataclass
class ConnectionStats:
    """What one CometBFT connection asked for; the first non-trivial request names it."""

    peer: str
    requests: int = 0
    kinds: dict[str, int] = field(default_factory=dict)

    @property
    def role(self) -> str:
        kinds = self.kinds
        if "check_tx" in kinds:
            return "mempool"
        if kinds.keys() & {"init_chain", "finalize_block", "commit", "prepare_proposal"}:
            return "consensus"
        if kinds.keys() & {"list_snapshots", "offer_snapshot"}:
            return "snapshot"
        if kinds.keys() & {"info", "query"}:
            return "query"
        return "unknown"


def parse_address(address: str) -> tuple[str, str | tuple[str, int]]:
    """Split "tcp://host:port" / "unix:///path" (CometBFT's proxy_app syntax)."""
    if address.startswith("unix://"):
        return "unix", address[len("unix://") :]
    rest = address[len("tcp://") :] if address.startswith("tcp://") else address
    host, _, port = rest.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"bad ABCI address {address!r}; want tcp://host:port or unix:///path")
    return "tcp", (host.strip("[]"), int(port))


class ABCIServer:
    """Serve one `Application` to CometBFT over the ABCI socket protocol.

    `address` is CometBFT's proxy_app form: ``tcp://127.0.0.1:26658`` (port 0 picks a
    free port; read `address` after `start`) or ``unix:///path/app.sock``.
    """

    def __init__(
        self,
        app: Application,
        address: str = "tcp://127.0.0.1:26658",
        *,
        stop_on_error: bool = True,
    ) -> None:
        self.app = app
        self._requested = address
        self.address = address
        self.stop_on_error = stop_on_error
        self.error: BaseException | None = None
        self.connections: list[ConnectionStats] = []
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._stopped: asyncio.Event | None = None
        self._stop_task: asyncio.Task[None] | None = None
        # Resolve bound methods once: dispatch is on the hot path. Each entry also has the
        # key of the Response field its answer goes in, so an answer is framed by
        # prefixing its own bytes instead of being copied into a Response message.
        self._handlers: dict[str, tuple[Callable[[Any], Any], bytes, bool]] = {
            kind: (getattr(app, meth), response_field_key(out),
                   inspect.iscoroutinefunction(getattr(app, meth)))
            for kind, (meth, out) in DISPATCH.items()
        }

    # --- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        self._stopped = asyncio.Event()
        kind, where = parse_address(self._requested)
        if kind == "unix":
            assert isinstance(where, str)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(where)  # a stale socket file from a crashed run blocks bind()
            self._server = await asyncio.start_unix_server(self._handle, path=where)
            self.address = f"unix://{where}"
        else:
            assert isinstance(where, tuple)
            self._server = await asyncio.start_server(
                self._handle, host=where[0], port=where[1], reuse_address=True
            )
            host, port = self._server.sockets[0].getsockname()[:2]
            self.address = f"tcp://{host}:{port}"
        log.info("ABCI server listening on %s", self.address)

    async def serve_forever(self) -> None:
        """Run until `stop` is called; raise ApplicationError if the app failed."""
        if self._server is None:
            await self.start()
        assert self._stopped is not None
        await self._stopped.wait()
        if self.error is not None:
            raise ApplicationError(f"application failed: {self.error!r}") from self.error

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for w in list(self._writers):
            w.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
        kind, where = parse_address(self._requested)
        if kind == "unix":
            with contextlib.suppress(FileNotFoundError):
                os.unlink(where)  # type: ignore[arg-type]
        if self._stopped is not None:
            self._stopped.set()

    # --- per connection --------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = str(writer.get_extra_info("peername") or "unix")
        stats = ConnectionStats(peer=peer)
        self.connections.append(stats)
        self._writers.add(writer)
        log.info("ABCI connection from %s", peer)
        inbuf = bytearray()
        out = bytearray()
        turn_began = time.monotonic()
        try:
            while True:
                data = await reader.read(_READ_CHUNK)
                if not data:
                    log.info("ABCI connection %s (%s) closed by CometBFT", peer, stats.role)
                    break
                inbuf += data
                turn_began = time.monotonic()  # the read was a turn for the others
                frames, used = split_frames(inbuf)
                del inbuf[:used]
                for i, raw in enumerate(frames):
                    req = abci.Request.FromString(raw)
                    kind = req.WhichOneof("value")
                    stats.requests += 1
                    stats.kinds[kind or "?"] = stats.kinds.get(kind or "?", 0) + 1
                    if kind == "flush":
                        out += _FLUSH_FRAME
                        writer.write(out)
                        out.clear()
                        await writer.drain()
                        continue
                    if kind == "echo":
                        payload = abci.Response(
                            echo=abci.ResponseEcho(message=req.echo.message)
                        ).SerializeToString()
                    else:
                        payload = await self._call(kind, req)
                        if payload is None:  # application failed: exception frame, then close
                            return await self._fail(writer, out)
                    out += encode_uvarint(len(payload))
                    out += payload
                    if len(out) > _WRITE_HIGH_WATER:
                        writer.write(out)
                        out.clear()
                        await writer.drain()
                    if i + 1 < len(frames) and (i % _YIELD_EVERY == _YIELD_EVERY - 1 or
                                                time.monotonic() - turn_began > _YIELD_AFTER_S):
                        # Let other connections' requests in: the first pass through the
                        # loop reads their sockets, the second runs their handlers.
                        await asyncio.sleep(0)
                        await asyncio.sleep(0)
                        turn_began = time.monotonic()
        except (FramingError, DecodeError) as e:
            log.error("ABCI connection %s: not an ABCI message (%s); closing", peer, e)
        except (ConnectionError, asyncio.IncompleteReadError) as e:
            log.warning("ABCI connection %s lost: %s", peer, e)
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _call(self, kind: str | None, req: abci.Request) -> bytes | None:
        """The serialized Response answering ``req``, or None if the application failed."""
        handler = self._handlers.get(kind or "")
        if handler is None:
            self._record_error(ValueError(f"unknown ABCI request {kind!r}"))
            return None
        fn, key, is_async = handler
        try:
            result = fn(getattr(req, kind))  # type: ignore[arg-type]
            if is_async:
                result = await result
            inner = result.SerializeToString()
            return key + encode_uvarint(len(inner)) + inner
        except Exception as e:
            log.exception("ABCI application raised in %s", kind)
            self._record_error(e)
            return None

    def _record_error(self, e: BaseException) -> None:
        if self.error is None:
            self.error = e

    async def _fail(self, writer: asyncio.StreamWriter, out: bytearray) -> None:
        err = abci.Response(exception=abci.ResponseException(error=repr(self.error)))
        payload = err.SerializeToString()
        out += encode_uvarint(len(payload)) + payload
        with contextlib.suppress(Exception):
            writer.write(out)
            await writer.drain()
        self._writers.discard(writer)
        writer.close()
        if self.stop_on_error:
            log.error("ABCI server stopping after application error: %r", self.error)
            # A separate task: stop() waits for connections, this one among them.
            self._stop_task = asyncio.get_running_loop().create_task(self.stop())


def response_field_key(response_field: str) -> bytes:
    """The protobuf key (field number, length-delimited wire type) of a Response field.

    A Response is a oneof of messages, so its encoding is this key, the answer's length
    and the answer's own bytes: the same bytes ``Response(field=answer)`` serializes to.
    """
    number = abci.Response.DESCRIPTOR.fields_by_name[response_field].number
    return encode_uvarint(number << 3 | 2)


_FLUSH_PAYLOAD = abci.Response(flush=abci.ResponseFlush()).SerializeToString()
_FLUSH_FRAME = encode_uvarint(len(_FLUSH_PAYLOAD)) + _FLUSH_PAYLOAD


# --- convenience runners -------------------------------------------------------------


def serve(app: Application, address: str, *, stop_on_error: bool = True) -> None:
    """Blocking entry point for an app process: serve until SIGINT/SIGTERM or app failure."""
    import signal

    async def main() -> None:
        server = ABCIServer(app, address, stop_on_error=stop_on_error)
        await server.start()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(server.stop()))
        await server.serve_forever()

    asyncio.run(main())


class ThreadedServer:
    """An ABCIServer on its own event loop in a daemon thread (tests, embedding).

    Why: a test or a synchronous host program can keep its own control flow while
    CometBFT talks to the app; `stop()` joins cleanly.
    """

    def __init__(self, app: Application, address: str = "tcp://127.0.0.1:0", **kw: Any) -> None:
        self.server = ABCIServer(app, address, **kw)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name="abci-server", daemon=True)
        self._ready = threading.Event()
        self._exc: BaseException | None = None

    @property
    def address(self) -> str:
        return self.server.address

    @property
    def error(self) -> BaseException | None:
        return self.server.error

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            try:
                await self.server.start()
            except BaseException as e:  # surface bind errors to start()
                self._exc = e
                return
            finally:
                self._ready.set()
            with contextlib.suppress(ApplicationError):  # kept in self.server.error
                await self.server.serve_forever()

        asyncio.run(main())

    def start(self, timeout: float = 10.0) -> ThreadedServer:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("ABCI server did not start")
        if self._exc is not None:
            raise self._exc
        return self

    def stop(self, timeout: float = 10.0) -> None:
        loop = self._loop
        if loop is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # loop already closed: server done
                loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self.server.stop()))
        self._thread.join(timeout)

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
