"""Build the evidence test vectors of docs/evidence-spec.md: good and bad bundles of both
suites, before and after validator changes, each with the verdict Tally gives it.

    .venv/bin/python scripts/make_evidence_vectors.py            # rewrite tests/vectors/evidence/
    .venv/bin/python scripts/make_evidence_vectors.py --out DIR  # write them somewhere else

For each suite it runs solo nodes from fixed keys (the SHA-256 of a label) and a fixed
clock: a real chain (protocol version 3) that issues, freezes, changes its validator set
twice (validator-0's power 1 -> 3, then bank-b joins with power 1), transfers, and runs
a contract; a copy of that chain (same chain id and keys, another genesis time) that
forges a bundle; and a version-2 chain, whose checkpoints do not name their genesis.
Bad bundles are good ones changed in one place each, one per refusal reason and per
parsing rule.

Every vector is one file ``<suite>-<name>.json``:

* ``description``: what the bundle is, or what was changed;
* ``genesis_hash``: the hash to pin, or null to verify unpinned;
* ``bundle``: the bundle as a JSON object, or ``bundle_bytes`` (base64) when the exact
  bytes are the point (a BOM, a duplicate key, a float, a deep nesting, bad UTF-8);
* ``verdict``: ``{"valid": true, "facts", "signers", "event", "genesis_pinned"}`` or
  ``{"valid": false, "reason"}`` (an error's message is for people and is not part of
  the verdict). The script computes it twice, with Tally's verifier (``tally_verify``)
  and with the verifier Tally had before it (``tally/evidence/verify.py`` at commit
  ``LEGACY_COMMIT``, loaded from git history), and stops if the two disagree.

tests/unit/test_evidence_vectors.py reads these files only: it builds nothing with
Tally's code, and checks that ``tally_verify`` gives every recorded verdict. Ed25519
is deterministic, so ``intl`` files are reproduced byte for byte; SM2 signatures are
randomized, so ``gm`` files change on every run (review such a diff by its verdicts).
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import importlib.util
import itertools
import json
import subprocess
import sys
import tempfile
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cbor2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tally import tx as txmod  # noqa: E402
from tally.crypto import get_suite  # noqa: E402
from tally.evidence.export import export_bundle, export_commercial_bundle  # noqa: E402
from tally.evidence.verify import EvidenceError, verify_bundle  # noqa: E402
from tally.genesis import make_genesis  # noqa: E402
from tally.keys import NamedKey  # noqa: E402
from tally.log.checkpoint import CosignatureSigner, NoteSigner, sign_note  # noqa: E402
from tally.node import Node  # noqa: E402

OUT = ROOT / "tests" / "vectors" / "evidence"
#: The last commit whose tally/evidence/verify.py was the verifier itself (decision 0024).
LEGACY_COMMIT = "264b73f"
CHAIN = "evidence-vectors"
GENESIS_TIME = 1_767_225_600_000  # 2026-01-01T00:00:00Z
TOKEN = '''
class Token(Contract):
    balances = Map(str, int)

    def init(self, supply: int):
        self.balances[ctx.caller] = supply

    def transfer(self, to: str, amount: int):
        require(self.balances[ctx.caller] >= amount, "insufficient balance")
        self.balances[ctx.caller] -= amount
        self.balances[to] += amount
        emit("Transfer", {"from": ctx.caller, "to": to, "amount": amount})
'''


def fixed(suite_name: str, name: str) -> NamedKey:
    raw = hashlib.sha256(f"tally evidence vectors/{suite_name}/{name}".encode()).digest()
    return NamedKey(name, get_suite(suite_name).load_private_key(raw))


class Solo:
    """A solo node from fixed keys and a fixed clock, with a signing helper."""

    def __init__(self, workdir: Path, suite_name: str, version: int = 3,
                 genesis_time: int = GENESIS_TIME) -> None:
        self.suite = get_suite(suite_name)
        self.keys = {n: fixed(suite_name, n) for n in
                     ("validator-0", "admin", "issuer", "custodian", "alice", "bob")}
        roles = {self.keys[n].address: [n] for n in ("admin", "issuer", "custodian")}
        self.genesis = make_genesis(CHAIN, self.suite,
                                    [("validator-0", self.keys["validator-0"].key)], roles,
                                    genesis_time, protocol_version=version)
        clock = itertools.count(genesis_time + 1000, 1000)
        self.node = Node(workdir, self.genesis, self.keys["validator-0"],
                         clock_ms=lambda: next(clock))
        self.node.start()
        self.nonces: dict[str, int] = {}

    def ok(self, who: str, kind: str, payload: dict[str, Any], tier: int = 1) -> Any:
        nonce = self.nonces.get(who, 0)
        self.nonces[who] = nonce + 1
        wire = txmod.sign(self.keys[who].key, chain=CHAIN, nonce=nonce,
                          expiry=self.node.ledger.height + 100, kind=kind, payload=payload,
                          tier=tier)
        receipt = self.node.submit_and_wait(wire, timeout=30)
        if not receipt.ok:
            raise SystemExit(f"{kind} failed: {receipt}")
        return receipt

    def addr(self, name: str) -> str:
        return self.keys[name].address


def legacy_verifier() -> types.ModuleType:
    """tally/evidence/verify.py as it was at ``LEGACY_COMMIT``, as a module."""
    source = subprocess.run(["git", "show", f"{LEGACY_COMMIT}:tally/evidence/verify.py"],
                            cwd=ROOT, capture_output=True, text=True, check=True).stdout
    spec = importlib.util.spec_from_loader("legacy_evidence_verify", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    exec(compile(source, f"{LEGACY_COMMIT}:tally/evidence/verify.py", "exec"), module.__dict__)
    return module


LEGACY = legacy_verifier()


def verdict_of(bundle: Any, genesis_hash: str | None) -> dict[str, Any]:
    verdicts = []
    for verify, error in ((verify_bundle, EvidenceError),
                          (LEGACY.verify_bundle, LEGACY.EvidenceError)):
        try:
            v = verify(copy.deepcopy(bundle), genesis_hash=genesis_hash)
        except error as exc:
            verdicts.append({"valid": False, "reason": exc.reason})
            continue
        verdicts.append({"valid": True, "facts": v.facts, "signers": v.signers,
                         "event": v.event, "genesis_pinned": v.genesis_pinned})
    if verdicts[0] != verdicts[1]:
        raise SystemExit(f"tally_verify and the verifier of {LEGACY_COMMIT} disagree: "
                         f"{verdicts[0]} != {verdicts[1]}")
    return verdicts[0]


def build(suite_name: str, workdir: Path) -> dict[str, dict[str, Any]]:
    """Every vector of one suite, by name."""
    real = Solo(workdir / "real", suite_name)
    try:
        issued = real.ok("issuer", "asset.issue", {"asset": "BOND", "class": "security",
                                                  "name": "Vector bond", "quantity": 1000,
                                                  "to": real.addr("alice")})
        frozen = real.ok("custodian", "custody.freeze", {
            "asset": "BOND", "holder": real.addr("alice"), "quantity": 5,
            "reason": "court order"})
        before = export_bundle(real.node.reader, issued.events[0])
        with_details = export_bundle(real.node.reader, frozen.events[0])
        bank = fixed(suite_name, "bank-b")
        real.ok("admin", "gov.propose", {"action": "validator.set", "name": "validator-0",
                                         "power": 3})
        real.ok("admin", "gov.propose", {
            "action": "validator.set", "name": "bank-b", "power": 1,
            "public_key": bank.public_key,
            "consensus_key": fixed("intl", "bank-b consensus").public_key})
        for _ in range(3):  # the new set signs from two blocks on
            real.ok("issuer", "asset.issue", {"asset": f"X{_}", "class": "security",
                                              "name": "filler", "quantity": 1,
                                              "to": real.addr("bob")})
        moved = real.ok("alice", "custody.transfer", {"asset": "BOND", "to": real.addr("bob"),
                                                      "quantity": 10})
        after = export_bundle(real.node.reader, moved.events[0])
        real.ok("admin", "gov.propose", {"action": "contract.deploy", "name": "token",
                                         "source": TOKEN, "args": [100]})
        real.ok("admin", "contract.call", {"contract": "token", "method": "transfer",
                                           "args": [real.addr("bob"), 7]}, tier=2)
        real.ok("issuer", "asset.issue", {"asset": "LATER", "class": "security",
                                          "name": "later", "quantity": 1,
                                          "to": real.addr("bob")})
        before_grown = export_bundle(real.node.reader, issued.events[0], consistency=True)
        commercial = export_commercial_bundle(real.node.reader, 0, consistency=True)
    finally:
        real.node.stop()
    clone = Solo(workdir / "clone", suite_name, genesis_time=GENESIS_TIME + 60_000)
    try:
        forged_issue = clone.ok("issuer", "asset.issue", {
            "asset": "BOND", "class": "security", "name": "Vector bond",
            "quantity": 5_000_000, "to": clone.addr("alice")})
        forged = export_bundle(clone.node.reader, forged_issue.events[0])
    finally:
        clone.node.stop()
    forged["genesis"], forged["genesis_hash"] = before["genesis"], before["genesis_hash"]
    old = Solo(workdir / "v2", suite_name, version=2)
    try:
        v2 = export_bundle(old.node.reader, old.ok("issuer", "asset.issue", {
            "asset": "BOND", "class": "security", "name": "Vector bond", "quantity": 1000,
            "to": old.addr("alice")}).events[0])
        v2_hash = old.genesis.hash.hex()
    finally:
        old.node.stop()

    pin = real.genesis.hash.hex()
    good: dict[str, tuple[str, dict[str, Any], str | None]] = {
        "issue": ("an asset.issue event, before any validator change", before, pin),
        "issue-unpinned": ("the same bundle, verified without a pinned genesis hash", before,
                           None),
        "freeze-details": ("a custody.freeze event, whose leaf commits to its details",
                           with_details, pin),
        "after-validator-change": ("a transfer after two validator updates (validator-0's "
                                   "power, then bank-b joins), each proven in the bundle",
                                   after, pin),
        "consistency": ("the asset.issue event with a consistency proof to a later "
                        "checkpoint signed after the validator change", before_grown, pin),
        "commercial": ("a contract event in the commercial log, with a consistency proof",
                       commercial, pin),
        "version-2": ("a version-2 chain's event: its checkpoints do not name the genesis",
                      v2, v2_hash),
    }
    bad: dict[str, tuple[str, dict[str, Any], str | None]] = {
        "clone-chain": ("a copy chain's (same chain id and keys) bundle with the real "
                        "genesis put in", forged, pin),
    }

    def mutate(name: str, description: str, base: dict[str, Any],
               change: Callable[[dict[str, Any]], None], genesis_hash: str | None = pin
               ) -> None:
        bundle = copy.deepcopy(base)
        change(bundle)
        bad[name] = (description, bundle, genesis_hash)

    def flip_b64(text: str, at: int = 10) -> str:
        raw = bytearray(base64.b64decode(text))
        raw[at % len(raw)] ^= 1
        return base64.b64encode(bytes(raw)).decode()

    def sign_line(note: str, change: Callable[[str], str]) -> str:
        body, sigs = note.split("\n\n", 1)
        return change(body + "\n") + "\n" + sigs

    mutate("wrong-genesis-pinned", "a valid bundle checked against another chain's genesis "
           "hash", before, lambda b: None, v2_hash)
    mutate("genesis-hash-mismatch", "genesis_hash is not the hash of the genesis document",
           before, lambda b: b.update(genesis_hash="00" * 32), None)
    mutate("chain-id-mismatch", "chain_id differs from the genesis's", before,
           lambda b: b.update(chain_id="other"))
    mutate("suite-mismatch", "suite differs from the genesis's", before,
           lambda b: b.update(suite="gm" if suite_name == "intl" else "intl"))
    mutate("tampered-leaf", "one bit of the event leaf changed", before,
           lambda b: b["event"].update(leaf=flip_b64(b["event"]["leaf"], 40)))
    mutate("bad-inclusion", "one bit of an inclusion proof hash changed", after,
           lambda b: b["inclusion"].update(proof=[flip_b64(b["inclusion"]["proof"][0])]
                                            + b["inclusion"]["proof"][1:]))
    mutate("inclusion-size", "the inclusion proof names another tree size", before,
           lambda b: b["inclusion"].update(tree_size=b["inclusion"]["tree_size"] + 1))
    mutate("tampered-details", "the details changed (the leaf names their hash)",
           with_details, lambda b: b["event"].update(
               details=base64.b64encode(bytes.fromhex("a16672656173006e")).decode()))
    mutate("missing-details", "the details left out", with_details,
           lambda b: b["event"].update(details=None))
    mutate("tampered-transaction", "one bit of the transaction's signature changed", before,
           lambda b: b.update(transaction=flip_b64(b["transaction"], -5)))
    mutate("other-transaction", "another transaction than the one the leaf names", before,
           lambda b: b.update(transaction=with_details["transaction"]))
    mutate("checkpoint-signature", "one character of the checkpoint's time line changed",
           before, lambda b: b.update(checkpoint=sign_line(
               b["checkpoint"], lambda t: t.replace("\ntime ", "\ntime 1"))))
    mutate("checkpoint-genesis-line-dropped", "the checkpoint's genesis line removed",
           before, lambda b: b.update(checkpoint=sign_line(b["checkpoint"], lambda t: "\n".join(
               line for line in t.split("\n") if not line.startswith("genesis ")))))
    mutate("checkpoint-unsigned", "the checkpoint's signature lines replaced by an unknown "
           "key's", before, lambda b: b.update(checkpoint=b["checkpoint"].split("\n\n")[0]
                                               + "\n\n\u2014 stranger AAAAAAAAAAAAAAA=\n"))
    mutate("missing-update", "the validator updates left out", after,
           lambda b: b.update(validator_updates=[]))
    mutate("update-out-of-order", "the validator updates in reverse order", after,
           lambda b: b.update(validator_updates=b["validator_updates"][::-1]))
    mutate("update-tampered", "one bit of a validator update's details changed", after,
           lambda b: b["validator_updates"][0].update(
               details=flip_b64(b["validator_updates"][0]["details"], 3)))
    mutate("bad-consistency", "one bit of the consistency proof changed", before_grown,
           lambda b: b["consistency"].update(proof=[flip_b64(b["consistency"]["proof"][0])]
                                              + b["consistency"]["proof"][1:]))
    mutate("commercial-as-custody", "a commercial bundle without its log field", commercial,
           lambda b: b.pop("log"))
    mutate("unknown-field", "a field the format does not have", before,
           lambda b: b.update(note="trust me"))
    mutate("missing-field", "the transaction field left out", before,
           lambda b: b.pop("transaction"))
    mutate("bool-index", "the event index is true instead of an integer", before,
           lambda b: b["event"].update(index=True))
    mutate("non-canonical-base64", "the leaf's base64 with non-zero padding bits", before,
           lambda b: b["event"].update(leaf=b["event"]["leaf"][:-2] + "B="
                                       if b["event"]["leaf"].endswith("A=") else "*"))

    # Checkpoints signed here with the validators' keys: the other signature forms, and
    # what only a dishonest quorum could sign (a log whose leaf is not an event).
    v0, stranger = real.keys["validator-0"], fixed(suite_name, "stranger")

    def resign(note: str, signers: list[Any],
               change: Callable[[list[str]], None] | None = None) -> str:
        lines = note.split("\n\n")[0].split("\n")
        if change is not None:
            change(lines)
        return sign_note("\n".join(lines) + "\n", signers)

    def variant(base: dict[str, Any], change: Callable[[dict[str, Any]], None]
                ) -> dict[str, Any]:
        bundle = copy.deepcopy(base)
        change(bundle)
        return bundle

    cosigner = CosignatureSigner("validator-0", v0.key, clock=lambda: 1_767_225_601)
    cosigned = variant(before, lambda b: b.update(checkpoint=resign(b["checkpoint"],
                                                                     [cosigner])))
    good["cosigned"] = ("the checkpoint signed by validator-0 as a cosignature/v1 instead "
                        "of a note signature", cosigned, pin)
    good["unknown-signer-ignored"] = (
        "the checkpoint also signed by a key the verifier does not know (ignored)",
        variant(before, lambda b: b.update(checkpoint=resign(
            b["checkpoint"], [NoteSigner("validator-0", v0.key),
                              NoteSigner("stranger", stranger.key)]))), pin)
    good["two-signers"] = (
        "after the validator change, the checkpoint signed by validator-0 and bank-b",
        variant(after, lambda b: b.update(checkpoint=resign(
            b["checkpoint"], [NoteSigner("validator-0", v0.key),
                              NoteSigner("bank-b", bank.key)]))), pin)

    def bad_timestamp(b: dict[str, Any]) -> None:
        body, line = b["checkpoint"].split("\n\n")
        name, blob = line.rstrip("\n").split(" ")[1:]
        raw = bytearray(base64.b64decode(blob))
        raw[11] ^= 1  # the last byte of the cosignature's u64 timestamp
        b["checkpoint"] = f"{body}\n\n\u2014 {name} {base64.b64encode(bytes(raw)).decode()}\n"

    mutate("cosignature-timestamp", "the cosignature's timestamp changed", cosigned,
           bad_timestamp)
    mutate("no-quorum", "after the validator change, the checkpoint signed by bank-b alone "
           "(1 of 4 voting power)", after, lambda b: b.update(checkpoint=resign(
               b["checkpoint"], [NoteSigner("bank-b", bank.key)])))
    mutate("wrong-origin", "a checkpoint of another log, validly signed", before,
           lambda b: b.update(checkpoint=resign(
               b["checkpoint"], [NoteSigner("validator-0", v0.key)],
               lambda lines: lines.__setitem__(0, f"tally/{CHAIN}/other"))))
    mutate("wrong-validators-line", "a checkpoint naming another validator set, validly "
           "signed", before, lambda b: b.update(checkpoint=resign(
               b["checkpoint"], [NoteSigner("validator-0", v0.key)],
               lambda lines: lines.__setitem__(7, "validators " + base64.b64encode(
                   bytes(32)).decode()))))
    not_an_event = cbor2.dumps({"said": "anything"}, canonical=True)

    def forge_log(b: dict[str, Any]) -> None:
        root = base64.b64encode(real.suite.hash(b"\x00" + not_an_event)).decode()
        b["checkpoint"] = resign(b["checkpoint"], [NoteSigner("validator-0", v0.key)],
                                 lambda lines: lines.__setitem__(slice(1, 3), ["1", root]))
        b["event"] = {"index": 0, "leaf": base64.b64encode(not_an_event).decode(),
                      "details": None}
        b["inclusion"] = {"tree_size": 1, "proof": []}

    mutate("leaf-not-an-event", "a log whose one leaf is not a Tally event, signed by the "
           "validator (only a dishonest quorum could)", before, forge_log)

    vectors: dict[str, dict[str, Any]] = {}
    for name, (description, bundle, genesis_hash) in (good | bad).items():
        vectors[name] = {"description": description, "genesis_hash": genesis_hash,
                         "bundle": bundle, "verdict": verdict_of(bundle, genesis_hash)}
    text = json.dumps(before)
    index = before["event"]["index"]
    raw: dict[str, tuple[str, bytes]] = {
        "byte-order-mark": ("a UTF-8 byte-order mark before the JSON",
                            b"\xef\xbb\xbf" + text.encode()),
        "duplicate-key": ("the key chain_id twice in the top object",
                          text.replace('{"format"', '{"chain_id": "x", "format"', 1).encode()),
        "float": ("the event index written as a float",
                  text.replace(f'"index": {index},', f'"index": {index}.0,', 1).encode()),
        "not-utf8": ("a byte that is not UTF-8 inside a string",
                     text.replace(f'"{CHAIN}"', '"\udcff"', 1).encode(
                         "utf-8", "surrogateescape")),
        "too-deep": ("nesting deeper than 8 levels (a field the format does not have)",
                     text[:-1].encode() + b', "x": ' + b"[" * 9 + b"]" * 9 + b"}"),
        "not-an-object": ("a JSON array, not an object", b"[" + text.encode() + b"]"),
    }
    for name, (description, data) in raw.items():
        vectors[name] = {"description": description, "genesis_hash": pin,
                         "bundle_bytes": base64.b64encode(data).decode(),
                         "verdict": verdict_of(data, pin)}
    for name, vector in vectors.items():
        expect_valid = name in good
        if vector["verdict"]["valid"] != expect_valid:
            raise SystemExit(f"{suite_name}-{name}: expected valid={expect_valid}, "
                             f"got {vector['verdict']}")
    return vectors


def main() -> None:
    parser = argparse.ArgumentParser(description="Build the evidence test vectors.")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--suite", choices=("intl", "gm"), action="append")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for suite_name in args.suite or ("intl", "gm"):
        with tempfile.TemporaryDirectory() as tmp:
            vectors = build(suite_name, Path(tmp))
        for name, vector in vectors.items():
            path = args.out / f"{suite_name}-{name}.json"
            path.write_text(json.dumps(vector, indent=1, ensure_ascii=False) + "\n")
            verdict = vector["verdict"]
            print(f"{path.name}: {'valid' if verdict['valid'] else verdict['reason']}")


if __name__ == "__main__":
    main()
