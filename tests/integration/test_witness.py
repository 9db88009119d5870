"""Witnesses (issue 14): an institution outside the validator set cosigns a chain's
checkpoints (C2SP tlog-witness) once each is consistent with the last it cosigned; a
node feeds it, bundles carry its cosignature, and the verifier can require it."""

from __future__ import annotations

import base64
import itertools
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tally import codec
from tally.crypto import get_suite
from tally.evidence.export import export_bundle
from tally.evidence.verify import (
    EvidenceError,
    ValidatorHistory,
    binds_genesis,
    genesis_validator_docs,
    verify_bundle,
)
from tally.evidence.witnessed import require_witnesses, witnesses_of
from tally.keys import NamedKey, generate, save
from tally.log.checkpoint import NoteSigner, sign_note
from tally.node import Node
from tally.node.reader import ChainReader
from tally.node.witnessing import WitnessFeeder
from tally.witness import Witness, make_app
from tests.integration.test_evidence import populate
from tests.support.api import free_port, serve, serve_app
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


@contextmanager
def _witness_process(key_file: Path, genesis_file: Path, state: Path, *args: str
                     ) -> Iterator[str]:
    """``tally witness run`` in a process of its own; yields its URL."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tally", "witness", "run", "--key",
                             str(key_file), "--genesis", str(genesis_file), "--state", str(state),
                             "--port", str(port), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and proc.poll() is None, \
                    proc.stdout.read() if proc.stdout and proc.poll() is not None else ""
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_witness_command_serves_the_protocol(intl_chain: Chain, witness_key: NamedKey,
                                                 tmp_path: Path) -> None:
    chain = intl_chain
    populate(chain)
    save(tmp_path / "w.key", witness_key)
    chain.genesis.write(tmp_path / "genesis.json")
    with _witness_process(tmp_path / "w.key", tmp_path / "genesis.json",
                          tmp_path / "state.json") as url:
        note = chain.node.reader.checkpoint_note(1)
        answer = httpx.post(f"{url}/add-checkpoint", content=_request(0, [], note))
        assert answer.status_code == 200 and answer.text.startswith(f"— {witness_key.name} ")
        assert json.loads((tmp_path / "state.json").read_text())["size"] == \
            chain.node.reader.block_row(1).log_size


# --- following validator-set changes (decision 0026) ------------------------------------


def _restart_as(chain: Chain, validator: NamedKey) -> None:
    """Restart the solo node on the same data with another validator's key: from now on
    its checkpoints carry that validator's signature."""
    chain.node.stop()
    clock = itertools.count(GENESIS_TIME + 10_000_000, 1000)
    chain.node = Node(chain.data_dir, chain.genesis, validator,
                      clock_ms=lambda: next(clock)).start()
    chain.validator = validator


def _send_latest(url: str, reader: ChainReader, old: int) -> httpx.Response:
    """The latest checkpoint to the witness at ``url``, from its size ``old``."""
    height = reader.height()
    note, size = reader.checkpoint_note(height), reader.block_row(height).log_size
    proof = reader.log_view(size).consistency_proof(old, size) if 0 < old < size else []
    return httpx.post(f"{url}/add-checkpoint", content=_request(old, proof, note), timeout=30)


def test_the_witness_follows_validator_set_changes(intl_chain: Chain, witness_key: NamedKey,
                                                   tmp_path: Path) -> None:
    """The committee adds bank-b (which from then on signs the checkpoints) and removes
    validator-0: a witness given the node's API learns both from the log, proven, without
    a restart, and keeps them across one."""
    chain = intl_chain
    chain.issue()
    save(tmp_path / "w.key", witness_key)
    chain.genesis.write(tmp_path / "genesis.json")
    state = tmp_path / "state.json"
    bank = generate("bank-b", "intl")
    port = free_port()
    with _witness_process(tmp_path / "w.key", tmp_path / "genesis.json", state,
                          "--follow", f"http://127.0.0.1:{port}") as url:
        with serve(chain.node, port=port):
            first = _send_latest(url, chain.node.reader, 0)
            assert first.status_code == 200, first.text
            size = json.loads(state.read_text())["size"]
            chain.ok("admin", "gov.propose", {
                "action": "validator.set", "name": bank.name, "power": 10,
                "public_key": bank.public_key,
                "consensus_key": get_suite("intl").generate_private_key().public_key})
        # bank-b's node signs from here on; from two blocks after the change its
        # signature alone makes a quorum (10 of 11).
        _restart_as(chain, bank)
        chain.issue("AFTER", 5)
        chain.issue("AFTER2", 5)
        with serve(chain.node, port=port):
            # No quorum of the genesis set signed it: it learns the change and cosigns.
            added = _send_latest(url, chain.node.reader, size)
            assert added.status_code == 200, added.text
            doc = json.loads(state.read_text())
            assert len(doc["validator_updates"]) == 1 and doc["size"] > size
            size = doc["size"]
            # validator-0 leaves: the checkpoints name another set; it learns that too.
            chain.ok("admin", "gov.propose", {"action": "validator.set", "name": "validator-0",
                                              "power": 0})
            chain.issue("LATER", 5)
            removed = _send_latest(url, chain.node.reader, size)
            assert removed.status_code == 200, removed.text
            doc = json.loads(state.read_text())
            assert len(doc["validator_updates"]) == 2
            size = doc["size"]
    # Restarted, without a node to ask, it still holds the sets it proved.
    chain.issue("LAST", 5)
    with _witness_process(tmp_path / "w.key", tmp_path / "genesis.json", state) as url:
        assert httpx.get(url).text.endswith(f" {size}\n")
        again = _send_latest(url, chain.node.reader, size)
        assert again.status_code == 200, again.text
    # A bundle's validator_updates and the endpoint's answer are the same items.
    with serve(chain.node) as node_url:
        served = httpx.get(f"{node_url}/v1/evidence/validator-updates").json()
        later = httpx.get(f"{node_url}/v1/evidence/validator-updates",
                          params={"from_index": served[0]["index"] + 1}).json()
    assert served == doc["validator_updates"] and later == served[1:]
    bundle = export_bundle(chain.node.reader, 0, consistency=True)
    assert bundle["validator_updates"] == served


def _forged_update(chain: Chain, mallory: NamedKey, height: int) -> tuple[dict[str, Any], str]:
    """A made-up update adding ``mallory`` at ``height``, "proven" by a checkpoint that
    mallory signs (as the set the update itself makes), and a later checkpoint of a log
    only mallory signs: (the update item, that checkpoint's note)."""
    real = chain.node.reader.checkpoint_note(chain.node.reader.height()).split("\n\n")[0]
    details = {"name": mallory.name, "public_key": mallory.public_key.hex(),
               "consensus_key": "00" * 32, "power": 1000}
    details_bytes = codec.encode(details)
    leaf = codec.encode(dict(codec.decode(chain.node.reader.event(0).leaf), index=0,
                             type="validator.update", height=height,
                             details=chain.suite.hash(details_bytes)))
    validators = sorted([*genesis_validator_docs(chain.genesis.to_doc()), details],
                        key=lambda v: v["name"])
    lines = real.split("\n")

    def note(at: int, size: int, root: bytes) -> str:
        body = [lines[0], str(size), base64.b64encode(root).decode()]
        for line in lines[3:]:
            name = line.split(" ", 1)[0]
            body.append(f"height {at}" if name == "height" else "validators " + base64.b64encode(
                chain.suite.hash(codec.encode(validators))).decode()
                if name == "validators" else line)
        return sign_note("\n".join(body) + "\n", [NoteSigner(mallory.name, mallory.key)])

    root = chain.suite.hash(b"\x00" + leaf)  # a log of this one entry
    update = {"index": 0, "leaf": base64.b64encode(leaf).decode(),
              "details": base64.b64encode(details_bytes).decode(),
              "inclusion": {"tree_size": 1, "proof": []}, "checkpoint": note(height + 2, 1, root)}
    return update, note(height + 3, 1, root)


def test_a_lying_node_makes_the_witness_refuse_never_accept(
        intl_chain: Chain, witness_key: NamedKey, tmp_path: Path) -> None:
    """A node that serves unproven, self-proven, oversized or unreadable validator updates
    gets the witness to refuse the checkpoint (403), and nothing of its state changes."""
    chain = intl_chain
    chain.issue()
    reader = chain.node.reader
    state = tmp_path / "state.json"
    witness = Witness(witness_key, chain.genesis, state, follow_interval=0)
    first = witness.add_checkpoint(_request(0, [], reader.checkpoint_note(reader.height())))
    assert first.status == 200
    bank = generate("bank-b", "intl")
    chain.ok("admin", "gov.propose", {
        "action": "validator.set", "name": bank.name, "power": 10,
        "public_key": bank.public_key,
        "consensus_key": get_suite("intl").generate_private_key().public_key})
    _restart_as(chain, bank)
    chain.issue("AFTER", 5)
    chain.issue("AFTER2", 5)
    reader = chain.node.reader
    real = reader.validator_proofs().validator_updates(reader.height())
    assert len(real) == 1
    tampered = json.loads(json.dumps(real))
    details = codec.decode(base64.b64decode(tampered[0]["details"]))
    tampered[0]["details"] = base64.b64encode(codec.encode(details | {"power": 1000})).decode()
    mallory = generate("mallory", "intl")
    self_proven, mallory_note = _forged_update(chain, mallory, 3)
    answers: list[bytes] = [
        json.dumps(tampered).encode(),  # the details do not hash to the leaf's
        json.dumps([real[0] | {"checkpoint": mallory_note}]).encode(),  # proven by nobody
        json.dumps([self_proven]).encode(),  # signed by the validator it adds
        b"[" + b" " * (2 << 20) + b"]",  # larger than MAX_FOLLOW_BYTES
        b"{not json",
    ]
    asked: list[str] = []

    async def lie(request: Any) -> Any:
        from starlette.responses import Response

        asked.append(request.url.query)
        return Response(answers[len(asked) - 1], media_type="application/json")

    from starlette.applications import Starlette
    from starlette.routing import Route

    app = Starlette(routes=[Route("/v1/evidence/validator-updates", lie)])
    before = state.read_bytes()
    with serve_app(app) as liar:
        witness.follow = [liar]
        for what, note in [("tampered", reader.checkpoint_note(reader.height())),
                           ("unproven", reader.checkpoint_note(reader.height())),
                           ("self-proven", mallory_note),
                           ("oversized", reader.checkpoint_note(reader.height())),
                           ("not JSON", reader.checkpoint_note(reader.height()))]:
            answer = witness.add_checkpoint(_request(witness.size, [], note))
            assert answer.status == 403, (what, answer)
            assert state.read_bytes() == before and witness.updates == [], what
            if what == "oversized":  # from now on, at most one fetch a minute
                witness.follow_interval = 60
        assert len(asked) == len(answers) and "from_index=0" in asked[0]
        # Having learnt nothing, it does not ask again before follow_interval.
        for _ in range(3):
            assert witness.add_checkpoint(_request(witness.size, [], mallory_note)).status == 403
        assert len(asked) == len(answers)
    assert Witness(witness_key, chain.genesis, state).updates == []
    # The same witness, told of an honest node, learns the change.
    with serve(chain.node) as node_url:
        honest = Witness(witness_key, chain.genesis, state, follow=[node_url])
        ok = honest.add_checkpoint(_request(honest.size, reader.log_view(
            reader.block_row(reader.height()).log_size).consistency_proof(
            honest.size, reader.block_row(reader.height()).log_size),
            reader.checkpoint_note(reader.height())))
        assert ok.status == 200, ok
        assert honest.updates == real


def test_the_verifier_refuses_an_update_proven_by_the_key_it_adds(intl_chain: Chain) -> None:
    """A made-up validator update "proven" by a checkpoint that only its own new key signs
    is refused by the offline verifier itself (not only by the witness): a bundle carrying
    it would otherwise let that key sign any later checkpoint."""
    chain = intl_chain
    chain.issue()
    mallory = generate("mallory", "intl")
    forged, later = _forged_update(chain, mallory, 3)
    doc = chain.genesis.to_doc()
    history = ValidatorHistory(genesis_validator_docs(doc), chain.suite, chain.genesis.chain_id,
                               chain.genesis.hash, binds_genesis(doc))
    with pytest.raises(EvidenceError) as refused:
        history.prove([forged])
    assert refused.value.reason == "validators"
    fresh = ValidatorHistory(genesis_validator_docs(doc), chain.suite, chain.genesis.chain_id,
                             chain.genesis.hash, binds_genesis(doc))
    with pytest.raises(EvidenceError):
        fresh.check(later)
