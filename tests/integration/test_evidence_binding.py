"""Evidence bound to its chain (protocol version 3, decision 0023).

The clone-chain attack an auditor made: a second chain started with the same chain id
and a reused validator key (a staging copy, a reset) issues 5,000,000 units to a real
account and freezes them; its bundle, with the real chain's genesis put in, verified as
evidence of the real chain, and its checkpoints made the honest validator look like an
equivocator. From version 3 every checkpoint names its genesis hash in a line that
every validator signature covers, and the header commits to every receipt.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tally.evidence.export import export_bundle
from tally.evidence.verify import EvidenceError, find_misbehaviour, verify_bundle
from tally.ledger import merkle_root
from tally.protocol.header import receipt_leaf
from tests.support.chain import GENESIS_TIME, Chain


def _forged_bundle(real: Chain, clone: Chain) -> dict:
    """A bundle of the clone's freeze, passed off as the real chain's."""
    clone.issue("BOND", 5_000_000, to="alice")
    frozen = clone.ok("custodian", "custody.freeze", {
        "asset": "BOND", "holder": clone.addr("alice"), "quantity": 5_000_000,
        "reason": "court order"})
    bundle = export_bundle(clone.node.reader, frozen.events[0])
    bundle["genesis"] = base64.b64encode(real.genesis.canonical_bytes()).decode()
    bundle["genesis_hash"] = real.genesis.hash.hex()
    return bundle


@pytest.fixture
def chains(tmp_path: Path):
    made: list[Chain] = []

    def make(version: int) -> tuple[Chain, Chain]:
        real = Chain(tmp_path / f"real-{version}", "intl", protocol_version=version)
        clone = Chain(tmp_path / f"clone-{version}", "intl", protocol_version=version,
                      keys_from=real, genesis_time=GENESIS_TIME + 60_000)
        made.extend((real, clone))
        real.issue("BOND", 1000, to="alice")
        return real, clone

    yield make
    for chain in made:
        chain.stop()


def test_a_clone_chains_bundle_is_refused_as_the_real_chains_evidence(chains) -> None:
    real, clone = chains(3)
    assert real.genesis.chain_id == clone.genesis.chain_id
    assert real.validator.key is clone.validator.key and real.genesis.hash != clone.genesis.hash
    forged = _forged_bundle(real, clone)
    with pytest.raises(EvidenceError) as caught:
        verify_bundle(forged, genesis_hash=real.genesis.hash.hex())
    assert caught.value.reason == "genesis" and "another genesis" in caught.value.message
    # Dropping the line does not help: every checkpoint of a version-3 chain names it.
    note = forged["checkpoint"]
    body, signatures = note.split("\n\n", 1)
    lines = [line for line in body.split("\n") if not line.startswith("genesis ")]
    forged["checkpoint"] = "\n".join(lines) + "\n\n" + signatures
    with pytest.raises(EvidenceError):
        verify_bundle(forged, genesis_hash=real.genesis.hash.hex())


def test_the_clones_checkpoints_do_not_make_the_honest_validator_an_equivocator(chains
                                                                               ) -> None:
    real, clone = chains(3)
    clone.issue("OTHER", 7, to="bob")  # the clone's log at size 1 has another root
    real_note, clone_note = real.node.reader.checkpoint_note(1), clone.node.reader.checkpoint_note(1)
    assert real_note.split("\n")[1] == clone_note.split("\n")[1] == "1"  # one size, two roots
    with pytest.raises(EvidenceError) as caught:
        find_misbehaviour(real.genesis.canonical_bytes(), real_note, clone_note)
    assert caught.value.reason == "genesis"


def test_version_2_bundles_still_verify_and_say_they_are_unbound(chains) -> None:
    """Old bundles keep verifying under their version's rules; the verdict says what
    they cannot rule out."""
    real, clone = chains(2)
    forged = _forged_bundle(real, clone)
    verdict = verify_bundle(forged, genesis_hash=real.genesis.hash.hex())
    assert any("does not name its genesis" in fact for fact in verdict.facts)
    honest = verify_bundle(export_bundle(real.node.reader, 0),
                           genesis_hash=real.genesis.hash.hex())
    assert any("does not name its genesis" in fact for fact in honest.facts)


def test_the_header_commits_to_every_receipt(chains) -> None:
    real, _ = chains(3)
    refused = real.send("alice", "custody.transfer", {"asset": "BOND", "to": real.addr("bob"),
                                                      "quantity": 10**9})
    assert not refused.ok
    reader = real.node.reader
    header = reader.header(refused.height)
    assert header.version == 3 and header.receipts is not None
    rows = reader.block_transactions(refused.height)
    assert [r.code for r in rows] == [refused.code]
    # The root is over what the txs table stores: the code and message of the refusal.
    leaves = [receipt_leaf(r.id, r.code, r.message, r.first_event, r.event_count, r.result)
              for r in rows]
    assert merkle_root(real.suite.hash, leaves) == header.receipts
    # A receipt edited in the store no longer matches the header.
    edited = [receipt_leaf(r.id, "OK", "", r.first_event, r.event_count, r.result)
              for r in rows]
    assert merkle_root(real.suite.hash, edited) != header.receipts


def test_the_standalone_verifiers_constants_are_tallys() -> None:
    """tally_verify copies, not imports, what it shares with the protocol."""
    import tally_verify

    from tally import tx as txmod
    from tally.protocol import versions

    assert tally_verify.BOUND_TO_GENESIS == versions.BOUND_TO_GENESIS
    assert tally_verify.TX_SIGNING_DOMAIN == txmod.SIGNING_DOMAIN


def test_an_upgraded_chains_binding_height_is_enforced_when_given(chains) -> None:
    """A chain that started before version 3 names its genesis from its upgrade height
    on; a verifier told that height (published with the genesis hash) refuses an unbound
    checkpoint at or above it, as a copy of the chain would make one."""
    real, clone = chains(2)
    forged = _forged_bundle(real, clone)
    height = int(forged["checkpoint"].split("\nheight ", 1)[1].split("\n", 1)[0])
    pinned = real.genesis.hash.hex()
    with pytest.raises(EvidenceError) as caught:
        verify_bundle(forged, genesis_hash=pinned, bound_from_height=height)
    assert caught.value.reason == "genesis"
    # Below the upgrade height the checkpoint is older than the binding: it verifies,
    # with the verdict's caveat.
    verdict = verify_bundle(forged, genesis_hash=pinned, bound_from_height=height + 1)
    assert any("does not name its genesis" in fact for fact in verdict.facts)

