"""Evidence bundles: export, offline verification, and tamper detection.

A bundle that verifies must prove the event; any change to any byte of a bundle, or of
the ledger it was exported from, must be caught.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import cbor2
import pytest

from tally.audit import audit_ledger
from tally.evidence.export import export_bundle
from tally.evidence.verify import EvidenceError, verify_bundle
from tally.genesis import make_genesis
from tally.keys import generate
from tests.support.chain import Chain


def populate(chain: Chain) -> int:
    """A little history; returns the log index of Alice's transfer to Bob."""
    chain.issue("BOND", 1000, to="alice")
    chain.ok("alice", "custody.pledge", {"asset": "BOND", "pledgee": chain.addr("lender"),
                                         "quantity": 100})
    r = chain.ok("alice", "custody.transfer", {"asset": "BOND", "to": chain.addr("bob"),
                                               "quantity": 250, "memo": "trade 1"})
    chain.ok("bob", "custody.transfer", {"asset": "BOND", "to": chain.addr("carol"),
                                         "quantity": 50})
    chain.ok("custodian", "custody.freeze", {"asset": "BOND", "holder": chain.addr("carol"),
                                             "quantity": 10, "reason": "dispute"})
    return r.events[0]


def test_bundle_verifies_and_says_what_happened(chain: Chain) -> None:
    index = populate(chain)
    bundle = export_bundle(chain.node.reader, index, consistency=True)
    verdict = verify_bundle(bundle, genesis_hash=chain.genesis.hash.hex())
    assert verdict.genesis_pinned
    assert verdict.signers == ["validator-0"]
    assert verdict.event["type"] == "custody.transfer"
    assert verdict.event["from"] == chain.addr("alice")
    assert verdict.event["to"] == chain.addr("bob")
    assert verdict.event["quantity"] == 250
    assert verdict.event["details"] == {"memo": "trade 1"}
    assert "signed by account " + chain.addr("alice") in verdict.facts[0]
    assert any("later checkpoint" in fact for fact in verdict.facts)
    # A bundle survives JSON round trips through files.
    assert verify_bundle(json.dumps(bundle)).event == verdict.event


def test_every_event_of_the_history_has_valid_evidence(chain: Chain) -> None:
    populate(chain)
    size = chain.node.status()["log_size"]
    assert size > 0
    events = chain.node.reader.events(limit=size)
    for index in range(size):
        verdict = verify_bundle(export_bundle(chain.node.reader, index, consistency=True),
                                genesis_hash=chain.genesis.hash.hex())
        # The bundle proves this event, not merely some event of the log.
        assert f"entry {index} of log" in " ".join(verdict.facts), verdict.facts
        assert events[index]["log_index"] == index
        assert (verdict.event["tx"], verdict.event["type"]) == (events[index]["tx"],
                                                                events[index]["type"])


def test_a_foreign_genesis_is_refused_when_pinned(chain: Chain) -> None:
    index = populate(chain)
    bundle = export_bundle(chain.node.reader, index)
    with pytest.raises(EvidenceError) as info:
        verify_bundle(bundle, genesis_hash="00" * 32)
    assert info.value.reason == "genesis"


def test_a_forged_chain_with_its_own_keys_fails_against_the_pinned_genesis(
        chain: Chain, tmp_path: Path) -> None:
    """An attacker can build a whole fake chain with valid signatures of its own keys;
    only the pinned genesis hash tells it apart."""
    index = populate(chain)
    bundle = export_bundle(chain.node.reader, index)
    forger = generate("validator-0", chain.suite_name)
    fake_genesis = make_genesis(chain.genesis.chain_id, chain.suite,
                                [(forger.name, forger.key)], {}, chain.genesis.time_ms)
    forged = dict(bundle, genesis=base64.b64encode(fake_genesis.canonical_bytes()).decode(),
                  genesis_hash=fake_genesis.hash.hex())
    with pytest.raises(EvidenceError) as info:
        verify_bundle(forged)  # the real validator's signature is not the forger's
    assert info.value.reason == "checkpoint"
    with pytest.raises(EvidenceError):
        verify_bundle(forged, genesis_hash=chain.genesis.hash.hex())


def compact(bundle: dict) -> bytes:
    return json.dumps(bundle, separators=(",", ":")).encode()


def test_changing_any_byte_of_a_bundle_is_detected(intl_chain: Chain) -> None:
    index = populate(intl_chain)
    text = compact(export_bundle(intl_chain.node.reader, index, consistency=True))
    pinned = intl_chain.genesis.hash.hex()
    verify_bundle(text.decode(), genesis_hash=pinned)
    undetected = []
    for position in range(len(text)):
        for delta in (1, 0x20):
            mutated = bytearray(text)
            mutated[position] ^= delta
            try:
                verify_bundle(bytes(mutated), genesis_hash=pinned)
            except (EvidenceError, UnicodeDecodeError):
                continue
            undetected.append((position, delta, text[max(0, position - 20):position + 20]))
    assert undetected == []


def test_gm_bundle_byte_changes_are_detected(tmp_path: Path) -> None:
    chain = Chain(tmp_path, "gm")
    try:
        index = populate(chain)
        text = compact(export_bundle(chain.node.reader, index))
        for position in range(0, len(text), 7):  # SM2 checks are slower: sample positions
            mutated = bytearray(text)
            mutated[position] ^= 1
            with pytest.raises((EvidenceError, UnicodeDecodeError)):
                verify_bundle(bytes(mutated), genesis_hash=chain.genesis.hash.hex())
    finally:
        chain.stop()


def test_changing_the_stored_ledger_is_detected(chain: Chain) -> None:
    """Edit the database behind the node's back: the audit and the evidence catch it."""
    index = populate(chain)
    db_path = chain.data_dir / "chain.sqlite"
    assert audit_ledger(db_path, chain.genesis).problems == []
    chain.stop()
    originals = {}
    with sqlite3.connect(db_path) as db:
        originals["leaf"] = db.execute("SELECT leaf FROM events WHERE idx=?", (index,)).fetchone()[0]
    tamperings = {
        "event leaf": ("UPDATE events SET leaf=? WHERE idx=?", _tampered_leaf(originals["leaf"]),
                       index),
        "state value": ("UPDATE kv SET value=? WHERE key=?", cbor2.dumps({"q": 999, "p": 0,
                                                                          "f": 0}, canonical=True),
                        f"holding/BOND/{chain.addr('bob')}".encode()),
        "transaction": ("UPDATE txs SET raw=? WHERE height=?", None, 3),
        # Well-formed but altered: one digit more in the signed time line, so only the
        # signature can tell.
        "checkpoint": ("UPDATE blocks SET checkpoint=replace(checkpoint, 'time ', 'time 1') "
                       "WHERE height=?", None, 2),
    }
    expected = {
        "event leaf": f"events {index - index % 2}-{index - index % 2 + 1}: leaf bytes differ",
        "state value": "state: the root recomputed from stored values differs",
        "transaction": "block 3: transaction",
        "checkpoint": "block 2: checkpoint not signed by a quorum: bad_signature",
    }
    for name, (sql, value, where) in tamperings.items():
        copy = db_path.parent / f"copy-{name.replace(' ', '-')}.sqlite"
        _copy_db(db_path, copy)
        with sqlite3.connect(copy) as db:
            if name == "transaction":
                raw = db.execute("SELECT raw FROM txs WHERE height=?", (where,)).fetchone()[0]
                envelope = cbor2.loads(raw)
                body = cbor2.loads(envelope[0])
                body["payload"]["quantity"] += 1
                value = cbor2.dumps([cbor2.dumps(body, canonical=True), envelope[1]],
                                    canonical=True)
            if value is None:
                db.execute(sql, (where,))
            else:
                db.execute(sql, (value, where))
        problems = audit_ledger(copy, chain.genesis).problems
        assert any(p.startswith(expected[name]) for p in problems), (name, problems)


def _tampered_leaf(leaf: bytes) -> bytes:
    fields = cbor2.loads(leaf)
    fields["quantity"] += 1
    return cbor2.dumps(fields, canonical=True)


def _copy_db(src: Path, dst: Path) -> None:
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)


def test_verify_cli_exit_codes(chain: Chain, tmp_path: Path) -> None:
    index = populate(chain)
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(export_bundle(chain.node.reader, index, consistency=True)))
    ok = _cli("evidence", "verify", str(path), "--genesis-hash", chain.genesis.hash.hex())
    assert ok.returncode == 0 and "VALID" in ok.stdout
    bundle = json.loads(path.read_text())
    bundle["inclusion"]["tree_size"] += 1
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(bundle))
    result = _cli("evidence", "verify", str(bad), "--json")
    assert result.returncode == 1
    assert json.loads(result.stdout)["valid"] is False
    missing = _cli("evidence", "verify", str(tmp_path / "nope.json"))
    assert missing.returncode == 2


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tally", *args], capture_output=True, text=True,
                          timeout=60)


def test_conflicting_checkpoints_prove_misbehaviour(chain: Chain, tmp_path: Path) -> None:
    """A validator that signs two different roots for one log size has equivocated; the
    verifier names it from the two notes alone."""
    from tally.evidence.verify import find_misbehaviour
    from tally.log.checkpoint import Checkpoint, NoteSigner, parse_checkpoint, sign_note

    populate(chain)
    honest = chain.node.reader.checkpoint_note(3)
    checkpoint = parse_checkpoint(honest.split("\n\n")[0] + "\n", chain.suite.hash_size)
    forged_root = chain.suite.hash(b"another history")
    forged = sign_note(Checkpoint(checkpoint.origin, checkpoint.size, forged_root,
                                  checkpoint.extensions).body(),
                       [NoteSigner("validator-0", chain.validator.key)])
    genesis = chain.genesis.canonical_bytes()
    proof = find_misbehaviour(genesis, honest, forged)
    assert proof is not None and proof.signers == ("validator-0",)
    assert "two different roots" in proof.reason
    assert find_misbehaviour(genesis, honest, chain.node.reader.checkpoint_note(4)) is None
    # The same through the command line.
    (tmp_path / "a.txt").write_text(honest)
    (tmp_path / "b.txt").write_text(forged)
    chain.genesis.write(tmp_path / "genesis.json")
    result = _cli("evidence", "conflict", str(tmp_path / "a.txt"), str(tmp_path / "b.txt"),
                  "--genesis", str(tmp_path / "genesis.json"))
    assert result.returncode == 0 and "validator-0" in result.stdout
    (tmp_path / "c.txt").write_text(honest)
    same = _cli("evidence", "conflict", str(tmp_path / "a.txt"), str(tmp_path / "c.txt"),
                "--genesis", str(tmp_path / "genesis.json"))
    assert same.returncode == 1
