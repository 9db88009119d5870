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


def test_a_bundle_refused_whole_is_not_kept(tmp_path) -> None:
    """A peer's bundle whose every transaction is refused (here: forged signatures) costs
    the node nothing after its CheckTx; one with an admitted transaction is kept for its
    block."""
    from tally.consensus.bundle import encode_bundle
    from tests.support.abci import Harness

    h = Harness(tmp_path)
    forged = []
    for nonce in range(50):
        raw = bytearray(h.sign(h.issuer, nonce))
        raw[-1] ^= 1
        forged.append(bytes(raw))
    bundle = encode_bundle(forged)
    assert h.check(bundle).code != 0
    assert len(h.app._bundles) == 0 and len(h.app._admitted) == 0

    good = encode_bundle([h.sign(h.issuer, 0), forged[1]])
    assert h.check(good).code == 0
    assert len(h.app._bundles) == 1 and len(h.app._admitted) == 1


def test_the_mempool_is_bounded_in_bytes_as_well_as_in_transactions(intl_chain: Chain
                                                                    ) -> None:
    """Valid transactions from throwaway keys (each the first of its key) can fill a
    mempool; its byte bound, not only its count, limits what they hold."""
    from tally.mempool import Mempool

    chain = intl_chain
    pool = Mempool(chain.node.ledger.executor, lambda sender: 0, lambda: 1, capacity=1000,
                   capacity_bytes=64 * 1024)
    payload = {"contract": "nobody", "method": "m", "args": ["x" * 8000]}
    admitted = 0
    for _ in range(20):
        chain.keys["throwaway"] = generate("throwaway", "intl")
        try:
            pool.admit(chain.sign("throwaway", "contract.call", payload, nonce=0, tier=2))
            admitted += 1
        except TallyError as exc:
            assert exc.code == Code.MEMPOOL_FULL
    assert 5 <= admitted <= 8  # about 8 KB each against 64 KB, far below the count bound
    assert pool._bytes <= 64 * 1024
    taken = pool.take(100, timeout=0)
    assert len(taken) == admitted and pool._bytes == 0
