"""The `Application` base class: one method per ABCI 2.0 request, protobuf in, protobuf out.

Subclasses override what they need; the defaults make a valid, do-nothing chain (every
transaction accepted, no state, no snapshots, vote extensions empty and accepted), so
a new application can be brought up against CometBFT one method at a time.

Methods are plain synchronous functions, called one at a time on the server's event
loop (see `tally.consensus.abci.server` for why).  A method may instead be written as
``async def``; the server awaits it, but then calls on different connections can
interleave at each ``await`` and the application must guard its own state.
"""

from __future__ import annotations

from collections.abc import Iterable

from tally.consensus.abci.proto_gen.tendermint.abci import types_pb2 as abci
from tally.consensus.abci.proto_gen.tendermint.types import canonical_pb2
from tally.consensus.abci.wire import encode_uvarint

CODE_OK = 0

#: The ABCI version string of CometBFT v0.38 (``version.ABCIVersion``).
ABCI_VERSION = "2.0.0"


def tx_proto_size(tx: bytes) -> int:
    """Bytes `tx` takes inside a block's ``Data`` message (CometBFT's max_tx_bytes unit).

    CometBFT checks ResponsePrepareProposal.txs with ``ComputeProtoSizeForTxs``: each
    tx costs a field tag, its uvarint length, and the bytes themselves.
    """
    return 1 + len(encode_uvarint(len(tx))) + len(tx)


def take_txs_within(txs: Iterable[bytes], max_tx_bytes: int) -> list[bytes]:
    """The longest prefix of `txs` whose encoded size fits in `max_tx_bytes`.

    A prefix, not a best fit, so the proposer keeps mempool order (first come, first in).
    """
    out: list[bytes] = []
    used = 0
    for tx in txs:
        used += tx_proto_size(tx)
        if used > max_tx_bytes:
            break
        out.append(tx)
    return out


def vote_extension_sign_bytes(chain_id: str, height: int, round: int, extension: bytes) -> bytes:
    """The exact bytes a validator's consensus key signs for a vote extension.

    CometBFT signs ``CanonicalVoteExtension{extension, height, round, chain_id}``
    length-delimited (types.VoteExtensionSignBytes).  With this and the validator's
    Ed25519 public key, anyone can check an ``ExtendedVoteInfo.extension_signature``
    offline, which is what turns vote extensions into portable cosignatures.
    """
    msg = canonical_pb2.CanonicalVoteExtension(
        extension=extension, height=height, round=round, chain_id=chain_id
    )
    payload = msg.SerializeToString(deterministic=True)
    return encode_uvarint(len(payload)) + payload


class Application:
    """Base ABCI 2.0 application; override the methods your state machine needs.

    Connection each method arrives on (CometBFT orders calls within a connection):
    consensus: init_chain, prepare_proposal, process_proposal, extend_vote,
    verify_vote_extension, finalize_block, commit; mempool: check_tx;
    info: info, query; snapshot: list_snapshots, offer_snapshot, load_snapshot_chunk,
    apply_snapshot_chunk.
    """

    # --- info connection -------------------------------------------------------------

    def info(self, req: abci.RequestInfo) -> abci.ResponseInfo:
        """Report the last *committed* height and app hash.

        CometBFT compares them with its block store at start-up and replays the
        missing blocks; height 0 means "fresh", and InitChain follows.
        """
        return abci.ResponseInfo(last_block_height=0, last_block_app_hash=b"")

    def query(self, req: abci.RequestQuery) -> abci.ResponseQuery:
        return abci.ResponseQuery(code=CODE_OK)

    # --- mempool connection ----------------------------------------------------------

    def check_tx(self, req: abci.RequestCheckTx) -> abci.ResponseCheckTx:
        return abci.ResponseCheckTx(code=CODE_OK)

    # --- consensus connection --------------------------------------------------------

    def init_chain(self, req: abci.RequestInitChain) -> abci.ResponseInitChain:
        """Empty response: keep genesis validators and consensus params as they are."""
        return abci.ResponseInitChain()

    def prepare_proposal(self, req: abci.RequestPrepareProposal) -> abci.ResponsePrepareProposal:
        """Propose the mempool's txs as given, cut to max_tx_bytes (required by the spec)."""
        return abci.ResponsePrepareProposal(txs=take_txs_within(req.txs, req.max_tx_bytes))

    def process_proposal(self, req: abci.RequestProcessProposal) -> abci.ResponseProcessProposal:
        return abci.ResponseProcessProposal(status=abci.ResponseProcessProposal.ACCEPT)

    def extend_vote(self, req: abci.RequestExtendVote) -> abci.ResponseExtendVote:
        return abci.ResponseExtendVote(vote_extension=b"")

    def verify_vote_extension(
        self, req: abci.RequestVerifyVoteExtension
    ) -> abci.ResponseVerifyVoteExtension:
        return abci.ResponseVerifyVoteExtension(status=abci.ResponseVerifyVoteExtension.ACCEPT)

    def finalize_block(self, req: abci.RequestFinalizeBlock) -> abci.ResponseFinalizeBlock:
        """Every tx succeeds; the app hash stays empty (a stateless chain)."""
        return abci.ResponseFinalizeBlock(
            tx_results=[abci.ExecTxResult(code=CODE_OK) for _ in req.txs], app_hash=b""
        )

    def commit(self, req: abci.RequestCommit) -> abci.ResponseCommit:
        """Persist what finalize_block staged.  Must be durable before returning."""
        return abci.ResponseCommit()

    # --- snapshot connection ---------------------------------------------------------

    def list_snapshots(self, req: abci.RequestListSnapshots) -> abci.ResponseListSnapshots:
        return abci.ResponseListSnapshots()

    def offer_snapshot(self, req: abci.RequestOfferSnapshot) -> abci.ResponseOfferSnapshot:
        """No snapshot support: ABORT makes a state-syncing node stop trying at once."""
        return abci.ResponseOfferSnapshot(result=abci.ResponseOfferSnapshot.ABORT)

    def load_snapshot_chunk(
        self, req: abci.RequestLoadSnapshotChunk
    ) -> abci.ResponseLoadSnapshotChunk:
        return abci.ResponseLoadSnapshotChunk()

    def apply_snapshot_chunk(
        self, req: abci.RequestApplySnapshotChunk
    ) -> abci.ResponseApplySnapshotChunk:
        return abci.ResponseApplySnapshotChunk(result=abci.ResponseApplySnapshotChunk.ABORT)
