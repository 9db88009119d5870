"""The HTTP server of a node's API: uvicorn, with the limits that must hold before a
request reaches the app.

Everything that serves the API for real (``tally node run``, hence ``tally dev``, the
demo and every localnet node; the benchmarks; the tests' ``serve``) builds its server
here, so the limits a test checks are the limits a user runs with.

Invariants (per server, on its event loop; the numbers are :class:`ApiLimits`):

* One IP address holds at most ``connections_per_client`` open connections; a further
  one is answered 429 ``RATE_LIMITED`` and closed at once, before anything is parsed.
* A request head (request line and headers) must arrive within ``header_timeout_s`` of
  the connection opening or of the previous response on it, and must not pass
  ``max_head_bytes``; otherwise 408 (or 431) ``INVALID_REQUEST`` and the connection is
  closed. Half-open connections (slowloris) so last seconds, not for ever. The body's own
  deadline is the app's (:mod:`tally.api.guard`), which knows each route's limit.
* An idle keep-alive connection closes after ``keep_alive_s``; beyond
  ``max_connections`` open connections a new one is answered 503 ``UNAVAILABLE`` and
  closed (a request runs on its connection, so this bounds running requests too;
  uvicorn's own ``limit_concurrency`` is not used: it answers in plain text).
* A request HTTP cannot parse is answered 400 ``INVALID_REQUEST`` in the error shape.
* No WebSocket upgrades: the API has no WebSocket route.

The connection checks live in a subclass of uvicorn's httptools protocol (the one
``uvicorn[standard]`` runs by default), which uvicorn accepts as ``Config(http=...)``;
it overrides only the connection callbacks, not the parsing.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tally.api.app import create_app
from tally.api.limits import ApiLimits
from tally.errors import Code
from tally.node import Node
from tally.supervision.alerts import Alerter

_REASONS = {400: "Bad Request", 408: "Request Timeout", 429: "Too Many Requests",
            431: "Request Header Fields Too Large", 503: "Service Unavailable"}


def raw_error(status: int, code: Code, message: str) -> bytes:
    """A whole HTTP/1.1 error response in the API's shape, closing the connection."""
    body = json.dumps({"code": str(code), "message": message}).encode()
    retry = "retry-after: 1\r\n" if status in (429, 503) else ""
    return (f"HTTP/1.1 {status} {_REASONS[status]}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n{retry}connection: close\r\n\r\n").encode() + body


def guarded_protocol(limits: ApiLimits) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol with the per-client connection cap and the head deadline;
    one class per server, since the count of connections per client is the server's."""
    open_by_client: Counter[str] = Counter()  # touched on the event loop only
    open_in_all = [0]

    class GuardedProtocol(HttpToolsProtocol):
        _peer: str | None = None
        _head_timer: asyncio.TimerHandle | None = None
        #: The request cycle current when the head deadline was armed: while it is still
        #: the current one, the next request's head has not arrived.
        _armed_for: Any = None
        _head_bytes = 0
        _counted = False

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if open_in_all[0] >= limits.max_connections:
                transport.write(raw_error(503, Code.UNAVAILABLE, (
                    f"the node has {limits.max_connections} connections open: try later")))
                transport.close()
                return
            peer = self.client[0] if self.client else None
            if peer is not None:
                if open_by_client[peer] >= limits.connections_per_client:
                    transport.write(raw_error(429, Code.RATE_LIMITED, (
                        f"over {limits.connections_per_client} open connections from "
                        "this address")))
                    transport.close()
                    return
                open_by_client[peer] += 1
                self._peer = peer
            open_in_all[0] += 1
            self._counted = True
            self._arm_head_deadline()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._counted:
                open_in_all[0] -= 1
                self._counted = False
            if self._peer is not None:
                open_by_client[self._peer] -= 1
                if open_by_client[self._peer] <= 0:
                    del open_by_client[self._peer]
                self._peer = None
            self._disarm_head_deadline()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._waiting_for_head():
                self._head_bytes += len(data)
                if self._head_bytes > limits.max_head_bytes:
                    self._refuse(431, f"request head over {limits.max_head_bytes} bytes")

        def send_400_response(self, msg: str) -> None:
            """A request HTTP itself cannot parse: the error shape, not uvicorn's text."""
            self._refuse(400, "invalid HTTP request")

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm_head_deadline()

        def _waiting_for_head(self) -> bool:
            """No request is in progress, and no new head has arrived since arming."""
            cycle = self.cycle
            return (self._head_timer is not None and cycle is self._armed_for
                    and (cycle is None or cycle.response_complete))

        def _arm_head_deadline(self) -> None:
            self._disarm_head_deadline()
            self._armed_for = self.cycle
            self._head_bytes = 0
            self._head_timer = self.loop.call_later(limits.header_timeout_s,
                                                    self._head_deadline_passed)

        def _disarm_head_deadline(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_deadline_passed(self) -> None:
            if self._waiting_for_head():
                self._refuse(408, "no complete request head within "
                                  f"{limits.header_timeout_s:g} s")
            self._head_timer = None

        def _refuse(self, status: int, message: str) -> None:
            self._disarm_head_deadline()
            if not self.transport.is_closing():
                self.transport.write(raw_error(status, Code.INVALID_REQUEST, message))
                self.transport.close()

    return GuardedProtocol


def server_config(app: Any, *, host: str, port: int, limits: ApiLimits,
                  log_level: str = "warning", tls_cert: str | None = None,
                  tls_key: str | None = None) -> uvicorn.Config:
    """uvicorn's configuration for the API, with every connection limit applied; served
    over TLS when given a certificate (PEM, the chain after the leaf) and its key."""
    if (tls_cert is None) != (tls_key is None):
        raise ValueError("TLS needs both a certificate and its key")
    return uvicorn.Config(app, host=host, port=port, log_level=log_level,
                          http=guarded_protocol(limits), ws="none", lifespan="off",
                          timeout_keep_alive=limits.keep_alive_s,
                          h11_max_incomplete_event_size=limits.max_head_bytes,
                          ssl_certfile=tls_cert, ssl_keyfile=tls_key)


def make_server(node: Node, *, host: str, port: int, limits: ApiLimits | None = None,
                log_level: str = "warning", access: str = "open",
                tls_cert: str | None = None, tls_key: str | None = None,
                alerter: Alerter | None = None) -> uvicorn.Server:
    """The node's API server, not yet running (``server.run()`` serves until
    ``server.should_exit``). ``access`` is ``open`` or ``authenticated``
    (:mod:`tally.api.access`); with ``tls_cert`` and ``tls_key`` it serves HTTPS;
    ``alerter``: serve its alerts too."""
    limits = limits or ApiLimits()
    return uvicorn.Server(server_config(create_app(node, limits, access, alerter=alerter),
                                        host=host, port=port, limits=limits,
                                        log_level=log_level, tls_cert=tls_cert,
                                        tls_key=tls_key))
