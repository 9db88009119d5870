"""Tally's ABCI application driven call by call, as CometBFT would drive it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from tally import tx as txmod
from tally.consensus.abci import abci
from tally.consensus.app import TallyApplication
from tally.crypto import get_suite
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
