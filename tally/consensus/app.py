"""Tally as a CometBFT ABCI 2.0 application.

The same :class:`~tally.ledger.Ledger` (and so the same block executor) as the solo
engine; CometBFT only decides the order of transactions. What this module adds:

* **Admission** (CheckTx): the typed checks of the solo mempool, with the nonce counted
  against the committed state plus the sender's transactions already in the mempool.
* **Execution as soon as a proposal is seen** (ProcessProposal, or ExtendVote on the
  proposer): ABCI 2.0 allows it, and it lets each validator sign the checkpoint of the
  very block it is voting for.
* **Cosigned checkpoints**: each validator's vote extension is its signature line on the
  block's checkpoint. Validators collect each other's lines as they verify the votes, so
  when a block commits they already hold the cosignatures of more than two thirds of the
  power. The next proposer also writes the lines it saw into its block (a system
  transaction), so every node, including ones that replay the chain later, has them.
* **Validator updates**: the governance module's ``validator.update`` events become
  CometBFT validator updates.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cbor2

from tally import codec
from tally.admission import admit_batch
from tally.bounded import BoundedCache
from tally.consensus.abci import Application, abci, take_txs_within
from tally.consensus.abci.proto_gen.tendermint.crypto import keys_pb2
from tally.consensus.abci.proto_gen.tendermint.types import validator_pb2
from tally.consensus.bundle import bundle_size, decode_bundle, is_bundle
from tally.errors import ABCI_CODES, Code, TallyError, TxRejected
from tally.exec.executor import OK, TxOutcome, nonce_key
from tally.exec.governance import VALIDATORS_KEY
from tally.keys import NamedKey
from tally.ledger import CommittedBlock, Ledger, PendingBlock
from tally.log.checkpoint import NoteError, NoteVerifier, open_note
from tally.tx import Transaction, check_signature, signed_message

log = logging.getLogger("tally.app")

COMMIT_FLAG = validator_pb2.BLOCK_ID_FLAG_COMMIT
ACCEPT = abci.ResponseProcessProposal.ACCEPT
REJECT = abci.ResponseProcessProposal.REJECT
CODESPACE = "tally"
#: Decoded transactions kept between admission and their block (CometBFT's mempool holds
#: at most `mempool.size` of them; the rest were evicted or never proposed), and the
#: bytes they may hold: a decoded transaction is charged three times its wire size.
ADMITTED_CACHE = 50_000
ADMITTED_BYTES = 192 * 1024 * 1024
#: Decoded bundles kept between their CheckTx and their block: only bundles of which a
#: transaction was admitted (signature, chain and nonce window checked), never one that
#: was refused whole; charged twice their wire size.
BUNDLE_CACHE = 5_000
BUNDLE_BYTES = 64 * 1024 * 1024
#: Wire bytes this node's API admitted and CometBFT has not yet passed to CheckTx.
PRE_ADMITTED = 50_000
PRE_ADMITTED_BYTES = 64 * 1024 * 1024
#: Senders whose committed nonce CheckState keeps in memory.
COMMITTED_NONCES = 200_000
_SYSTEM_KEY = "cosign"
#: How every cosignature transaction begins (canonical CBOR: a one-entry map, key "cosign").
_SYSTEM_PREFIX = b"\xa1\x66" + _SYSTEM_KEY.encode()


def consensus_address(consensus_key: bytes) -> bytes:
    """CometBFT's validator address: the first 20 bytes of SHA-256 of the Ed25519 key."""
    return hashlib.sha256(consensus_key).digest()[:20]


def encode_cosign_tx(height: int, lines: dict[str, str]) -> bytes:
    """The system transaction that writes a checkpoint's cosignatures into a block."""
    return cbor2.dumps({_SYSTEM_KEY: {"height": height, "lines": lines}}, canonical=True)


def decode_cosign_tx(raw: bytes) -> tuple[int, dict[str, str]] | None:
    """(height, lines) if ``raw`` is a cosignature system transaction, else None."""
    if not raw.startswith(_SYSTEM_PREFIX):  # user transactions are CBOR arrays (0x82)
        return None
    try:
        value = codec.loads_untrusted(raw)
        body = value[_SYSTEM_KEY]
        height, lines = body["height"], body["lines"]
        if type(height) is int and isinstance(lines, dict) and all(
                isinstance(k, str) and isinstance(v, str) for k, v in lines.items()):
            return height, lines
    except Exception:  # anything malformed is simply not a system transaction
        return None
    return None


def _time_ms(ts: Any) -> int:
    return ts.seconds * 1000 + ts.nanos // 1_000_000


@dataclass(frozen=True)
class Divergence:
    """This node's block at ``height`` is not the one the validators signed: validators
    holding more than a third of the power sent checkpoint signatures (with their
    precommits for that very block) that do not verify against this node's checkpoint.
    With fewer than a third faulty, that means this node's state is wrong."""

    height: int
    dissenters: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"height": self.height, "dissenters": list(self.dissenters)}


DIVERGED_META = "diverged"


class ProposalTooLarge(Exception):
    """A proposal with more Tally transactions than the chain's ``max_block_txs``."""


@dataclass(frozen=True)
class KnownValidator:
    name: str
    public_key: bytes
    consensus_key: bytes


class CheckState:
    """Nonces as CheckTx sees them: committed, plus the sender's pending transactions.

    The committed nonces of recent senders are kept here, learnt from each committed
    block, so that admitting a sender's next transaction reads no store: a store read
    opens a read transaction on SQLite's WAL, several microseconds, and at full load it
    was a tenth of a peer's admission time. Everything is under one lock, and a block's
    nonces are recorded after the block is written, so an entry is never older than
    the store.
    """

    def __init__(self, committed_nonce: Callable[[str], int]) -> None:
        self._read_committed = committed_nonce
        self._committed: dict[str, int] = {}
        self._next: dict[str, int] = {}
        self._lock = threading.Lock()

    def _committed_nonce(self, sender: str) -> int:
        """Under the lock: the sender's committed nonce, from memory or the store."""
        nonce = self._committed.get(sender)
        if nonce is None:
            nonce = self._read_committed(sender)
            self._remember(sender, nonce)
        return nonce

    def _remember(self, sender: str, nonce: int) -> None:
        if len(self._committed) >= COMMITTED_NONCES:
            self._committed.clear()  # start afresh: misses only cost a store read
        self._committed[sender] = nonce

    def admit(self, tx: Transaction, check: Callable[[int], None]) -> None:
        with self._lock:
            expected = self._next.get(tx.sender)
            if expected is None:
                expected = self._committed_nonce(tx.sender)
            check(expected)
            self._next[tx.sender] = expected + 1

    def block_committed(self, senders: set[str], nonces: dict[str, int]) -> None:
        """After a block is written: the committed nonces it set (``nonces``), and for
        every sender it carried, drop the counter the committed state has caught up
        with."""
        with self._lock:
            for sender, nonce in nonces.items():
                self._remember(sender, nonce)
            for sender in senders:
                tracked = self._next.get(sender)
                if tracked is not None and tracked <= self._committed_nonce(sender):
                    del self._next[sender]

    def reset(self, sender: str) -> None:
        with self._lock:
            self._next.pop(sender, None)


class TallyApplication(Application):
    def __init__(self, ledger: Ledger, validator: NamedKey | None,
                 on_commit: Callable[[CommittedBlock], None] = lambda block: None) -> None:
        self.ledger = ledger
        self.executor = ledger.executor
        self.genesis = ledger.genesis
        self.validator = validator
        self.on_commit = on_commit
        self.check_state = CheckState(self._committed_nonce)
        self._verified: OrderedDict[bytes, None] = OrderedDict()  # tx ids with valid signatures
        #: Wire bytes -> the transaction admission decoded and checked, so a transaction
        #: is decoded once per node, not again for its block and for rechecks.
        self._admitted: BoundedCache[bytes, Transaction] = BoundedCache(
            ADMITTED_CACHE, ADMITTED_BYTES)
        #: Wire bytes this node's API admitted: their CheckTx must not count them again.
        self._pre_admitted: BoundedCache[bytes, bool] = BoundedCache(
            PRE_ADMITTED, PRE_ADMITTED_BYTES)
        #: Bundle bytes -> its transactions' bytes, decoded once per node.
        self._bundles: BoundedCache[bytes, list[bytes]] = BoundedCache(
            BUNDLE_CACHE, BUNDLE_BYTES)
        self._speculative: tuple[bytes, PendingBlock, list] | None = None
        self._finalized: tuple[PendingBlock, list[bytes], bytes] | None = None
        #: height -> validator -> (the block its precommit was for, its signature line)
        self._votes: dict[int, dict[str, tuple[bytes, str]]] = {}
        stored = self.ledger.store.meta(DIVERGED_META)
        self.diverged: Divergence | None = None
        if stored:
            doc = json.loads(stored)
            self.diverged = Divergence(doc["height"], tuple(doc["dissenters"]))
        self._known: dict[bytes, KnownValidator] = {}
        self._learn_validators(self.ledger.read(VALIDATORS_KEY) or [])

    # --- validators -----------------------------------------------------------------

    def _learn_validators(self, docs: list[dict[str, Any]]) -> None:
        for v in docs:
            ck = bytes.fromhex(v["consensus_key"])
            if ck:
                self._known[consensus_address(ck)] = KnownValidator(
                    v["name"], bytes.fromhex(v["public_key"]), ck)

    def _by_name(self, name: str) -> KnownValidator | None:
        return next((v for v in self._known.values() if v.name == name), None)

    # --- admission --------------------------------------------------------------------

    def _committed_nonce(self, account: str) -> int:
        raw = self.ledger.store.read_value(nonce_key(account))
        return 0 if raw is None else cbor2.loads(raw)

    def _mark_verified(self, tx_id: bytes) -> None:
        self._verified[tx_id] = None
        if len(self._verified) > 200_000:
            self._verified.popitem(last=False)

    def admit(self, raw: bytes, *, local: bool = True) -> Transaction:
        """Full admission; raises a TallyError. ``local`` marks a transaction this node's
        API admitted, so CometBFT's own CheckTx of it does not count its nonce twice."""
        tx = self._precheck(raw)
        if tx.id not in self._verified:
            check_signature(tx, self.ledger.suite)
        return self._accept(tx, local)

    def admit_many(self, raws: list[bytes]) -> list[Transaction | TallyError]:
        """Admit a batch from this node's API, verifying signatures on every core."""
        return admit_batch(raws, self.ledger.suite, self._precheck,
                           lambda tx: self._accept(tx, True),
                           is_verified=lambda tx: tx.id in self._verified)

    def _precheck(self, raw: bytes) -> Transaction:
        """Decoded and checked but for the signature (and the nonce)."""
        tx = self._admitted.get(raw)
        return tx if tx is not None else self.executor.precheck(raw)

    def _accept(self, tx: Transaction, local: bool) -> Transaction:
        """Admit a transaction whose signature verified: count its nonce, keep it decoded."""
        self._mark_verified(tx.id)
        next_height = self.ledger.height + 1
        self.check_state.admit(
            tx, lambda expected: self.executor.check_nonce_and_expiry(tx, expected, next_height))
        self._admitted.put(tx.raw, tx, 3 * len(tx.raw) + 256)
        if local:
            self._pre_admitted.put(tx.raw, True, len(tx.raw) + 64)
        return tx

    def _decoded(self, raw: bytes) -> Transaction:
        """The transaction of these wire bytes: from admission if this node admitted it."""
        tx = self._admitted.get(raw)
        return tx if tx is not None else self.executor.decode(raw)

    def check_tx(self, req: abci.RequestCheckTx) -> abci.ResponseCheckTx:
        log_text = ""
        try:
            if is_bundle(req.tx):
                log_text = self._check_bundle(req.tx, recheck=req.type == abci.RECHECK)
            elif req.type == abci.RECHECK:
                self._recheck(req.tx)
            else:
                if self._pre_admitted.pop(req.tx) is None:
                    self.admit(req.tx, local=False)
        except TallyError as exc:
            return abci.ResponseCheckTx(code=ABCI_CODES[exc.code], log=exc.message,
                                        codespace=CODESPACE)
        except Exception as exc:  # undecodable input of any kind
            return abci.ResponseCheckTx(code=ABCI_CODES[Code.MALFORMED], log=str(exc),
                                        codespace=CODESPACE)
        return abci.ResponseCheckTx(code=0, log=log_text)

    def _bundle(self, raw: bytes) -> list[bytes]:
        """The transactions of a bundle: as admission kept them, or decoded now (and not
        kept: only a bundle with an admitted transaction is, see `_check_bundle`).
        Raises TxRejected."""
        inner = self._bundles.get(raw)
        return inner if inner is not None else decode_bundle(raw)

    def _keep_bundle(self, raw: bytes, inner: list[bytes]) -> None:
        self._bundles.put(raw, inner, 2 * len(raw) + 64 * len(inner))

    def _check_bundle(self, raw: bytes, *, recheck: bool) -> str:
        """Admit each transaction of a bundle as if it had come alone.

        The bundle stays in the mempool while any of its transactions can still enter a
        block: a refused one (a nonce another node's bundle used first, say) costs only
        its own place, and execution gives it a receipt of failure or leaves it out.
        Raises the first refusal when every transaction is refused."""
        inner = self._bundle(raw)
        if recheck:
            errors = []
            for tx_raw in inner:
                try:
                    self._recheck(tx_raw)
                except TallyError as exc:
                    errors.append(exc)
            if len(errors) == len(inner):
                raise errors[0]
            return ""
        # Transactions this node's API admitted are not counted twice.
        fresh = [t for t in inner if self._pre_admitted.pop(t) is None]
        refused = [r for r in admit_batch(fresh, self.ledger.suite, self._precheck,
                                          lambda tx: self._accept(tx, False),
                                          is_verified=lambda tx: tx.id in self._verified)
                   if isinstance(r, TallyError)] if fresh else []
        if len(refused) == len(inner):
            raise refused[0]
        self._keep_bundle(raw, inner)
        return f"{len(refused)} of {len(inner)} refused: {refused[0].message}" if refused else ""

    def _recheck(self, raw: bytes) -> None:
        """After a block: is a transaction still in the mempool still possible?

        Answered from memory (the decoded transaction, the ledger's state cache): in
        CometBFT v0.38 the next height waits for every recheck."""
        tx = self._decoded(raw)
        if tx.nonce < (self.ledger.read(nonce_key(tx.sender)) or 0):
            raise TxRejected("already committed", Code.NONCE_REPLAYED)
        if tx.expiry < self.ledger.height + 1:
            self.check_state.reset(tx.sender)
            raise TxRejected("expired", Code.EXPIRED)

    # --- chain start and handshake ----------------------------------------------------

    def info(self, req: abci.RequestInfo) -> abci.ResponseInfo:
        height = self.ledger.height
        return abci.ResponseInfo(
            data="tally", version="1", app_version=1, last_block_height=height,
            last_block_app_hash=self.ledger.last_hash if height else b"")

    def init_chain(self, req: abci.RequestInitChain) -> abci.ResponseInitChain:
        if req.chain_id != self.genesis.chain_id:
            raise ValueError(f"CometBFT's chain id {req.chain_id!r} is not Tally genesis "
                             f"{self.genesis.chain_id!r}: refusing to start")
        theirs = sorted((v.pub_key.ed25519, v.power) for v in req.validators)
        ours = sorted((v.consensus_key, v.power) for v in self.genesis.validators)
        if theirs != ours:
            raise ValueError("CometBFT's genesis validators differ from Tally's genesis: "
                             "refusing to start")
        # The genesis hash is the chain's first app hash: block 1's header carries it, so
        # a node with any other Tally genesis (roles, parameters) cannot accept block 1 and
        # halts instead of storing a diverging ledger.
        return abci.ResponseInitChain(app_hash=self.genesis.hash)

    # --- proposals and votes ----------------------------------------------------------

    def prepare_proposal(self, req: abci.RequestPrepareProposal) -> abci.ResponsePrepareProposal:
        lines: dict[str, str] = {}
        # Only lines that verify against our own committed checkpoint of the previous
        # height: every validator rejects a cosignature transaction with one bad line,
        # so passing on a divergent validator's extension would halt the whole chain.
        previous = self.ledger.store.block(req.height - 1)
        body = _body_of(previous.checkpoint) if previous is not None else None
        for vote in req.local_last_commit.votes:
            if vote.block_id_flag != COMMIT_FLAG or not vote.vote_extension:
                continue
            known = self._known.get(vote.validator.address)
            decoded = _decode_extension(vote.vote_extension)
            if known and decoded and decoded[0] == req.height - 1 and body is not None \
                    and self._line_verifies(body, known.name, decoded[1]):
                lines[known.name] = decoded[1]
        system = [encode_cosign_tx(req.height - 1, lines)] if lines else []
        budget = req.max_tx_bytes - sum(len(t) + 8 for t in system)
        user, count = [], 0
        for raw in req.txs:  # up to max_block_txs Tally transactions, in mempool order
            if decode_cosign_tx(raw) is not None:
                continue
            count += bundle_size(raw) if is_bundle(raw) else 1
            if count > self.executor.params.max_block_txs:
                break
            user.append(raw)
        return abci.ResponsePrepareProposal(txs=system + take_txs_within(user, budget))

    def process_proposal(self, req: abci.RequestProcessProposal) -> abci.ResponseProcessProposal:
        for position, raw in enumerate(req.txs):
            cosign = decode_cosign_tx(raw)
            if cosign is None:
                continue
            if position != 0 or not self._valid_cosignatures(*cosign):
                log.warning("rejecting proposal %s: bad cosignature transaction", req.hash.hex())
                return abci.ResponseProcessProposal(status=REJECT)
        try:
            self._execute(req.hash, req.height, _time_ms(req.time), list(req.txs))
        except ProposalTooLarge as exc:
            log.warning("rejecting proposal %s: %s", req.hash.hex(), exc)
            return abci.ResponseProcessProposal(status=REJECT)
        except Exception:
            log.exception("rejecting proposal %s: it does not execute", req.hash.hex())
            return abci.ResponseProcessProposal(status=REJECT)
        return abci.ResponseProcessProposal(status=ACCEPT)

    def extend_vote(self, req: abci.RequestExtendVote) -> abci.ResponseExtendVote:
        if self.validator is None:
            return abci.ResponseExtendVote(vote_extension=b"")
        pending, _ = self._execute(req.hash, req.height, _time_ms(req.time), list(req.txs))
        line = self.ledger.sign_checkpoint(pending.checkpoint.body())
        self._votes.setdefault(req.height, {})[self.validator.name] = (req.hash, line)
        return abci.ResponseExtendVote(vote_extension=cbor2.dumps([req.height, line]))

    def verify_vote_extension(self, req: abci.RequestVerifyVoteExtension
                              ) -> abci.ResponseVerifyVoteExtension:
        accept = abci.ResponseVerifyVoteExtension.ACCEPT
        if not req.vote_extension:
            return abci.ResponseVerifyVoteExtension(status=accept)  # counts for nothing
        decoded = _decode_extension(req.vote_extension)
        known = self._known.get(req.validator_address)
        if decoded is None or known is None or decoded[0] != req.height or \
                not decoded[1].startswith(f"— {known.name} "):
            return abci.ResponseVerifyVoteExtension(
                status=abci.ResponseVerifyVoteExtension.REJECT)
        # The line is checked against the checkpoint when the block commits; a bad one is
        # then dropped, so it can never count towards a quorum.
        self._votes.setdefault(req.height, {})[known.name] = (req.hash, decoded[1])
        return abci.ResponseVerifyVoteExtension(status=accept)

    # --- execution --------------------------------------------------------------------

    def _execute(self, block_hash: bytes, height: int, time_ms: int, raws: list[bytes]
                 ) -> tuple[PendingBlock, list]:
        spec = self._speculative
        if spec is not None and spec[0] == block_hash:
            return spec[1], spec[2]
        if spec is not None:
            self.ledger.discard()
            self._speculative = None
        if height != self.ledger.height + 1:
            raise RuntimeError(f"asked to execute height {height}; the ledger is at "
                               f"{self.ledger.height}")
        txs, slots = self._record_once(raws, [self._carried(raw) for raw in raws])
        if len(txs) > self.executor.params.max_block_txs:
            raise ProposalTooLarge(f"{len(txs)} transactions, the limit is "
                                   f"{self.executor.params.max_block_txs}")
        self._verify_unseen(txs)
        pending = self.ledger.execute(txs, time_ms, is_verified=lambda i: i in self._verified)
        self._speculative = (block_hash, pending, slots)
        return pending, slots

    def _verify_unseen(self, txs: list[Transaction]) -> None:
        """Verify together the signatures of a block's transactions this node never
        admitted (it was catching up, or the proposer had them first), as CheckTx would
        have; the executor checks one by one, and refuses, any that fail here."""
        unseen = [tx for tx in txs if tx.id not in self._verified]
        if len(unseen) < 2:
            return
        verdicts = self.ledger.suite.verify_many([signed_message(tx) for tx in unseen])
        for tx, valid in zip(unseen, verdicts, strict=True):
            if valid:
                self._mark_verified(tx.id)

    def _carried(self, raw: bytes) -> list[Transaction] | TallyError | None:
        """What one CometBFT transaction carries: None for the cosignature system
        transaction, else its transactions (one, or a bundle's), or the error that leaves
        it out whole."""
        if decode_cosign_tx(raw) is not None:
            return None
        try:
            if is_bundle(raw):
                return [self._decoded(t) for t in self._bundle(raw)]
            return [self._decoded(raw)]
        except TallyError as exc:
            return exc

    def _record_once(self, raws: list[bytes],
                     carried: list[list[Transaction] | TallyError | None]
                     ) -> tuple[list[Transaction], list[tuple[str, Any]]]:
        """The block's transactions, each once, and what each CometBFT transaction became.

        A proposer may carry a transaction twice (in two nodes' bundles, or a faulty
        proposer) or one a committed block already holds; the chain records it once."""
        seen = self.ledger.store.committed_tx_ids(
            [tx.id for group in carried if isinstance(group, list) for tx in group])
        txs: list[Transaction] = []
        slots: list[tuple[str, Any]] = []
        for raw, group in zip(raws, carried, strict=True):
            if group is None:
                slots.append(("system", None))
                continue
            if isinstance(group, TallyError):
                slots.append(("error", group))
                continue
            fresh = []
            for tx in group:
                if tx.id not in seen:
                    seen.add(tx.id)
                    fresh.append(tx)
            if is_bundle(raw):
                slots.append(("bundle", (len(txs), len(fresh), len(group))))
            elif fresh:
                slots.append(("tx", len(txs)))
            else:
                slots.append(("error", TxRejected("the transaction is already in the chain",
                                                  Code.DUPLICATE)))
            txs += fresh
        return txs, slots

    def finalize_block(self, req: abci.RequestFinalizeBlock) -> abci.ResponseFinalizeBlock:
        pending, slots = self._execute(req.hash, req.height, _time_ms(req.time), list(req.txs))
        results = []
        for kind, value in slots:
            if kind == "system":
                results.append(abci.ExecTxResult(code=0, info="cosignatures"))
            elif kind == "error":
                results.append(abci.ExecTxResult(code=ABCI_CODES[value.code], log=value.message,
                                                 codespace=CODESPACE))
            elif kind == "bundle":
                results.append(_bundle_result(pending.outcomes, *value))
            else:
                results.append(_exec_result(pending.outcomes[value]))
        updates = [
            abci.ValidatorUpdate(pub_key=keys_pb2.PublicKey(
                ed25519=bytes.fromhex(u["consensus_key"])), power=u["power"])
            for u in pending.validator_updates
        ]
        self._finalized = (pending, list(req.txs), req.hash)
        return abci.ResponseFinalizeBlock(tx_results=results, validator_updates=updates,
                                          app_hash=pending.hash)

    def commit(self, req: abci.RequestCommit) -> abci.ResponseCommit:
        assert self._finalized is not None, "commit without finalize_block"
        pending, raws, block_hash = self._finalized
        self._finalized = None
        self._speculative = None
        rows, dissenters = self._cosignatures_to_store(pending, raws, block_hash)
        block = self.ledger.commit(pending, rows)
        self._check_divergence(pending.height, dissenters)
        self._learn_validators([{k: u[k] for k in ("name", "public_key", "consensus_key")}
                                for u in pending.validator_updates])
        senders = {o.tx.sender for o in block.outcomes}
        self.check_state.block_committed(senders, {
            sender: pending.decoded[key] for sender in senders
            if (key := nonce_key(sender)) in pending.decoded})
        for raw in raws:
            self._bundles.pop(raw)
        for outcome in block.outcomes:
            self._admitted.pop(outcome.tx.raw)
            if not outcome.ran:  # it consumed no nonce: count this sender afresh
                self.check_state.reset(outcome.tx.sender)
        self.on_commit(block)
        return abci.ResponseCommit()

    # --- cosignatures -----------------------------------------------------------------

    def _valid_cosignatures(self, height: int, lines: dict[str, str]) -> bool:
        row = self.ledger.store.block(height)
        if row is None or height != self.ledger.height:
            return False
        body = _body_of(row.checkpoint)
        return all(self._line_verifies(body, name, line) for name, line in lines.items())

    def _line_verifies(self, body: str, name: str, line: str) -> bool:
        known = self._by_name(name)
        if known is None or not line.startswith(f"— {name} "):
            return False
        try:
            open_note(body + "\n" + line, [NoteVerifier(name, known.public_key,
                                                        self.ledger.suite)])
        except (NoteError, ValueError):
            return False
        return True

    def _cosignatures_to_store(self, pending: PendingBlock, raws: list[bytes],
                               block_hash: bytes) -> tuple[list[tuple[int, str, str]], list[str]]:
        """The signature lines to keep with this block, each verified: those its
        cosignature transaction carries for the previous checkpoint, and those the vote
        extensions of this height brought for this block's checkpoint. Also the
        validators whose lines for this very block do not verify (see Divergence)."""
        rows: list[tuple[int, str, str]] = []
        cosign = decode_cosign_tx(raws[0]) if raws else None
        if cosign is not None:
            height, lines = cosign
            previous = self.ledger.store.block(height)
            if previous is not None:
                body = _body_of(previous.checkpoint)
                rows += [(height, name, line) for name, line in lines.items()
                         if self._line_verifies(body, name, line)]
        collected = self._votes.pop(pending.height, {})
        for old in [h for h in self._votes if h < pending.height]:
            del self._votes[old]
        body = pending.checkpoint.body()
        dissenters = []
        for name, (voted_for, line) in sorted(collected.items()):
            if voted_for != block_hash:  # a precommit of an earlier round, for another block
                continue
            if self._line_verifies(body, name, line):
                rows.append((pending.height, name, line))
            else:
                dissenters.append(name)
        return rows, dissenters

    def _check_divergence(self, height: int, dissenters: list[str]) -> None:
        """Mark this node diverged when the validators whose signatures disagree with its
        checkpoint hold more than a third of the power (a node's own state is all it
        can check a block against; CometBFT refuses the next block, but the Tally process
        would keep serving what it computed). Kept in the store: a restart does not
        repair the state."""
        if not dissenters or self.diverged is not None:
            return
        powers = {v["name"]: v["power"] for v in self.ledger.read(VALIDATORS_KEY) or []}
        if 3 * sum(powers.get(n, 0) for n in dissenters) <= sum(powers.values()):
            return
        self.diverged = Divergence(height, tuple(dissenters))
        self.ledger.store.write_meta(DIVERGED_META,
                                     json.dumps(self.diverged.to_dict()).encode())
        log.error("this node DIVERGED at height %d: validators %s signed another checkpoint; "
                  "its reads are refused until its data directory is rebuilt "
                  "(docs/network.md)", height, ", ".join(dissenters))


def _body_of(note: str) -> str:
    """The checkpoint text of a signed note (the whole text if it has no signatures)."""
    end = note.find("\n\n")
    return note if end < 0 else note[:end + 1]


def _decode_extension(data: bytes) -> tuple[int, str] | None:
    try:
        height, line = codec.loads_untrusted(data)
    except Exception:
        return None
    if type(height) is int and isinstance(line, str) and line.endswith("\n") and \
            line.count("\n") == 1:
        return height, line
    return None


def _bundle_result(outcomes: list[TxOutcome], start: int, executed: int, carried: int
                   ) -> abci.ExecTxResult:
    """CometBFT's result for a bundle: carried (code 0); each transaction's own result is
    its Tally receipt."""
    ok = sum(1 for o in outcomes[start:start + executed] if o.code == OK)
    return abci.ExecTxResult(code=0, info=f"bundle of {carried}: {ok} succeeded, "
                             f"{executed - ok} failed, {carried - executed} already in the chain")


def _exec_result(outcome: TxOutcome) -> abci.ExecTxResult:
    if outcome.code == OK:
        return abci.ExecTxResult(code=0, data=outcome.tx.id)
    return abci.ExecTxResult(code=ABCI_CODES.get(outcome.code, 99), log=outcome.message,
                             codespace=CODESPACE, data=outcome.tx.id)
