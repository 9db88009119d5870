"""CometBFT's JSON-RPC: a sync client, an asyncio client, batches, and waiting.

`CometRPC` serves the node (verified reads, app hashes) and the tests;
`AsyncCometRPC` and `call_batch` serve load generators, which send many
broadcast_tx_* calls in one HTTP request.
"""

from __future__ import annotations

import base64
import contextlib
import time
from collections.abc import Sequence
from typing import Any

import httpx


class RPCError(RuntimeError):
    """CometBFT answered a JSON-RPC call with an error object."""

    def __init__(self, method: str, error: dict[str, Any]) -> None:
        self.code = error.get("code")
        self.data = error.get("data")
        super().__init__(f"{method}: {error.get('message')} ({self.data})")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _h(height: int | None) -> dict[str, str]:
    return {} if height is None else {"height": str(height)}


class _Methods:
    """CometBFT RPC methods; `call` is sync in CometRPC, a coroutine in AsyncCometRPC.

    Heights go as strings and bytes as base64: CometBFT's JSON decodes int64 from
    strings and []byte from base64.
    """

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        raise NotImplementedError

    def status(self) -> Any:
        return self.call("status")

    def health(self) -> Any:
        return self.call("health")

    def abci_info(self) -> Any:
        return self.call("abci_info")

    def net_info(self) -> Any:
        return self.call("net_info")

    def broadcast_tx_sync(self, tx: bytes) -> Any:
        return self.call("broadcast_tx_sync", {"tx": _b64(tx)})

    def broadcast_tx_async(self, tx: bytes) -> Any:
        return self.call("broadcast_tx_async", {"tx": _b64(tx)})

    def broadcast_tx_commit(self, tx: bytes) -> Any:
        return self.call("broadcast_tx_commit", {"tx": _b64(tx)})

    def block(self, height: int | None = None) -> Any:
        return self.call("block", _h(height))

    def block_results(self, height: int | None = None) -> Any:
        return self.call("block_results", _h(height))

    def commit(self, height: int | None = None) -> Any:
        return self.call("commit", _h(height))

    def validators(self, height: int | None = None, page: int = 1, per_page: int = 100) -> Any:
        return self.call("validators", {**_h(height), "page": str(page), "per_page": str(per_page)})

    def blockchain(self, min_height: int, max_height: int) -> Any:
        """Block metas (header, num_txs) for up to 20 heights, newest first."""
        return self.call("blockchain", {"minHeight": str(min_height), "maxHeight": str(max_height)})

    def num_unconfirmed_txs(self) -> Any:
        return self.call("num_unconfirmed_txs")

    def abci_query(self, path: str, data: bytes, height: int = 0, prove: bool = False) -> Any:
        return self.call(
            "abci_query",
            {"path": path, "data": data.hex(), "height": str(height), "prove": prove},
        )


def _batch_body(start_id: int, calls: Sequence[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    return [
        {"jsonrpc": "2.0", "id": start_id + n, "method": m, "params": p}
        for n, (m, p) in enumerate(calls)
    ]


def _unwrap_batch(
    start_id: int, calls: Sequence[tuple[str, dict[str, Any]]], resp: httpx.Response
) -> list[Any]:
    """Results in call order; an RPCError object in place of each failed call."""
    resp.raise_for_status()
    body = resp.json()
    if isinstance(body, dict):  # the whole batch was refused (e.g. too large)
        raise RPCError("batch", body.get("error") or {"message": str(body)})
    by_id = {int(r["id"]): r for r in body}
    out: list[Any] = []
    for n, (m, _) in enumerate(calls):
        r = by_id.get(start_id + n, {"error": {"message": "no response"}})
        out.append(RPCError(m, r["error"]) if r.get("error") else r["result"])
    return out


def tx_call(method: str, tx: bytes) -> tuple[str, dict[str, Any]]:
    """One broadcast_tx_* call for `call_batch`."""
    return method, {"tx": _b64(tx)}


def _unwrap(method: str, resp: httpx.Response) -> Any:
    body = resp.json()
    if body.get("error"):
        raise RPCError(method, body["error"])
    resp.raise_for_status()
    return body["result"]


class CometRPC(_Methods):
    """Synchronous JSON-RPC client for one node (httpx, keep-alive)."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._client = httpx.Client(timeout=timeout)
        self._id = 0

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        self._id += 1
        resp = self._client.post(
            self.url,
            json={"jsonrpc": "2.0", "id": self._id, "method": method, "params": params or {}},
        )
        return _unwrap(method, resp)

    def call_batch(self, calls: Sequence[tuple[str, dict[str, Any]]]) -> list[Any]:
        """One HTTP request for many calls (up to the node's max_request_batch_size)."""
        start = self._id + 1
        self._id += len(calls)
        resp = self._client.post(self.url, json=_batch_body(start, calls))
        return _unwrap_batch(start, calls, resp)

    def latest_height(self) -> int:
        return int(self.status()["sync_info"]["latest_block_height"])

    def app_hash_at(self, height: int) -> bytes:
        """The app hash FinalizeBlock returned for `height` (state *after* that block).

        Not the header's app_hash: block h's header carries the hash after h-1, and
        so does /status's latest_app_hash.
        """
        return base64.b64decode(self.block_results(height)["app_hash"])

    def latest_app_hash(self, timeout: float = 5.0) -> tuple[int, bytes]:
        """(latest committed height, app hash after it).

        CometBFT saves a block (and reports its height) before it has executed it and
        saved its results, so the results of the latest height can be missing for a
        moment: asked again until they are there.
        """
        h = self.latest_height()
        deadline = time.monotonic() + timeout
        while True:
            try:
                return h, self.app_hash_at(h)
            except RPCError as exc:
                if "could not find results" not in str(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(0.05)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> CometRPC:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncCometRPC(_Methods):
    """asyncio JSON-RPC client (load generators); methods return coroutines."""

    def __init__(self, url: str, timeout: float = 10.0, max_connections: int = 64) -> None:
        self.url = url.rstrip("/")
        self._client = httpx.AsyncClient(
            timeout=timeout, limits=httpx.Limits(max_connections=max_connections)
        )
        self._id = 0

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        self._id += 1
        resp = await self._client.post(
            self.url,
            json={"jsonrpc": "2.0", "id": self._id, "method": method, "params": params or {}},
        )
        return _unwrap(method, resp)

    async def call_batch(self, calls: Sequence[tuple[str, dict[str, Any]]]) -> list[Any]:
        start = self._id + 1
        self._id += len(calls)
        resp = await self._client.post(self.url, json=_batch_body(start, calls))
        return _unwrap_batch(start, calls, resp)

    async def aclose(self) -> None:
        await self._client.aclose()


def wait_for_rpc(rpc: CometRPC, timeout: float = 30.0) -> None:
    """Until the node's RPC answers at all (it starts after the ABCI handshake)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            rpc.status()
            return
        except (httpx.HTTPError, RPCError):
            if time.monotonic() > deadline:
                raise TimeoutError(f"RPC at {rpc.url} not up after {timeout}s") from None
            time.sleep(0.1)


def wait_for_height(rpc: CometRPC, height: int, timeout: float = 30.0, poll: float = 0.1) -> int:
    """Poll until the node's latest committed height is >= `height`; return it."""
    deadline = time.monotonic() + timeout
    last: int | None = None
    while True:
        with contextlib.suppress(httpx.HTTPError, RPCError):
            last = rpc.latest_height()
            if last >= height:
                return last
        if time.monotonic() > deadline:
            raise TimeoutError(f"{rpc.url}: height {last}, wanted {height} within {timeout}s")
        time.sleep(poll)
