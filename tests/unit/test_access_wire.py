"""The signed-request format (tally.protocol.access) and the replay cache: the bytes are
pinned (a client in another language builds the same string), and signing works the
same on both suites."""

from __future__ import annotations

import base64

import pytest

from tally.api.access import ReplayCache
from tally.keys import generate
from tally.protocol import access as wire


def test_canonical_string_is_pinned() -> None:
    message = wire.canonical(chain="bank-consortium", method="get",
                             target="/v1/events?after=10&limit=5", body_hash=bytes(32),
                             account="ab" * 20, timestamp=1767225600,
                             nonce="0123456789abcdef")
    assert message == (b"tally-request-v1\nbank-consortium\nGET\n/v1/events?after=10&limit=5\n"
                       + b"0" * 64 + b"\n" + b"ab" * 20 + b"\n1767225600\n0123456789abcdef")


@pytest.mark.parametrize("suite_name", ["intl", "gm"])
def test_sign_headers_verify_with_the_account_key(suite_name: str) -> None:
    key = generate("dave", suite_name)
    headers = wire.sign_headers(key.key, chain="c", method="POST", target="/v1/txs",
                                body=b'{"tx": ""}', timestamp=100)
    assert headers[wire.ACCOUNT] == key.address and wire.NONCE_RE.match(headers[wire.NONCE])
    suite = key.key.suite
    signed = wire.canonical(chain="c", method="POST", target="/v1/txs",
                            body_hash=suite.hash(b'{"tx": ""}'), account=key.address,
                            timestamp=100, nonce=headers[wire.NONCE])
    signature = base64.b64decode(headers[wire.SIGNATURE])
    assert suite.verify(key.public_key, signed, signature)
    assert not suite.verify(key.public_key, signed.replace(b"\nc\n", b"\nd\n"), signature)


def test_replay_cache_remembers_within_the_window_and_is_bounded() -> None:
    cache = ReplayCache(capacity=2)
    assert cache.add(("a", "n1"), expires=160, now=100) is True
    assert cache.add(("a", "n1"), expires=160, now=101) is False      # a replay
    assert cache.add(("b", "n1"), expires=170, now=102) is True       # another account
    assert cache.add(("a", "n2"), expires=170, now=103) is None       # full: refuse
    assert cache.add(("a", "n2"), expires=230, now=165) is True       # n1 of a expired
    assert len(cache) == 2
