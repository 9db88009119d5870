"""Signed API requests: the bytes a client signs with its account key, and the headers
that carry the signature (docs/access.md, decision 0032).

Both sides build the same canonical string here: the SDK (:mod:`tally.sdk.auth`) to sign
a request, the node (:mod:`tally.api.access`) to check it. The string is, as UTF-8, eight
lines joined by ``\\n`` (no trailing newline)::

    tally-request-v1
    <chain id>                 the chain the request is meant for
    <METHOD>                   upper case
    <request target>           the path and query exactly as sent ("/v1/x?a=1")
    <body hash>                hex of the suite hash (SHA-256, SM3) of the body bytes
    <account>                  the signing account's address (40 hex digits)
    <timestamp>                Unix seconds, decimal
    <nonce>                    16 to 64 characters of [A-Za-z0-9_-], new per request

The signature is the account key's signature of those bytes (Ed25519 on ``intl``,
SM2 with SM3 and the default ID on ``gm``), base64 in ``Tally-Signature``.

This module imports only the crypto suites: a client needs nothing else.
"""

from __future__ import annotations

import base64
import re
import secrets

from tally.crypto import PrivateKey, Suite

VERSION = "tally-request-v1"
ACCOUNT = "Tally-Account"
TIMESTAMP = "Tally-Timestamp"
NONCE = "Tally-Nonce"
SIGNATURE = "Tally-Signature"
#: The header of a 401 answer that names the chain the node serves, so that a client
#: that did not know it can sign its next request for it.
CHAIN = "Tally-Chain"
HEADERS = (ACCOUNT, TIMESTAMP, NONCE, SIGNATURE)

NONCE_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
ADDRESS_RE = re.compile(r"^[0-9a-f]{40}$")


def new_nonce() -> str:
    """A fresh random nonce: 128 bits, 32 hex digits."""
    return secrets.token_hex(16)


def canonical(*, chain: str, method: str, target: str, body_hash: bytes, account: str,
              timestamp: int, nonce: str) -> bytes:
    """The bytes a request's signature covers (see the module docstring)."""
    return "\n".join((VERSION, chain, method.upper(), target, body_hash.hex(), account,
                      str(timestamp), nonce)).encode()


def sign_headers(key: PrivateKey, *, chain: str, method: str, target: str, body: bytes,
                 timestamp: int, nonce: str | None = None) -> dict[str, str]:
    """The four headers that make a request signed by ``key``'s account."""
    suite: Suite = key.suite
    account = suite.address(key.public_key)
    nonce = nonce or new_nonce()
    message = canonical(chain=chain, method=method, target=target,
                        body_hash=suite.hash(body), account=account, timestamp=timestamp,
                        nonce=nonce)
    return {ACCOUNT: account, TIMESTAMP: str(timestamp), NONCE: nonce,
            SIGNATURE: base64.b64encode(key.sign(message)).decode()}
