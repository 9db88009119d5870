"""Build Tally's golden vectors: one of each consensus format, for each crypto suite.

    .venv/bin/python scripts/make_vectors.py            # rewrite tests/vectors/golden-*.json
    .venv/bin/python scripts/make_vectors.py --out DIR  # write them somewhere else

For suite ``intl`` and suite ``gm`` it builds, from fixed seeds and a fixed clock:

* the keys (each a fixed 32-byte private key: the SHA-256 of a label, loaded with the
  suite's ``load_private_key``);
* a genesis document, its canonical CBOR and its hash (the chain's trust anchor);
* a signed transaction (``asset.issue``): wire bytes, body, id, signature;
* block 1 as a solo node committed it, read back through ``Node.block``: the header as
  JSON, its canonical CBOR and the block hash;
* block 1's checkpoint, the signed note text;
* the evidence bundle (``tally-evidence/v1``) of the custody event that transaction
  caused, verified against the genesis hash before it is written.

tests/unit/test_golden_vectors.py builds them again and compares them with the checked-in
files field by field, so a change to any of these formats fails the suite until it is
made on purpose: change the format, run this script, review the diff of
tests/vectors/, and commit it with the change (docs/formats.md, "Golden vectors").

Ed25519 signatures are deterministic, so the ``intl`` file is reproduced byte for byte.
SM2 signatures are randomized (OpenSSL draws a fresh k for each), so the ``gm``
signatures differ on every run; the test compares everything else and verifies those.

The block is read only through the node's public reads (``Node.block``,
``Node.checkpoint_note``, ``export_bundle``): a new header field (a protocol version,
say) appears in the vectors by running this script, without editing it.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tally import tx as txmod  # noqa: E402
from tally.crypto import SUITE_NAMES, PrivateKey, get_suite  # noqa: E402
from tally.evidence.export import export_bundle  # noqa: E402
from tally.evidence.verify import verify_bundle  # noqa: E402
from tally.genesis import make_genesis  # noqa: E402
from tally.keys import NamedKey  # noqa: E402
from tally.node import Node  # noqa: E402

VECTORS_DIR = ROOT / "tests" / "vectors"
FORMAT = "tally-golden/v1"
CHAIN = "golden"
GENESIS_TIME = 1_767_225_600_000  # 2026-01-01T00:00:00Z
#: Block n is committed at GENESIS_TIME + n seconds (the solo engine reads the clock
#: once per block).
BLOCK_INTERVAL_MS = 1000
ASSET = "GOLD"
ISSUED = 1000
EXPIRY = 100


def vectors_path(directory: Path, suite_name: str) -> Path:
    return Path(directory) / f"golden-{suite_name}.json"


def seed_label(suite_name: str, name: str) -> str:
    return f"tally golden vectors/{suite_name}/{name}"


def fixed_key(suite_name: str, name: str) -> PrivateKey:
    """A private key from fixed bytes: the SHA-256 of a label naming suite and holder."""
    raw = hashlib.sha256(seed_label(suite_name, name).encode()).digest()
    return get_suite(suite_name).load_private_key(raw)


def build(suite_name: str, workdir: Path, protocol_version: int | None = None
          ) -> dict[str, Any]:
    """The vectors of one suite, from a solo node run in ``workdir`` (at the latest
    protocol version unless another is named)."""
    suite = get_suite(suite_name)
    names = ("validator-0", "issuer", "alice")
    keys = {name: fixed_key(suite_name, name) for name in names}
    validator = NamedKey("validator-0", keys["validator-0"])
    issuer = suite.address(keys["issuer"].public_key)
    alice = suite.address(keys["alice"].public_key)
    genesis = make_genesis(CHAIN, suite, [(validator.name, validator.key)],
                           {issuer: ["issuer"]}, GENESIS_TIME,
                           **({} if protocol_version is None
                              else {"protocol_version": protocol_version}))

    payload = {"asset": ASSET, "class": "security", "name": "Golden vector bond",
               "quantity": ISSUED, "to": alice}
    wire = txmod.sign(keys["issuer"], chain=CHAIN, nonce=0, expiry=EXPIRY,
                      kind="asset.issue", payload=payload)
    decoded = txmod.decode(wire, max_size=genesis.params.max_tx_bytes)

    clock = itertools.count(GENESIS_TIME + BLOCK_INTERVAL_MS, BLOCK_INTERVAL_MS)
    node = Node(Path(workdir) / f"node-{suite_name}", genesis, validator,
                clock_ms=lambda: next(clock))
    node.start()
    try:
        receipt = node.submit_and_wait(wire, timeout=30)
        if not receipt.ok:
            raise SystemExit(f"{suite_name}: the vector transaction failed: {receipt}")
        height = receipt.height
        block = node.reader.block(height)
        header = node.reader.block_row(height).header  # the stored canonical bytes
        note = node.reader.checkpoint_note(height)
        if len(receipt.events) != 1:
            raise SystemExit(f"{suite_name}: expected one custody event, got {receipt}")
        event_index = receipt.events[0]
        bundle = export_bundle(node.reader, event_index)
        status = node.status()
    finally:
        node.stop()
    if status["genesis_hash"] != genesis.hash.hex():
        raise SystemExit(f"{suite_name}: the node reports another genesis hash")
    if suite.hash(header) != bytes.fromhex(block["hash"]):
        raise SystemExit(f"{suite_name}: the stored header does not hash to the block hash")
    verify_bundle(bundle, genesis_hash=genesis.hash.hex())  # never write a bad bundle

    return {
        "format": FORMAT,
        "about": "Generated by scripts/make_vectors.py; do not edit by hand. "
                 "tests/unit/test_golden_vectors.py checks the code still produces exactly "
                 "this (see docs/formats.md, 'Golden vectors').",
        "suite": suite_name,
        "signatures": "deterministic" if suite_name == "intl" else "randomized",
        "keys": {
            name: {"seed": f"sha256({seed_label(suite_name, name)!r})",
                   "private_key": key.to_bytes().hex(),
                   "public_key": key.public_key.hex(),
                   "address": suite.address(key.public_key)}
            for name, key in keys.items()
        },
        "genesis": {
            "document": genesis.to_doc(),
            "cbor": genesis.canonical_bytes().hex(),
            "hash": genesis.hash.hex(),
        },
        "transaction": {
            "wire": wire.hex(),
            "body": decoded.body.hex(),
            "signature": decoded.signature.hex(),
            "id": decoded.id_hex,
            "sender": decoded.sender,
            "fields": {"chain": decoded.chain, "suite": decoded.suite, "tier": decoded.tier,
                       "signer": decoded.signer.hex(), "nonce": decoded.nonce,
                       "expiry": decoded.expiry, "kind": decoded.kind,
                       "payload": decoded.payload},
        },
        "block": {
            "height": height,
            "header": block["header"],
            "header_cbor": header.hex(),
            "hash": block["hash"],
            "txs": block["txs"],
        },
        "checkpoint": {"height": height, "note": note},
        "evidence": {"event_index": event_index, "bundle": bundle},
    }


def write(vectors: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(vectors, indent=2, ensure_ascii=False) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=VECTORS_DIR,
                    help="directory for golden-<suite>.json (default: tests/vectors)")
    ap.add_argument("--suite", choices=SUITE_NAMES, action="append",
                    help="only this suite (repeatable; default: every suite)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="tally-vectors-") as tmp:
        for suite_name in args.suite or SUITE_NAMES:
            path = vectors_path(args.out, suite_name)
            write(build(suite_name, Path(tmp)), path)
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
