"""Tally's ABCI application driven call by call, as CometBFT would, without CometBFT.

The network tests run the same code under real CometBFT processes; these pin down
behaviour that a network run reaches only by timing: a transaction that expired before
its block, the block size limit, decoding once per node, and cosignatures kept with
their block.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import cbor2
import pytest

from tally.consensus.abci import abci
from tally.consensus.app import TallyApplication, consensus_address
from tally.crypto import get_suite
from tally.errors import ABCI_CODES, Code, TallyError
from tally.genesis import Params, make_genesis
from tally.keys import generate
from tally.ledger import Ledger
from tally.log.checkpoint import NoteSigner, sign_note
from tally.state.store import Store
from tests.support.abci import CHAIN, T0, Harness, _at


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


def test_admission_learns_committed_nonces_from_blocks_it_did_not_admit(
        harness: Harness) -> None:
    """CheckTx keeps senders' committed nonces in memory (a store read per sender and
    block was a tenth of a peer's admission time). A block carrying transactions this
    node never checked (they reached it in another validator's proposal) must move
    that memory on, or the sender's next transaction would be refused as a gap."""
    reads: list[str] = []
    read_store = harness.app.check_state._read_committed
    harness.app.check_state._read_committed = lambda a: reads.append(a) or read_store(a)
    first = harness.sign(harness.issuer, 0)
    assert harness.check(first).code == 0
    elsewhere = [harness.sign(harness.issuer, n) for n in (1, 2)]  # never checked here
    assert [r.code for r in harness.block([first, *elsewhere]).tx_results] == [0, 0, 0]
    replay = harness.sign(harness.issuer, 2, asset="again")
    assert harness.check(replay).code == ABCI_CODES[Code.NONCE_REPLAYED]
    assert harness.check(harness.sign(harness.issuer, 3)).code == 0
    assert harness.check(harness.sign(harness.issuer, 5)).code == ABCI_CODES[Code.NONCE_GAP]
    assert reads == [harness.issuer.address]  # once, before the first block, not after


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


# --- divergence: validators holding over a third of the power signed another checkpoint ---

class Quorum:
    """Validator 0's application among four equal validators whose vote extensions the
    test writes itself: each a signature line on a checkpoint body of the test's choice."""

    def __init__(self, tmp: Path) -> None:
        self.keys = [generate(f"validator-{i}", "intl") for i in range(4)]
        self.consensus = {k.name: bytes([i + 1]) * 32 for i, k in enumerate(self.keys)}
        genesis = make_genesis(CHAIN, get_suite("intl"), [(k.name, k.key) for k in self.keys],
                               {}, T0, consensus_keys=self.consensus)
        self.path = tmp / "chain.sqlite"
        self.ledger = Ledger(Store(self.path), genesis, self.keys[0].key, self.keys[0].name)
        self.app = TallyApplication(self.ledger, self.keys[0])

    def block(self, lines_over: Callable[[str], str], *, stale: set[str] = frozenset()
              ) -> None:
        """Run one empty block; validator i > 0 signs ``lines_over(our body)``, for the
        committed block or (those in ``stale``) for another block of an earlier round."""
        height = self.ledger.height + 1
        block_hash = b"%032d" % height
        stamp = _at(height)
        self.app.process_proposal(abci.RequestProcessProposal(
            txs=[], hash=block_hash, height=height, time=stamp))
        self.app.extend_vote(abci.RequestExtendVote(hash=block_hash, height=height,
                                                    time=stamp, txs=[]))
        body = self.app._speculative[1].checkpoint.body()
        for key in self.keys[1:]:
            line = sign_note(lines_over(body), [NoteSigner(key.name, key.key)])
            line = line[len(lines_over(body)) + 1:]
            voted_for = b"x" * 32 if key.name in stale else block_hash
            answer = self.app.verify_vote_extension(abci.RequestVerifyVoteExtension(
                hash=voted_for, height=height, vote_extension=cbor2.dumps([height, line]),
                validator_address=consensus_address(self.consensus[key.name])))
            assert answer.status == abci.ResponseVerifyVoteExtension.ACCEPT
        self.app.finalize_block(abci.RequestFinalizeBlock(txs=[], hash=block_hash,
                                                          height=height, time=stamp))
        self.app.commit(abci.RequestCommit())


def _other_state(body: str) -> str:
    """The same checkpoint but for its state root: what a validator with other state signs."""
    return "\n".join("state " + "A" * 43 + "=" if line.startswith("state ") else line
                     for line in body.split("\n"))


def test_a_node_whose_checkpoint_the_validators_did_not_sign_knows_it_diverged(
        tmp_path: Path) -> None:
    q = Quorum(tmp_path)
    try:
        q.block(lambda body: body)  # all four agree
        assert q.app.diverged is None
        assert len(q.ledger.store.cosignatures(1)) == 4
        # One faulty validator (a quarter of the power) signing something else: not enough.
        q.keys, spare = q.keys[:2], q.keys[2:]
        q.block(_other_state)
        assert q.app.diverged is None
        # Lines for another block (precommits of an earlier round) are not dissent.
        q.keys += spare
        q.block(_other_state, stale={"validator-1", "validator-2", "validator-3"})
        assert q.app.diverged is None
        # Three of four signed a checkpoint with another state root: this node is wrong.
        q.block(_other_state)
        assert q.app.diverged is not None and q.app.diverged.height == 4
        assert q.app.diverged.dissenters == ("validator-1", "validator-2", "validator-3")
        q.ledger.store.close()
        # Kept across a restart: the state it computed is still wrong.
        again = TallyApplication(Ledger(Store(q.path), q.ledger.genesis, q.keys[0].key,
                                        q.keys[0].name), q.keys[0])
        assert again.diverged == q.app.diverged
        again.ledger.store.close()
    finally:
        with contextlib.suppress(Exception):
            q.ledger.store.close()
