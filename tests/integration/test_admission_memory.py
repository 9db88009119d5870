"""Refused transactions leave nothing behind in a node (issue 13's first finding).

A node once kept each admitted payload, parsed, until the transaction executed, and it
kept it before the signature and nonce checks: batches of large payloads with forged
signatures, or valid ones with a nonce gap, grew its memory for good. Now a refused
transaction leaves no trace, whatever refused it.
"""

from __future__ import annotations

import gc
import tracemalloc

from tally.errors import Code, TallyError
from tally.keys import generate
from tests.support.chain import Chain

#: A payload that is large once parsed: 4,000 list objects from ~4 KB of CBOR.
LARGE = {"contract": "nobody", "method": "m", "args": [[]] * 4000}


def _retained(chain: Chain, burst) -> int:
    """Bytes still allocated after five more bursts than a first, warming one."""
    burst()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(5):
            burst()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_forged_signatures_in_batches_leave_no_memory_behind(intl_chain: Chain) -> None:
    chain = intl_chain
    nonce = iter(range(10_000))

    def burst() -> None:
        raws = []
        for _ in range(40):
            forged = bytearray(chain.sign("alice", "contract.call", LARGE, nonce=next(nonce),
                                          tier=2))
            forged[-1] ^= 1
            raws.append(bytes(forged))
        results = chain.node.submit_many(raws, wait=False)
        assert all(isinstance(r, TallyError) and r.code == Code.BAD_SIGNATURE
                   for r in results), results

    assert _retained(chain, burst) < 2 * 1024 * 1024


def test_nonce_gaps_from_throwaway_keys_leave_no_memory_behind(intl_chain: Chain) -> None:
    chain = intl_chain

    def burst() -> None:
        for _ in range(20):
            key = generate("throwaway", "intl")
            chain.keys["throwaway"] = key
            try:
                chain.node.submit(chain.sign("throwaway", "contract.call", LARGE, nonce=5,
                                             tier=2))
            except TallyError as exc:
                assert exc.code == Code.NONCE_GAP
            else:
                raise AssertionError("a nonce gap was admitted")

    assert _retained(chain, burst) < 2 * 1024 * 1024
