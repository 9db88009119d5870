"""Witnesses (issue 14): an institution outside the validator set cosigns a chain's
checkpoints (C2SP tlog-witness) once each is consistent with the last it cosigned; a
node feeds it, bundles carry its cosignature, and the verifier can require it."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tally.evidence.export import export_bundle
from tally.evidence.verify import EvidenceError, verify_bundle
from tally.evidence.witnessed import require_witnesses, witnesses_of
from tally.keys import NamedKey, generate, save
from tally.node.witnessing import WitnessFeeder
from tally.witness import Witness, make_app
from tests.integration.test_evidence import populate
from tests.support.api import free_port, serve_app
from tests.support.chain import GENESIS_TIME, Chain


@pytest.fixture
def witness_key() -> NamedKey:
    return generate("court.example-w1", "intl")


def _request(old: int, proof: list[bytes], note: str) -> bytes:
    return (f"old {old}\n" + "".join(base64.b64encode(h).decode() + "\n" for h in proof)
            + "\n" + note).encode()


def test_a_node_feeds_its_witness_and_bundles_carry_the_cosignature(
        intl_chain: Chain, witness_key: NamedKey, tmp_path: Path) -> None:
    chain = intl_chain
    witness = Witness(witness_key, chain.genesis, tmp_path / "witness.json")
    with serve_app(make_app(witness)) as url:
        feeder = WitnessFeeder(chain.node.reader, chain.node.store, [url]).start()
        chain.node.add_listener(feeder.on_commit)
        try:
            index = populate(chain)
            height = chain.node.reader.height()
            deadline = time.monotonic() + 20
            while height not in feeder.fed and time.monotonic() < deadline:
                time.sleep(0.05)
            assert height in feeder.fed
        finally:
            feeder.stop()
    bundle = export_bundle(chain.node.reader, index, consistency=True)
    verify_bundle(bundle, genesis_hash=chain.genesis.hash.hex())  # validators: unchanged
    keys = {witness_key.name: witness_key.public_key}
    assert require_witnesses(bundle, keys, 1) == [witness_key.name]
    other = generate("auditor.example-w2", "intl")
    with pytest.raises(EvidenceError) as caught:
        require_witnesses(bundle, keys | {other.name: other.public_key}, 2)
    assert caught.value.reason == "witness" and other.name in caught.value.message

    # A damaged witness line is refused, not dropped.
    damaged = json.loads(json.dumps(bundle))
    for part in (damaged, damaged["consistency"]):
        lines = part["checkpoint"].split("\n")
        for i, line in enumerate(lines):
            if line.startswith(f"— {witness_key.name} "):
                lines[i] = line[:-3] + ("A" if line[-3] != "A" else "B") + line[-2:]
        part["checkpoint"] = "\n".join(lines)
    with pytest.raises(EvidenceError, match="does not verify"):
        witnesses_of(damaged, keys)

    # The command line asks for it too.
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    base = [sys.executable, "-m", "tally", "evidence", "verify", str(path), "--genesis-hash",
            chain.genesis.hash.hex()]
    ok = subprocess.run([*base, "--witness", f"{witness_key.name}={witness_key.public_key.hex()}"],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "Cosigned by witness" in ok.stdout, ok.stdout + ok.stderr
    missing = subprocess.run([*base, "--witness", f"{other.name}={other.public_key.hex()}"],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and "witness" in missing.stderr


def test_the_witness_follows_the_c2sp_protocol(intl_chain: Chain, witness_key: NamedKey,
                                               tmp_path: Path) -> None:
    chain = intl_chain
    populate(chain)
    reader = chain.node.reader
    state = tmp_path / "witness.json"
    witness = Witness(witness_key, chain.genesis, state)
    note2, note5 = reader.checkpoint_note(2), reader.checkpoint_note(5)
    size2, size5 = reader.block_row(2).log_size, reader.block_row(5).log_size
    assert 0 < size2 < size5

    assert witness.add_checkpoint(b"nonsense").status == 400
    assert witness.add_checkpoint(_request(0, [], note2)).status == 200
    # The old size must be the one it last cosigned; it says which.
    stale = witness.add_checkpoint(_request(0, [], note5))
    assert (stale.status, stale.body, stale.content_type) == (409, f"{size2}\n",
                                                              "text/x.tlog.size")
    proof = reader.log_view(size5).consistency_proof(size2, size5)
    bad = [bytes(32)] + proof[1:] if proof else [bytes(32)]
    assert witness.add_checkpoint(_request(size2, bad, note5)).status == 422
    answer = witness.add_checkpoint(_request(size2, proof, note5))
    assert answer.status == 200 and answer.body.startswith(f"— {witness_key.name} ")
    # It never goes back: not to a smaller size, not after a restart.
    assert witness.add_checkpoint(_request(size2, [], note2)).status == 409
    again = Witness(witness_key, chain.genesis, state)
    assert again.size == size5
    assert again.add_checkpoint(_request(0, [], note2)).status == 409
    # A checkpoint of another log, or one no quorum of validators signed.
    other_origin = note5.replace(f"tally/{chain.genesis.chain_id}/custody", "tally/x/custody", 1)
    assert witness.add_checkpoint(_request(size5, [], other_origin)).status == 404
    unsigned = note5.split("\n\n")[0] + "\n\n— validator-0 AAAAAAAA\n"
    assert witness.add_checkpoint(_request(size5, [], unsigned)).status in (400, 403)


def test_a_copy_of_the_chain_with_a_reused_key_is_refused(intl_chain: Chain,
                                                          witness_key: NamedKey,
                                                          tmp_path: Path) -> None:
    """The clone-chain attack against a witness: the copy's checkpoints carry the real
    validator's signature, but name another genesis (protocol version 3)."""
    real = intl_chain
    clone = Chain(tmp_path / "clone", "intl", keys_from=real, genesis_time=GENESIS_TIME + 1)
    try:
        clone.issue("BOND", 5_000_000, to="alice")
        witness = Witness(witness_key, real.genesis, tmp_path / "w.json")
        answer = witness.add_checkpoint(_request(0, [], clone.node.reader.checkpoint_note(1)))
        assert answer.status == 403 and "genesis" in answer.body
    finally:
        clone.stop()


def test_the_witness_command_serves_the_protocol(intl_chain: Chain, witness_key: NamedKey,
                                                 tmp_path: Path) -> None:
    import httpx

    chain = intl_chain
    populate(chain)
    save(tmp_path / "w.key", witness_key)
    chain.genesis.write(tmp_path / "genesis.json")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tally", "witness", "run", "--key",
                             str(tmp_path / "w.key"), "--genesis", str(tmp_path / "genesis.json"),
                             "--state", str(tmp_path / "state.json"), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.1)
        note = chain.node.reader.checkpoint_note(1)
        answer = httpx.post(f"{url}/add-checkpoint", content=_request(0, [], note))
        assert answer.status_code == 200 and answer.text.startswith(f"— {witness_key.name} ")
        assert json.loads((tmp_path / "state.json").read_text())["size"] == \
            chain.node.reader.block_row(1).log_size
    finally:
        proc.terminate()
        proc.wait(10)
