"""Golden vectors: the checked-in transaction, genesis, header, checkpoint and evidence
bundle of each suite (tests/vectors/golden-<suite>.json) are what the code produces.

A change to any of these formats must be deliberate: it fails here until the vectors
are regenerated with ``python scripts/make_vectors.py`` and the diff of tests/vectors/
is reviewed and committed with it (docs/formats.md, "Golden vectors").

* (a) the vectors are built again in a temporary directory and compared with the
  checked-in files field by field;
* (b) the checked-in transaction decodes and its signature verifies;
* (c) the checked-in evidence bundle verifies with ``verify_bundle`` against the
  checked-in genesis hash, and the checkpoint note verifies against the genesis key;
* (d) the block hash is recomputed from the header's bytes, and the genesis hash from
  the genesis document's.

Signatures: Ed25519 (``intl``) is deterministic, so the ``intl`` vectors are compared
byte for byte, signatures included. SM2 (``gm``) draws a fresh random k for every
signature (tally/crypto/sm2.py: OpenSSL signs, randomized), so a rebuilt ``gm`` vector
carries other signature bytes: for the fields that hold a signature (the transaction's
wire bytes and signature, the checkpoint note, and the bundle's transaction and
checkpoint) the comparison drops only the signature bytes and keeps everything else
(the transaction body, the note text, signer names and key IDs), and the signatures,
checked-in and rebuilt, are verified instead.
"""

from __future__ import annotations

import base64
import copy
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from tally import codec
from tally import tx as txmod
from tally.crypto import SUITE_NAMES, get_suite
from tally.evidence.verify import verify_bundle
from tally.log.checkpoint import NoteVerifier, open_note, parse_note

#: The repository root: the nearest directory above this file with a pyproject.toml (so
#: the test still finds scripts/ and tests/vectors/ if it moves into a subdirectory).
ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").exists())
VECTORS = ROOT / "tests" / "vectors"
REGENERATE = "python scripts/make_vectors.py"
#: Suites whose signatures are randomized: compared without the signature bytes.
RANDOMIZED = {"gm"}
#: Where a vector holds a signature, and how to read that field without it.
SIGNED_FIELDS = {
    ("transaction", "wire"): "wire-hex",
    ("transaction", "signature"): "signature",
    ("checkpoint", "note"): "note",
    ("evidence", "bundle", "checkpoint"): "note",
    ("evidence", "bundle", "transaction"): "wire-base64",
}


def _load_make_vectors() -> Any:
    spec = importlib.util.spec_from_file_location("make_vectors", ROOT / "scripts" / "make_vectors.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_vectors = _load_make_vectors()


def checked_in(suite_name: str) -> dict[str, Any]:
    return json.loads(make_vectors.vectors_path(VECTORS, suite_name).read_text())


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every suite's vectors built again, in a temporary directory, by the script."""
    tmp = tmp_path_factory.mktemp("golden")
    return {name: make_vectors.build(name, tmp) for name in SUITE_NAMES}


# --- reading a vector ------------------------------------------------------------------


def _get(vec: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        vec = vec[key]
    return vec


def _without_signature(kind: str, value: Any) -> Any:
    if kind == "signature":
        return "<randomized signature>"
    if kind in ("wire-hex", "wire-base64"):
        raw = bytes.fromhex(value) if kind == "wire-hex" else base64.b64decode(value, validate=True)
        return {"body": txmod.decode(raw, max_size=1 << 20).body.hex(),
                "signature": "<randomized signature>"}
    body, sigs = parse_note(value)
    return {"text": body, "signatures": [(s.name, s.key_id.hex()) for s in sigs]}


def comparable(vec: dict[str, Any]) -> dict[str, Any]:
    """The vector as the comparison sees it: unchanged for a deterministic suite, with
    the signature bytes dropped from every signed field for a randomized one."""
    if vec.get("suite") not in RANDOMIZED:
        return vec
    out = copy.deepcopy(vec)
    for path, kind in SIGNED_FIELDS.items():
        parent = _get(out, path[:-1])
        parent[path[-1]] = _without_signature(kind, parent[path[-1]])
    return out


def differences(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Every field (by path) where two JSON values differ."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out: list[str] = []
        for key in sorted(set(expected) | set(actual), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key not in actual:
                out.append(f"{where}: missing from the rebuilt vectors")
            elif key not in expected:
                out.append(f"{where}: new in the rebuilt vectors ({actual[key]!r:.80})")
            else:
                out += differences(expected[key], actual[key], where)
        return out
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        out = []
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            out += differences(e, a, f"{path}[{i}]")
        return out
    if type(expected) is not type(actual) or expected != actual:
        if isinstance(expected, str) and isinstance(actual, str):
            at = next((i for i, (e, a) in enumerate(zip(expected, actual, strict=False))
                       if e != a),
                      min(len(expected), len(actual)))
            start = max(0, at - 10)
            return [f"{path}: differs from character {at}: checked in "
                    f"...{expected[start:at + 30]!r}..., rebuilt ...{actual[start:at + 30]!r}..."]
        return [f"{path}: checked in {expected!r:.100}, rebuilt {actual!r:.100}"]
    return []


# --- the checks ----------------------------------------------------------------------


def check_unchanged(vec: dict[str, Any], rebuilt: dict[str, Any]) -> None:
    """(a) The rebuilt vectors equal the checked-in ones, field by field."""
    diffs = differences(comparable(vec), comparable(rebuilt))
    if diffs:
        pytest.fail(
            f"The {rebuilt['suite']} golden vectors changed: a consensus format (transaction, "
            "genesis, block header, checkpoint or evidence bundle) is no longer what "
            "tests/vectors/ records.\n  " + "\n  ".join(diffs[:20])
            + ("\n  ..." if len(diffs) > 20 else "")
            + f"\nIf the change is deliberate, run `{REGENERATE}`, review the diff of "
            "tests/vectors/ and commit it with the change (docs/formats.md, 'Golden vectors').",
            pytrace=False)


def check_transaction(vec: dict[str, Any]) -> None:
    """(b) The transaction decodes to the recorded fields and its signature verifies."""
    suite = get_suite(vec["suite"])
    t = vec["transaction"]
    decoded = txmod.decode(bytes.fromhex(t["wire"]), max_size=1 << 20)
    assert decoded.body.hex() == t["body"]
    assert decoded.signature.hex() == t["signature"]
    assert decoded.id_hex == t["id"] == suite.hash(decoded.body).hex()
    assert decoded.sender == t["sender"] == vec["keys"]["issuer"]["address"]
    assert decoded.signer.hex() == vec["keys"]["issuer"]["public_key"]
    fields = {"chain": decoded.chain, "suite": decoded.suite, "tier": decoded.tier,
              "signer": decoded.signer.hex(), "nonce": decoded.nonce,
              "expiry": decoded.expiry, "kind": decoded.kind, "payload": decoded.payload}
    assert fields == t["fields"]
    txmod.check_envelope(decoded, chain=vec["genesis"]["document"]["chain_id"], suite=suite)
    txmod.check_signature(decoded, suite)
    assert t["id"] in vec["block"]["txs"]


def check_keys(vec: dict[str, Any]) -> None:
    suite = get_suite(vec["suite"])
    for key in vec["keys"].values():
        private = suite.load_private_key(bytes.fromhex(key["private_key"]))
        assert private.public_key.hex() == key["public_key"]
        assert suite.address(private.public_key) == key["address"]


def check_bundle(vec: dict[str, Any]) -> None:
    """(c) The bundle verifies against the checked-in genesis hash and proves the
    transaction's event; the checkpoint note verifies against the genesis validator."""
    suite = get_suite(vec["suite"])
    genesis_hash = vec["genesis"]["hash"]
    bundle = vec["evidence"]["bundle"]
    verdict = verify_bundle(bundle, genesis_hash=genesis_hash)
    assert verdict.genesis_pinned
    assert bundle["genesis_hash"] == genesis_hash
    assert bundle["event"]["index"] == vec["evidence"]["event_index"]
    assert base64.b64decode(bundle["transaction"]).hex() == vec["transaction"]["wire"]
    validator = vec["genesis"]["document"]["validators"][0]
    note = open_note(vec["checkpoint"]["note"],
                     [NoteVerifier(validator["name"], bytes.fromhex(validator["public_key"]), suite)])
    assert note.signed_by == [validator["name"]]


def check_hashes(vec: dict[str, Any]) -> None:
    """(d) The block hash is the hash of the header's bytes, which decode to the recorded
    header; the checkpoint names that block; the genesis hash is its document's."""
    suite = get_suite(vec["suite"])
    block = vec["block"]
    header_bytes = bytes.fromhex(block["header_cbor"])
    assert suite.hash(header_bytes).hex() == block["hash"]
    header = codec.decode_canonical(header_bytes, "header")
    assert {k: v.hex() if isinstance(v, bytes) else v for k, v in header.items()} == block["header"]
    assert header["height"] == block["height"] == vec["checkpoint"]["height"]
    assert header["prev"].hex() == vec["genesis"]["hash"]  # block 1 follows genesis
    body, _ = parse_note(vec["checkpoint"]["note"])
    block_line = f"block {base64.b64encode(bytes.fromhex(block['hash'])).decode()}"
    assert block_line in body.splitlines()
    genesis_bytes = bytes.fromhex(vec["genesis"]["cbor"])
    assert codec.encode(vec["genesis"]["document"]) == genesis_bytes
    assert suite.hash(genesis_bytes).hex() == vec["genesis"]["hash"]
    assert base64.b64decode(vec["evidence"]["bundle"]["genesis"]) == genesis_bytes


def check_signatures(vec: dict[str, Any]) -> None:
    """The rebuilt vector's signatures verify too (they are not compared for ``gm``)."""
    check_transaction(vec)
    check_bundle(vec)


def check_all(vec: dict[str, Any], rebuilt: dict[str, Any]) -> None:
    check_unchanged(vec, rebuilt)
    check_keys(vec)
    check_transaction(vec)
    check_bundle(vec)
    check_hashes(vec)


# --- the tests ------------------------------------------------------------------------


@pytest.mark.parametrize("suite_name", SUITE_NAMES)
def test_vectors_unchanged(suite_name: str, rebuilt: dict[str, dict[str, Any]]) -> None:
    check_unchanged(checked_in(suite_name), rebuilt[suite_name])
    check_signatures(rebuilt[suite_name])


@pytest.mark.parametrize("suite_name", SUITE_NAMES)
def test_transaction_decodes_and_verifies(suite_name: str) -> None:
    vec = checked_in(suite_name)
    check_keys(vec)
    check_transaction(vec)


@pytest.mark.parametrize("suite_name", SUITE_NAMES)
def test_bundle_verifies_against_the_genesis_hash(suite_name: str) -> None:
    check_bundle(checked_in(suite_name))


@pytest.mark.parametrize("suite_name", SUITE_NAMES)
def test_header_and_genesis_hashes(suite_name: str) -> None:
    check_hashes(checked_in(suite_name))


def test_intl_signatures_are_compared_byte_for_byte(rebuilt: dict[str, dict[str, Any]]) -> None:
    """Ed25519 is deterministic: nothing of the ``intl`` vectors is masked."""
    assert "intl" not in RANDOMIZED
    assert comparable(checked_in("intl")) == checked_in("intl")
    assert rebuilt["intl"]["transaction"]["wire"] == checked_in("intl")["transaction"]["wire"]


def _tampered(value: str, at: int) -> str:
    """``value`` with one character changed at (or after) ``at``, staying in its alphabet
    (hex stays hex, base64 stays base64)."""
    for i in list(range(at, len(value))) + list(range(at)):
        c = value[i]
        if c.isalnum():
            new = ("1" if c == "0" else "0") if c in "0123456789abcdef" else ("B" if c == "A" else "A")
            return value[:i] + new + value[i + 1:]
    return value + "x"


def _leaves(value: Any, path: tuple = ()) -> list[tuple]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _leaves(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _leaves(v, (*path, i))]
    return [path]


@pytest.mark.parametrize("suite_name", SUITE_NAMES)
def test_one_changed_byte_anywhere_is_caught(suite_name: str,
                                             rebuilt: dict[str, dict[str, Any]]) -> None:
    """Change one character of any field of a checked-in vector (in the middle, and near
    the end, where a wire transaction or a note keeps its signature): some check fails."""
    original = checked_in(suite_name)
    check_all(original, rebuilt[suite_name])
    missed = []
    tried = 0
    for path in _leaves(original):
        value = _get(original, path)
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int):
            changes = [value + 1]
        elif isinstance(value, str):
            changes = [_tampered(value, len(value) // 2)]
            if len(value) > 12:
                changes.append(_tampered(value, len(value) - 10))
        else:
            continue
        for new in changes:
            vec = copy.deepcopy(original)
            _get(vec, path[:-1])[path[-1]] = new
            tried += 1
            try:
                check_all(vec, rebuilt[suite_name])
            except (AssertionError, pytest.fail.Exception, Exception):
                continue
            missed.append(f"{'.'.join(map(str, path))} = {new!r:.60}")
    assert tried > 50
    assert not missed, "changes no check caught:\n" + "\n".join(missed)


@pytest.mark.parametrize(("version", "file"), [
    (1, "golden-intl-before-versions.json"), (2, "golden-intl-version-2.json"),
    (3, "golden-intl-version-3.json")])
def test_an_older_version_writes_the_bytes_it_always_wrote(version: int, file: str,
                                                            tmp_path: Path) -> None:
    """tests/vectors/golden-intl-before-versions.json was written by the code before
    protocol versions existed, golden-intl-version-2.json by the code before version 3,
    golden-intl-version-3.json by the code before version 4; none is ever regenerated: a chain at that protocol version must produce exactly
    its genesis, transaction, header, block hash, checkpoint and evidence bundle, so that
    every older chain replays and its evidence stays valid."""
    before = json.loads((VECTORS / file).read_text())
    now = _load_make_vectors().build("intl", tmp_path, protocol_version=version)
    sections = ("keys", "genesis", "transaction", "block", "checkpoint", "evidence")
    diffs = [d for name in sections for d in differences(before[name], now[name], name)]
    assert diffs == [], "version 1 no longer writes what it wrote:\n  " + "\n  ".join(diffs)
