"""Tally's ABCI application driven call by call, as CometBFT would, without CometBFT.

The network tests run the same code under real CometBFT processes; these pin down
behaviour that a network run reaches only by timing: a transaction that expired before
its block, the block size limit, decoding once per node, and cosignatures kept with
their block.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tally import tx as txmod
from tally.consensus.abci import abci
from tally.consensus.app import TallyApplication
from tally.crypto import get_suite
from tally.errors import ABCI_CODES, Code, TallyError
from tally.genesis import Params, make_genesis
from tally.keys import NamedKey, generate
from tally.ledger import Ledger
from tally.state.store import Store

CHAIN = "abci-unit"
T0 = 1_767_225_600_000


def _at(height: int) -> datetime:
    """A block time one second per height after genesis."""
    return datetime.fromtimestamp(T0 / 1000 + height, UTC)


class Harness:
    def __init__(self, tmp: Path, params: Params | None = None,
                 keys: tuple[NamedKey, NamedKey] | None = None) -> None:
        self.validator, self.issuer = keys or (generate("validator-0", "intl"),
                                               generate("issuer", "intl"))
        self.genesis = make_genesis(CHAIN, get_suite("intl"),
                                    [(self.validator.name, self.validator.key)],
                                    {self.issuer.address: ["issuer"]}, T0, params)
        self.ledger = Ledger(Store(tmp / "chain.sqlite"), self.genesis, self.validator.key,
                             self.validator.name)
        self.app = TallyApplication(self.ledger, self.validator)

    def sign(self, key: NamedKey, nonce: int, *, expiry: int = 100, asset: str = "A") -> bytes:
        return txmod.sign(key.key, chain=CHAIN, nonce=nonce, expiry=expiry, kind="asset.issue",
                          payload={"asset": f"{asset}{nonce}", "class": "security",
                                   "name": "unit", "quantity": 1})

    def check(self, raw: bytes) -> abci.ResponseCheckTx:
        return self.app.check_tx(abci.RequestCheckTx(tx=raw, type=abci.NEW))

    def block(self, txs: list[bytes]) -> abci.ResponseFinalizeBlock:
        height = self.ledger.height + 1
        stamp = _at(height)
        block_hash = b"%032d" % height
        proposal = self.app.process_proposal(abci.RequestProcessProposal(
            txs=txs, hash=block_hash, height=height, time=stamp))
        assert proposal.status == abci.ResponseProcessProposal.ACCEPT
        result = self.app.finalize_block(abci.RequestFinalizeBlock(
            txs=txs, hash=block_hash, height=height, time=stamp))
        self.app.commit(abci.RequestCommit())
        return result


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    h = Harness(tmp_path)
    yield h
    h.ledger.store.close()


def test_a_sender_whose_transaction_expired_in_its_block_can_send_again(harness: Harness) -> None:
    """The transaction passed CheckTx, then expired before a block took it: it consumed
    no nonce, so the sender's next CheckTx with the same nonce is accepted, not refused
    as a replay (the node used to keep expecting the nonce after it until restart)."""
    stale = harness.sign(harness.issuer, 0, expiry=2)
    assert harness.check(stale).code == 0
    harness.block([])
    harness.block([])
    result = harness.block([stale])  # height 3: past its expiry
    assert result.tx_results[0].code == ABCI_CODES[Code.EXPIRED]
    fresh = harness.sign(harness.issuer, 0, expiry=100, asset="B")
    assert harness.check(fresh).code == 0
    assert harness.block([fresh]).tx_results[0].code == 0


def test_proposals_respect_the_genesis_block_size_limit(tmp_path: Path) -> None:
    h = Harness(tmp_path, Params(max_block_txs=3))
    try:
        raws = [h.sign(h.issuer, n) for n in range(5)]
        prepared = h.app.prepare_proposal(abci.RequestPrepareProposal(
            txs=raws, max_tx_bytes=1 << 20, height=1))
        assert list(prepared.txs) == raws[:3]
        too_big = h.app.process_proposal(abci.RequestProcessProposal(
            txs=raws, hash=b"x" * 32, height=1, time=_at(1)))
        assert too_big.status == abci.ResponseProcessProposal.REJECT
        assert h.ledger.height == 0
    finally:
        h.ledger.store.close()


def test_a_block_executes_the_same_whether_or_not_this_node_admitted_its_transactions(
        tmp_path: Path) -> None:
    """One node saw the transactions in CheckTx (and reuses what it decoded), the other
    sees them first in the block: both compute the same block hash, and both refuse the
    same forged transaction."""
    seen = Harness(tmp_path / "seen")
    unseen = Harness(tmp_path / "unseen", keys=(seen.validator, seen.issuer))
    try:
        raws = [seen.sign(seen.issuer, n) for n in range(4)]
        forged = bytearray(seen.sign(seen.issuer, 4))
        forged[-1] ^= 1
        for raw in raws:
            assert seen.check(raw).code == 0
        assert seen.check(bytes(forged)).code == ABCI_CODES[Code.BAD_SIGNATURE]
        block = [*raws, bytes(forged)]
        a, b = seen.block(block), unseen.block(block)
        assert a.app_hash == b.app_hash
        assert [r.code for r in a.tx_results] == [r.code for r in b.tx_results]
        assert a.tx_results[-1].code == ABCI_CODES[Code.BAD_SIGNATURE]
    finally:
        seen.ledger.store.close()
        unseen.ledger.store.close()


def test_a_batch_from_the_api_is_admitted_in_order_and_not_counted_twice(
        harness: Harness) -> None:
    """The API's batch admission (signatures verified in slices on a thread pool) keeps
    each refusal in its place; CometBFT's CheckTx of an admitted transaction then does
    not count its nonce again, and a forged copy is still refused."""
    raws = [harness.sign(harness.issuer, n) for n in range(300)]
    forged = bytearray(raws[200])
    forged[-1] ^= 1
    batch = [*raws[:200], bytes(forged), *raws[200:], raws[3]]
    results = harness.app.admit_many(batch)
    codes = [r.code if isinstance(r, TallyError) else "ok" for r in results]
    assert codes == ["ok"] * 200 + [Code.BAD_SIGNATURE] + ["ok"] * 100 + [Code.NONCE_REPLAYED]
    assert all(harness.check(raw).code == 0 for raw in raws)  # pre-admitted: no recount
    assert harness.check(raws[5]).code == ABCI_CODES[Code.NONCE_REPLAYED]  # a second copy
    result = harness.block(raws)
    assert [r.code for r in result.tx_results] == [0] * 300


def test_recheck_drops_what_a_block_made_impossible(harness: Harness) -> None:
    """After a block, CometBFT rechecks what is left in its mempool: a transaction whose
    nonce the block used (a competing one from the same sender) and one that expired are
    dropped; one still possible stays."""
    used = harness.sign(harness.issuer, 0, asset="X")
    competing = harness.sign(harness.issuer, 0, asset="Y")
    later = harness.sign(harness.issuer, 1, expiry=100)
    expiring = harness.sign(harness.validator, 0, expiry=1)
    harness.block([used])  # height 1
    assert harness.check(later).code == 0

    def recheck(raw: bytes) -> int:
        return harness.app.check_tx(abci.RequestCheckTx(tx=raw, type=abci.RECHECK)).code

    assert recheck(competing) == ABCI_CODES[Code.NONCE_REPLAYED]
    assert recheck(expiring) == ABCI_CODES[Code.EXPIRED]
    assert recheck(later) == 0
