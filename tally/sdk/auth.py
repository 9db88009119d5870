"""Signed requests for an authenticated node (docs/access.md): an ``httpx.Auth`` that
signs every request with an account key, as :mod:`tally.protocol.access` defines.

    client = TallyClient("https://node.bank-a.example:26680", signer=load("dave.json"),
                         verify="bank-a-ca.pem")

The chain id the signature covers is given (``chain=``) or learnt from the node: a
request signed for no chain is answered 401 with the ``Tally-Chain`` header, and is then
signed for that chain and sent again, once. An open node ignores the headers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator

import httpx

from tally.keys import NamedKey
from tally.protocol import access as wire


class SignedRequests(httpx.Auth):
    """Signs each request with ``signer``'s account key (sync and async clients)."""

    requires_request_body = True

    def __init__(self, signer: NamedKey, chain: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.signer = signer
        self.chain = chain
        self.clock = clock

    def sign(self, request: httpx.Request) -> None:
        for name in wire.HEADERS:
            request.headers.pop(name, None)
        request.headers.update(wire.sign_headers(
            self.signer.key, chain=self.chain or "", method=request.method,
            target=request.url.raw_path.decode("ascii"), body=request.content,
            timestamp=int(self.clock())))

    def auth_flow(self, request: httpx.Request
                  ) -> Generator[httpx.Request, httpx.Response, None]:
        known = self.chain is not None
        self.sign(request)
        response = yield request
        chain = response.headers.get(wire.CHAIN)
        if response.status_code == 401 and not known and chain:
            self.chain = chain
            self.sign(request)
            yield request
