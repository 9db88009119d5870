"""How the API runs @view queries: apart from every other read, bounded, and fair.

A query runs contract code, which costs what its author made it cost; every other read
is a bounded index lookup. So (the numbers are :class:`~tally.api.limits.ApiLimits`):

* A query runs within ``query_steps`` VM steps (a transaction gets the VM's full
  budget): past them it fails with ``VM_OUT_OF_STEPS``, as a transaction would.
* Queries run on their own ``query_workers`` threads, each taking its own VM
  (:meth:`ChainReader.contract_query`), never on the threads that serve other reads;
  so a slow query delays no block read, proof or submission, and at most that many
  queries compete with them for the CPU.
* At most ``query_backlog`` queries are admitted at once (running or waiting for a
  worker); one more is answered 503 ``UNAVAILABLE`` at once, without queueing.
* A client (an IP address) has at most ``queries_per_client`` queries admitted at once
  (fewer than the workers, so one client never holds them all), and spends one token of
  a bucket that refills at ``query_rate`` per second up to ``query_burst``; beyond
  either, 429 ``RATE_LIMITED`` with ``Retry-After``.
* A client waits at most ``query_timeout_s`` (queueing included), then gets 503
  ``UNAVAILABLE``. A query cannot be stopped from outside its thread, so one that timed
  out runs on until it returns or its steps run out, and keeps its place (its client's
  and the backlog's) until then; one still queued at its deadline never starts.

Queries are not consensus: a timeout or refusal here changes no state and no block.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from tally.api.limits import ApiLimits
from tally.errors import Code, TallyError

T = TypeVar("T")

#: Buckets kept before idle ones are dropped (a full bucket carries no information).
MAX_BUCKETS = 10_000


class QueryGate:
    """Admission, rate limit and the worker threads of @view queries; one per app, used
    from its event loop only (the counts need no lock)."""

    def __init__(self, limits: ApiLimits) -> None:
        self.limits = limits
        self._pool = ThreadPoolExecutor(limits.query_workers, thread_name_prefix="tally-query")
        self._admitted = 0
        self._by_client: dict[str, int] = {}
        self._buckets: dict[str, tuple[float, float]] = {}  # client: (tokens, at)

    @property
    def admitted(self) -> int:
        """Queries admitted and not yet finished (running or waiting for a worker)."""
        return self._admitted

    def _take_token(self, client: str, now: float) -> bool:
        limits = self.limits
        tokens, at = self._buckets.get(client, (float(limits.query_burst), now))
        tokens = min(float(limits.query_burst), tokens + (now - at) * limits.query_rate)
        if tokens < 1:
            self._buckets[client] = (tokens, now)
            return False
        self._buckets[client] = (tokens - 1, now)
        if len(self._buckets) > MAX_BUCKETS:
            self._forget_full_buckets(now)
        return True

    def _forget_full_buckets(self, now: float) -> None:
        """Bound the buckets kept: drop those full again by now (they carry nothing);
        if too many remain (many addresses at once), drop the older half, which only
        gives those clients a full bucket back."""
        limits = self.limits
        full_after = limits.query_burst / limits.query_rate
        for client, (_, at) in list(self._buckets.items()):
            if now - at >= full_after:
                del self._buckets[client]
        if len(self._buckets) > MAX_BUCKETS // 2:
            by_age = sorted(self._buckets.items(), key=lambda item: item[1][1])
            self._buckets = dict(by_age[len(by_age) // 2:])

    async def run(self, client: str, query: Callable[[], T]) -> T:
        """Run ``query`` on a query worker for ``client``, or raise the TallyError that
        refuses it (429, 503)."""
        limits = self.limits
        now = time.monotonic()
        if self._by_client.get(client, 0) >= limits.queries_per_client:
            raise TallyError(f"over {limits.queries_per_client} queries at once from this "
                             "address: wait for the answer before the next", Code.RATE_LIMITED)
        if not self._take_token(client, now):
            raise TallyError(f"over {limits.query_rate:g} queries per second from this "
                             "address", Code.RATE_LIMITED)
        if self._admitted >= limits.query_backlog:
            raise TallyError("the node is running as many queries as it takes: try again "
                             "shortly", Code.UNAVAILABLE)
        deadline = now + limits.query_timeout_s

        def bounded() -> T:
            if time.monotonic() >= deadline:  # waited out its time in the queue
                raise _Expired
            return query()

        self._admitted += 1
        self._by_client[client] = self._by_client.get(client, 0) + 1
        future = asyncio.get_running_loop().run_in_executor(self._pool, bounded)
        future.add_done_callback(lambda _: self._release(client))
        try:
            return await asyncio.wait_for(asyncio.shield(future), limits.query_timeout_s)
        except (TimeoutError, _Expired):
            future.add_done_callback(_consume)  # its outcome is no one's now
            raise TallyError(f"the query did not finish within {limits.query_timeout_s:g} s",
                             Code.UNAVAILABLE) from None
        except asyncio.CancelledError:  # the client went away; the query runs on
            future.add_done_callback(_consume)
            raise

    def _release(self, client: str) -> None:
        self._admitted -= 1
        left = self._by_client[client] - 1
        if left:
            self._by_client[client] = left
        else:
            del self._by_client[client]

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class _Expired(Exception):
    """A query that waited for a worker past its deadline, so never started."""


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved, so asyncio does not log it as never retrieved
