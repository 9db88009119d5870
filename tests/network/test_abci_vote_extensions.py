"""Vote extensions on 4 validators: the pattern Tally will use to cosign checkpoints.

Each validator extends its precommit for height h with a checkpoint of its state after
h-1.  CometBFT signs the extension with the validator's consensus key and hands all of
them (with signatures) to the next proposer in PrepareProposal.local_last_commit.  The
proposer puts them in its block as one "cosig" tx; every validator checks the
signatures in ProcessProposal.  The test re-verifies every signature itself, from the
public keys in genesis.json, with nothing but the sign-bytes rule and Ed25519.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from pathlib import Path

import pytest
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from tally.consensus.abci import (
    Application,
    ThreadedServer,
    abci,
    take_txs_within,
    tx_proto_size,
    vote_extension_sign_bytes,
)
from tally.consensus.abci.proto_gen.tendermint.types import validator_pb2
from tally.net.cometbft.binary import CometBFTNotFound, find_cometbft
from tally.net.cometbft.localnet import Localnet, free_port_block, make_localnet, read_genesis
from tally.net.cometbft.rpc import wait_for_rpc

try:
    find_cometbft()
except CometBFTNotFound as e:  # pragma: no cover - depends on the machine
    if os.environ.get("TALLY_REQUIRE_COMETBFT"):  # CI sets this: never skip silently
        raise
    pytest.skip(f"{e}", allow_module_level=True)

COMMIT = validator_pb2.BLOCK_ID_FLAG_COMMIT
COSIG = b"cosig:"


def checkpoint(height: int, app_hash: bytes) -> bytes:
    return b"ckpt/v1|%d|" % height + app_hash.hex().encode()


class CheckpointCosigner(Application):
    """Extends votes with checkpoints and carries the signed extensions into blocks."""

    def __init__(self) -> None:
        self.chain_id = ""
        self.pubkeys: dict[bytes, bytes] = {}  # validator address -> Ed25519 public key
        self.power: dict[bytes, int] = {}
        self.height = 0
        self.hashes: dict[int, bytes] = {0: hashlib.sha256(b"genesis").digest()}
        self._staged: tuple[int, bytes] | None = None
        # What the test inspects afterwards (appended on the server thread).
        self.prepared: list[abci.RequestPrepareProposal] = []
        self.verified: list[tuple[abci.RequestVerifyVoteExtension, int]] = []
        self.rejected: list[str] = []

    def info(self, req: abci.RequestInfo) -> abci.ResponseInfo:
        return abci.ResponseInfo(
            last_block_height=self.height,
            last_block_app_hash=self.hashes[self.height] if self.height else b"",
        )

    def init_chain(self, req: abci.RequestInitChain) -> abci.ResponseInitChain:
        self.chain_id = req.chain_id
        for v in req.validators:
            pub = v.pub_key.ed25519
            addr = hashlib.sha256(pub).digest()[:20]
            self.pubkeys[addr], self.power[addr] = pub, v.power
        return abci.ResponseInitChain(app_hash=self.hashes[0])

    # Runs at height h after h-1 is committed, so the latest checkpoint is h-1's.
    def extend_vote(self, req: abci.RequestExtendVote) -> abci.ResponseExtendVote:
        assert self.height == req.height - 1
        return abci.ResponseExtendVote(
            vote_extension=checkpoint(self.height, self.hashes[self.height])
        )

    def verify_vote_extension(
        self, req: abci.RequestVerifyVoteExtension
    ) -> abci.ResponseVerifyVoteExtension:
        ok = req.vote_extension == checkpoint(req.height - 1, self.hashes[req.height - 1])
        status = (
            abci.ResponseVerifyVoteExtension.ACCEPT
            if ok
            else abci.ResponseVerifyVoteExtension.REJECT
        )
        self.verified.append((req, status))
        return abci.ResponseVerifyVoteExtension(status=status)

    def prepare_proposal(self, req: abci.RequestPrepareProposal) -> abci.ResponsePrepareProposal:
        copy = abci.RequestPrepareProposal()
        copy.CopyFrom(req)
        self.prepared.append(copy)
        txs: list[bytes] = []
        budget = req.max_tx_bytes
        if req.height > 1:
            cosig = COSIG + req.local_last_commit.SerializeToString(deterministic=True)
            txs.append(cosig)
            budget -= tx_proto_size(cosig)
        txs += take_txs_within((t for t in req.txs if not t.startswith(COSIG)), budget)
        return abci.ResponsePrepareProposal(txs=txs)

    def cosig_problem(self, height: int, txs: list[bytes]) -> str | None:
        """None if block `height` carries > 2/3 valid cosignatures of checkpoint height-2."""
        if height == 1:
            return None
        if not txs or not txs[0].startswith(COSIG):
            return "no cosig tx"
        eci = abci.ExtendedCommitInfo.FromString(txs[0][len(COSIG) :])
        want = checkpoint(height - 2, self.hashes[height - 2])
        signed = 0
        for v in eci.votes:
            if v.block_id_flag != COMMIT:
                continue
            pub = self.pubkeys.get(v.validator.address)
            if pub is None or v.vote_extension != want:
                return f"bad extension from {v.validator.address.hex()}"
            msg = vote_extension_sign_bytes(self.chain_id, height - 1, eci.round, v.vote_extension)
            try:
                VerifyKey(pub).verify(msg, v.extension_signature)
            except BadSignatureError:
                return f"bad signature from {v.validator.address.hex()}"
            signed += self.power[v.validator.address]
        if 3 * signed <= 2 * sum(self.power.values()):
            return "not enough cosigning power"
        return None

    def process_proposal(self, req: abci.RequestProcessProposal) -> abci.ResponseProcessProposal:
        problem = self.cosig_problem(req.height, list(req.txs))
        if problem:
            self.rejected.append(f"{req.height}: {problem}")
            return abci.ResponseProcessProposal(status=abci.ResponseProcessProposal.REJECT)
        return abci.ResponseProcessProposal(status=abci.ResponseProcessProposal.ACCEPT)

    def finalize_block(self, req: abci.RequestFinalizeBlock) -> abci.ResponseFinalizeBlock:
        h = hashlib.sha256(self.hashes[req.height - 1])
        for tx in req.txs:
            h.update(hashlib.sha256(tx).digest())
        self._staged = (req.height, h.digest())
        return abci.ResponseFinalizeBlock(
            tx_results=[abci.ExecTxResult() for _ in req.txs], app_hash=self._staged[1]
        )

    def commit(self, req: abci.RequestCommit) -> abci.ResponseCommit:
        assert self._staged is not None
        height, digest = self._staged
        self.hashes[height] = digest
        self.height = height
        return abci.ResponseCommit()


def test_vote_extensions_reach_next_proposer_signed(tmp_path: Path) -> None:
    specs = make_localnet(
        tmp_path, 4, free_port_block(40), timeout_commit="200ms", vote_extensions_enable_height=1
    )
    genesis = read_genesis(specs[0])
    assert genesis["consensus_params"]["abci"]["vote_extensions_enable_height"] == "1"
    pubkeys = {
        bytes.fromhex(v["address"]): base64.b64decode(v["pub_key"]["value"])
        for v in genesis["validators"]
    }
    apps = [CheckpointCosigner() for _ in specs]
    servers = [ThreadedServer(a, s.proxy_app) for a, s in zip(apps, specs, strict=True)]
    net = Localnet(specs, app=None)  # apps are in-process here, to inspect what they saw
    try:
        for srv in servers:
            srv.start()
        net.start()
        for i in range(4):
            with net.rpc(i) as rpc:
                wait_for_rpc(rpc)
        net.wait_for_height(7, timeout=60)
        for srv in servers:
            assert srv.error is None

        # 1. Where the data is: RequestPrepareProposal.local_last_commit (an
        #    ExtendedCommitInfo) of the proposer at height h holds, per validator, the
        #    vote_extension and extension_signature of its precommit for h-1.
        seen = 0
        for app in apps:
            for req in list(app.prepared):
                if req.height < 2:
                    assert not any(v.vote_extension for v in req.local_last_commit.votes)
                    continue
                eci = req.local_last_commit
                votes = [v for v in eci.votes if v.block_id_flag == COMMIT]
                assert 3 * len(votes) > 2 * 4  # > 2/3 of the (equal) power
                for v in votes:
                    want = checkpoint(req.height - 2, app.hashes[req.height - 2])
                    assert v.vote_extension == want
                    msg = vote_extension_sign_bytes(
                        genesis["chain_id"], req.height - 1, eci.round, v.vote_extension
                    )
                    VerifyKey(pubkeys[v.validator.address]).verify(msg, v.extension_signature)
                    seen += 1
        assert seen >= 8

        # 2. Validators verified each other's extensions (never their own), all accepted.
        for app, spec in zip(apps, specs, strict=True):
            own = bytes.fromhex(spec.validator_address)
            addrs = {r.validator_address for r, _ in app.verified}
            assert addrs and own not in addrs and addrs <= set(pubkeys)
            assert all(st == abci.ResponseVerifyVoteExtension.ACCEPT for _, st in app.verified)
            assert app.rejected == []

        # 3. Every block from height 2 carries the cosignatures as its first tx, and all
        #    replicas agree on the resulting app hashes.
        with net.rpc(0) as rpc:
            top = rpc.latest_height()
            for h in range(2, top + 1):
                txs = [base64.b64decode(t) for t in rpc.block(h)["block"]["data"]["txs"]]
                assert txs and txs[0].startswith(COSIG)
                assert apps[0].cosig_problem(h, txs) is None
        deadline = time.monotonic() + 10
        while min(a.height for a in apps) < top and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len({a.hashes[top] for a in apps}) == 1
    finally:
        net.stop()
        for srv in servers:
            srv.stop()
