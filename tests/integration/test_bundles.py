"""Bundles: a node's batch of admitted transactions carried through CometBFT as one.

What a user relies on: a transaction in a bundle is admitted, executed, stored and proven
exactly as if it had come alone (its own receipt, its own place in the Tally block, no
trace of the bundle); a malformed bundle is refused with a typed error and changes
nothing; and a transaction carried twice is recorded once, never halting the chain.
"""

from __future__ import annotations

from pathlib import Path

import cbor2
import pytest

from tally.consensus.abci import abci
from tally.consensus.bundle import (
    MAX_BUNDLE_BYTES,
    MAX_BUNDLE_TXS,
    bundle_size,
    decode_bundle,
    encode_bundle,
    is_bundle,
    pack,
)
from tally.errors import ABCI_CODES, Code, TxRejected
from tally.genesis import Params
from tally.protocol.header import BlockHeader
from tests.support.abci import Harness

# --- the wire format ----------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 23, 24, 255, 256, MAX_BUNDLE_TXS])
def test_a_bundle_round_trips_and_its_header_counts_its_transactions(n: int) -> None:
    raws = [b"\x82" + n.to_bytes(2, "big") + bytes([i % 256]) for i in range(n)]
    bundle = encode_bundle(raws)
    assert is_bundle(bundle)
    assert decode_bundle(bundle) == raws
    assert bundle_size(bundle) == n


def _refusal(raw: bytes) -> TxRejected:
    with pytest.raises(TxRejected) as info:
        decode_bundle(raw)
    return info.value


def test_malformed_and_oversized_bundles_are_refused_with_a_typed_error() -> None:
    good = encode_bundle([b"\x82a", b"\x82b"])
    cases = {
        "truncated": good[:-1],
        "a second key": cbor2.dumps({"bundle": [b"\x82a"], "x": 1}, canonical=True),
        "empty": encode_bundle([]),
        "a text entry": cbor2.dumps({"bundle": [b"\x82a", "text"]}, canonical=True),
        "an empty entry": cbor2.dumps({"bundle": [b""]}, canonical=True),
        "not a list": cbor2.dumps({"bundle": b"\x82a"}, canonical=True),
        # the same list with a 1-byte length written in 2 bytes: not the canonical form
        "non-canonical": good[:8] + b"\x98\x02" + good[9:],
        "not a bundle": cbor2.dumps([1, 2]),
    }
    for name, raw in cases.items():
        assert _refusal(raw).code == Code.MALFORMED, name
    too_many = encode_bundle([b"\x82x"] * (MAX_BUNDLE_TXS + 1))
    assert _refusal(too_many).code == Code.OVERSIZE
    too_big = encode_bundle([b"\x82" + b"x" * 60_000] * (MAX_BUNDLE_BYTES // 60_000 + 1))
    assert _refusal(too_big).code == Code.OVERSIZE


def test_pack_keeps_order_and_limits_and_leaves_a_lone_transaction_as_it_is() -> None:
    raws = [b"\x82" + i.to_bytes(4, "big") for i in range(1001)]
    assert list(pack(raws[:1])) == raws[:1]
    carried = list(pack(raws, max_txs=250))
    assert [bundle_size(b) for b in carried[:4]] == [250] * 4
    assert carried[4] == raws[1000]  # a group of one goes as itself
    assert [t for b in carried[:4] for t in decode_bundle(b)] + carried[4:] == raws
    by_bytes = list(pack([b"\x82" + b"y" * 999] * 10, max_bytes=3000))
    assert [bundle_size(b) for b in by_bytes] == [2] * 5


# --- the application ----------------------------------------------------------------------


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    h = Harness(tmp_path)
    yield h
    h.ledger.store.close()


def _check(h: Harness, raw: bytes) -> abci.ResponseCheckTx:
    return h.app.check_tx(abci.RequestCheckTx(tx=raw, type=abci.NEW))


def test_a_bundle_from_a_peer_is_admitted_transaction_by_transaction(harness: Harness) -> None:
    """Each transaction counts its nonce; one forged transaction costs only its place
    (named in the log); a bundle of nothing admissible is refused with the first error."""
    raws = [harness.sign(harness.issuer, n) for n in range(4)]
    forged = bytearray(harness.sign(harness.issuer, 4))
    forged[-1] ^= 1
    response = _check(harness, encode_bundle([*raws, bytes(forged)]))
    assert response.code == 0
    assert response.log.startswith("1 of 5 refused")
    assert _check(harness, harness.sign(harness.issuer, 4, asset="B")).code == 0  # nonce 4 next
    assert _check(harness, raws[2]).code == ABCI_CODES[Code.NONCE_REPLAYED]
    refused = _check(harness, encode_bundle([raws[0], raws[1]]))  # both already counted
    assert refused.code == ABCI_CODES[Code.NONCE_REPLAYED]
    malformed = _check(harness, encode_bundle([raws[0]])[:-3])
    assert malformed.code == ABCI_CODES[Code.MALFORMED]


def test_a_block_records_the_transactions_of_a_bundle_never_the_bundle(harness: Harness
                                                                        ) -> None:
    raws = [harness.sign(harness.issuer, n) for n in range(3)]
    unauthorised = harness.sign(harness.validator, 0)  # the validator may not issue
    lone = harness.sign(harness.issuer, 3)
    result = harness.block([encode_bundle([*raws, unauthorised]), lone])
    assert [r.code for r in result.tx_results] == [0, 0]  # CometBFT: both carried
    assert result.tx_results[0].info == \
        "bundle of 4: 3 succeeded, 1 failed, 0 already in the chain"
    rows = harness.ledger.store.block_txs(1)
    assert [(r.raw, r.code) for r in rows] == [
        *((raw, "OK") for raw in raws), (unauthorised, Code.UNAUTHORISED), (lone, "OK")]
    row = harness.ledger.store.block(1)
    assert row is not None and BlockHeader.decode(row.header).tx_count == 5


def test_the_same_block_whether_its_transactions_came_in_a_bundle_or_alone(tmp_path: Path
                                                                          ) -> None:
    """Bundling is transport: the Tally block (and so the app hash) is the same."""
    alone = Harness(tmp_path / "alone")
    bundled = Harness(tmp_path / "bundled", keys=(alone.validator, alone.issuer))
    try:
        raws = [alone.sign(alone.issuer, n) for n in range(5)]
        a = alone.block(raws)
        b = bundled.block([encode_bundle(raws[:2]), encode_bundle(raws[2:])])
        assert a.app_hash == b.app_hash
    finally:
        alone.ledger.store.close()
        bundled.ledger.store.close()


def test_a_transaction_carried_twice_is_recorded_once_and_the_chain_goes_on(
        harness: Harness) -> None:
    """Two nodes can bundle the same transaction (its client sent it to both), and a
    faulty proposer can repeat one or carry one already committed, or one that did not
    run. Each is recorded once; the chain used to stop (a duplicate key in the store)."""
    first = [harness.sign(harness.issuer, n) for n in range(3)]
    result = harness.block([encode_bundle(first), encode_bundle(first[1:]), first[2]])
    assert [r.code for r in result.tx_results] == [0, 0, ABCI_CODES[Code.DUPLICATE]]
    assert result.tx_results[1].info == \
        "bundle of 2: 0 succeeded, 0 failed, 2 already in the chain"
    assert [r.raw for r in harness.ledger.store.block_txs(1)] == first
    # committed ones again, and one that did not run (it skipped a nonce) twice
    gap = harness.sign(harness.issuer, 7)
    harness.block([encode_bundle([first[0], gap]), gap])
    assert [(r.raw, r.code) for r in harness.ledger.store.block_txs(2)] == \
        [(gap, Code.NONCE_GAP)]
    harness.block([first[1], gap])
    assert harness.ledger.store.block_txs(3) == []
    assert harness.ledger.height == 3
    fourth = harness.block([harness.sign(harness.issuer, 3)])
    assert fourth.tx_results[0].code == 0


def test_the_block_size_limit_counts_the_transactions_inside_bundles(tmp_path: Path) -> None:
    h = Harness(tmp_path, Params(max_block_txs=5))
    try:
        raws = [h.sign(h.issuer, n) for n in range(8)]
        bundles = [encode_bundle(raws[:3]), encode_bundle(raws[3:6]), raws[6]]
        prepared = h.app.prepare_proposal(abci.RequestPrepareProposal(
            txs=bundles, max_tx_bytes=1 << 20, height=1))
        assert list(prepared.txs) == bundles[:1]  # 3 fit; 3 more would make 6
        too_big = h.app.process_proposal(abci.RequestProcessProposal(
            txs=bundles[:2], hash=b"x" * 32, height=1, time=None))
        assert too_big.status == abci.ResponseProcessProposal.REJECT
        assert h.ledger.height == 0
        h.block([bundles[0], raws[3], raws[4]])  # exactly the limit
        assert h.ledger.height == 1
    finally:
        h.ledger.store.close()
