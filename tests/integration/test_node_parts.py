"""The node's parts: the Engine protocol and its two engines, and the ChainReader alone."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tally.errors import NotFound
from tally.evidence.export import export_bundle
from tally.evidence.verify import verify_bundle
from tally.node import ChainReader, CometSettings, Engine, Node
from tally.node.engine import Comet, Solo
from tally.protocol.header import BlockHeader
from tally.state.store import Store
from tests.support.chain import Chain

NOWHERE = CometSettings("tcp://127.0.0.1:1", "http://127.0.0.1:1")


def _members(protocol: type) -> set[str]:
    return {name for name in vars(protocol) if not name.startswith("_")} | set(
        protocol.__annotations__)


@pytest.mark.parametrize("engine", [Solo, Comet])
def test_both_engines_offer_the_whole_protocol(engine: type) -> None:
    missing = {m for m in _members(Engine) if not hasattr(engine, m)}
    assert missing == set()
    for name in ("admit", "admit_many", "stop", "outcome"):
        assert inspect.signature(getattr(engine, name)).parameters.keys() == \
            inspect.signature(getattr(Engine, name)).parameters.keys(), name


def test_the_node_no_longer_serves_reads_itself() -> None:
    for name in ("receipt", "transaction", "block", "value", "asset", "holding", "account",
                 "history", "events", "state_proof", "checkpoint_note", "inclusion_proof",
                 "consistency_proof", "log_view", "contract", "contract_source",
                 "contract_query", "commercial_events"):
        assert not hasattr(Node, name), name
        assert callable(getattr(ChainReader, name)), name


def test_status_is_the_readers_plus_the_engines(chain: Chain) -> None:
    chain.issue("BOND", 10, to="alice")
    status = chain.node.status()
    assert chain.node.reader.status().items() <= status.items()
    assert list(status) == ["chain_id", "suite", "genesis_hash", "height", "block_hash",
                            "log_size", "state_root", "mempool", "engine", "engine_failure",
                            "validator", "diverged"]
    assert (status["engine"], status["mempool"], status["engine_failure"],
            status["diverged"]) == ("solo", 0, None, None)


def test_a_reader_over_a_store_alone(chain: Chain, tmp_path: Path) -> None:
    """What an explorer or an indexer would do: a store and the genesis, no node."""
    receipt = chain.issue("BOND", 10, to="alice")
    index = receipt.events[0]
    chain.stop()  # release the store's lock
    store = Store(chain.data_dir / "chain.sqlite")
    try:
        reader = ChainReader(store, chain.genesis)
        assert reader.receipt(receipt.tx) == receipt
        assert reader.transaction(receipt.tx)["kind"] == "asset.issue"
        assert reader.holding("BOND", chain.addr("alice"))["q"] == 10
        height = reader.height()
        assert isinstance(reader.header(height), BlockHeader)
        assert reader.header(height).height == height
        assert [v["name"] for v in reader.validators()] == ["validator-0"]
        assert reader.validator_update_rows(height) == []
        verdict = verify_bundle(export_bundle(reader, index),
                                genesis_hash=chain.genesis.hash.hex())
        assert verdict.genesis_pinned and verdict.signers == ["validator-0"]
        with pytest.raises(NotFound):
            reader.header(height + 1)
    finally:
        store.close()


def test_a_cometbft_node_before_it_starts(tmp_path: Path, chain: Chain) -> None:
    """The CometBFT engine through the same Node: engine facts, metrics, and a stop that
    needs no start (nothing is reachable at NOWHERE; nothing is contacted)."""
    node = Node(tmp_path / "comet", chain.genesis, chain.validator, comet=NOWHERE)
    try:
        status = node.status()
        assert (status["engine"], status["mempool"], status["diverged"]) == \
            ("cometbft", None, None)
        assert node.diverged is None and node.engine.failure is None
        names = {f.name for f in text_string_to_metric_families(node.metrics.render().decode())}
        assert "tally_diverged" in names and "tally_mempool_transactions" not in names
    finally:
        node.stop()
