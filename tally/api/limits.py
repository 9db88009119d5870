"""What one HTTP API of a node allows a client: sizes, times, connections and queries.

Every limit is a node setting, not a chain parameter: nodes of one chain may choose
differently, and nothing here changes what a block contains. The defaults are safe for a
node on an open network; ``tally node run`` exposes the ones an operator tunes. Each
limit answers in the ``{code, message}`` shape with the status docs/api.md ("Limits")
lists, and the reasons are in docs/decisions/0021-api-limits.md.

A *client* is the peer's IP address as the socket reports it. Behind a reverse proxy
every request comes from the proxy's address; such a proxy must enforce its own
per-client limits (this node cannot trust a forwarded header it did not set).
"""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1024 * 1024


@dataclass(frozen=True)
class ApiLimits:
    # --- bodies (tally.api.guard) ------------------------------------------------------
    #: Any request body but a submission's; the largest a @view query needs, with room.
    body_bytes: int = 1 * MiB
    #: ``POST /v1/txs/batch``: up to 10,000 transactions as base64.
    batch_body_bytes: int = 64 * MiB
    #: The whole body must have arrived this many seconds after the head, or 408.
    body_timeout_s: float = 30.0
    #: JSON bodies nested deeper than this are refused (400) before any model sees them.
    json_depth: int = 32

    # --- connections (tally.api.server) ------------------------------------------------
    #: A request head (request line and headers) must arrive within this many seconds of
    #: the connection opening or of the previous response, or the connection is closed.
    header_timeout_s: float = 10.0
    #: An idle keep-alive connection is closed after this many seconds.
    keep_alive_s: int = 5
    #: Open connections from one IP address; the next one is answered 429 and closed.
    #: Below the 40 worker threads the API's plain (synchronous) routes share, so one
    #: address cannot hold them all with slow requests.
    connections_per_client: int = 32
    #: Open connections in all; the next one is answered 503 and closed.
    max_connections: int = 2048
    #: Largest request head (h11 only: httptools bounds its own).
    max_head_bytes: int = 64 * 1024

    # --- @view queries (tally.api.queries) ---------------------------------------------
    #: Steps one query may run (a transaction gets the VM's full budget, 1,000,000).
    query_steps: int = 200_000
    #: Seconds a client waits for its query, queueing included; then 503.
    query_timeout_s: float = 5.0
    #: Queries run at once, each on its own VM and thread, apart from other reads.
    query_workers: int = 2
    #: Queries admitted at once (running and waiting); beyond it 503 without waiting.
    query_backlog: int = 16
    #: Queries one client may have running or waiting at once (429 beyond).
    queries_per_client: int = 1
    #: Per-client token bucket: queries per second on average, and the burst allowed.
    query_rate: float = 10.0
    query_burst: int = 20

    # --- signed requests (tally.api.access; an ``authenticated`` node only) -------------
    #: A signed request's timestamp must be within this many seconds of the node's clock.
    auth_window_s: int = 60
    #: (account, nonce) pairs remembered for the window; when full, 503 until some expire.
    replay_capacity: int = 200_000

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not value > 0:
                raise ValueError(f"API limit {name} must be positive, not {value!r}")
