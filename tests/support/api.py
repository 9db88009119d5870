"""Serving a node's API on a loopback port, as a real client meets it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from tally.api.limits import ApiLimits
from tally.api.server import make_server, server_config
from tally.node import Node
from tally.supervision.alerts import Alerter


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(node: Node, limits: ApiLimits | None = None, port: int | None = None, *,
          access: str = "open", tls: tuple[Path, Path] | None = None,
          alerter: Alerter | None = None) -> Iterator[str]:
    """The node's API on a loopback port (``port``, or a free one), served as ``tally node
    run`` serves it (uvicorn in a thread, with the same connection limits); yields its URL.
    ``access``: ``open`` or ``authenticated``; ``tls``: (certificate, key) files to serve
    HTTPS with."""
    port = port or free_port()
    cert, key = (None, None) if tls is None else (str(tls[0]), str(tls[1]))
    with _running(make_server(node, host="127.0.0.1", port=port, limits=limits,
                              log_level="error", access=access, tls_cert=cert,
                              tls_key=key, alerter=alerter), port,
                  https=tls is not None) as url:
        yield url


@contextmanager
def serve_app(app: Any) -> Iterator[str]:
    """Any ASGI app (a witness, say) behind the API's guarded server configuration."""
    port = free_port()
    config = server_config(app, host="127.0.0.1", port=port, limits=ApiLimits(),
                           log_level="error")
    with _running(uvicorn.Server(config), port) as url:
        yield url


@contextmanager
def _running(server: uvicorn.Server, port: int, https: bool = False) -> Iterator[str]:
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"{'https' if https else 'http'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(5)
