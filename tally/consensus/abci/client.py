"""A small blocking ABCI socket client: talk to an app the way CometBFT does.

For tests, benchmarks and debugging an app without a node (CometBFT's ``abci-cli``
plays this role in Go).  It pipelines like CometBFT: `send` queues requests, `flush`
sends a Flush and collects every answer up to it.
"""

from __future__ import annotations

import socket

from tally.consensus.abci.proto_gen.tendermint.abci import types_pb2 as abci
from tally.consensus.abci.server import parse_address
from tally.consensus.abci.wire import decode_uvarint, frame


class ABCIClosed(ConnectionError):
    """The app closed the connection (after a ResponseException, for instance)."""


class ABCIClient:
    def __init__(self, address: str, timeout: float = 10.0) -> None:
        kind, where = parse_address(address)
        if kind == "unix":
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.settimeout(timeout)
            self.sock.connect(where)
        else:
            assert isinstance(where, tuple)
            self.sock = socket.create_connection(where, timeout=timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buf = bytearray()
        self._out: list[bytes] = []

    def send(self, *reqs: abci.Request) -> None:
        """Queue requests (written on `flush`, or at once with `send_now`)."""
        self._out.extend(frame(r.SerializeToString()) for r in reqs)

    def send_now(self) -> None:
        if self._out:
            self.sock.sendall(b"".join(self._out))
            self._out.clear()

    def recv(self) -> abci.Response:
        """The next response; ABCIClosed if the app hung up."""
        while True:
            head = decode_uvarint(self._buf)
            if head is not None and head[1] + head[0] <= len(self._buf):
                size, start = head
                raw = bytes(self._buf[start : start + size])
                del self._buf[: start + size]
                return abci.Response.FromString(raw)
            data = self.sock.recv(1 << 16)
            if not data:
                raise ABCIClosed("ABCI connection closed by the application")
            self._buf += data

    def flush(self) -> list[abci.Response]:
        """Send queued requests plus Flush; return their responses (Flush's dropped)."""
        self.send(abci.Request(flush=abci.RequestFlush()))
        self.send_now()
        out = []
        while True:
            r = self.recv()
            if r.WhichOneof("value") == "flush":
                return out
            out.append(r)

    def call(self, req: abci.Request) -> abci.Response:
        """One request, flushed: what CometBFT's synchronous calls do."""
        self.send(req)
        (resp,) = self.flush()
        return resp

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> ABCIClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
