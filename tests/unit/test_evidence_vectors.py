"""The evidence test vectors (tests/vectors/evidence/, docs/evidence-spec.md, "Test
vectors") against the standalone verifier, and Tally's CLI against a few of them.

Nothing here builds anything with Tally's code: the vectors are read from the checked-in
files (scripts/make_evidence_vectors.py wrote them, with the verdicts of Tally's verifier
before and after it became ``tally_verify``), and ``tally_verify`` must give exactly the
recorded verdict: the facts word for word when valid, the reason when not. Tally's CLI
is run as a separate process, as an auditor would run it.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import tally_verify

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "evidence"
FILES = sorted(VECTORS.glob("*.json"))
#: Every suite has each of these (a vector deleted by mistake fails the test).
NAMES = {
    "valid": ["issue", "issue-unpinned", "freeze-details", "after-validator-change",
              "consistency", "commercial", "version-2", "cosigned", "unknown-signer-ignored",
              "two-signers"],
    "genesis": ["clone-chain", "wrong-genesis-pinned", "genesis-hash-mismatch",
                "chain-id-mismatch", "suite-mismatch"],
    "inclusion": ["tampered-leaf", "bad-inclusion", "inclusion-size", "commercial-as-custody"],
    "details": ["tampered-details", "missing-details"],
    "transaction": ["tampered-transaction", "other-transaction"],
    "checkpoint": ["checkpoint-signature", "checkpoint-genesis-line-dropped",
                   "checkpoint-unsigned", "cosignature-timestamp", "no-quorum", "wrong-origin"],
    "validators": ["missing-update", "update-out-of-order", "update-tampered",
                   "wrong-validators-line"],
    "leaf": ["leaf-not-an-event"],
    "consistency": ["bad-consistency"],
    "format": ["unknown-field", "missing-field", "bool-index", "non-canonical-base64",
               "byte-order-mark", "duplicate-key", "float", "not-utf8", "too-deep",
               "not-an-object"],
}


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _bytes(vector: dict[str, Any]) -> bytes:
    if "bundle_bytes" in vector:
        return base64.b64decode(vector["bundle_bytes"])
    return json.dumps(vector["bundle"]).encode()


def _verdict(bundle: Any, genesis_hash: str | None) -> dict[str, Any]:
    try:
        v = tally_verify.verify_bundle(bundle, genesis_hash=genesis_hash)
    except tally_verify.EvidenceError as exc:
        return {"valid": False, "reason": exc.reason}
    return {"valid": True, "facts": v.facts, "signers": v.signers, "event": v.event,
            "genesis_pinned": v.genesis_pinned}


@pytest.mark.parametrize("suite", ["intl", "gm"])
def test_every_suite_has_every_vector(suite: str) -> None:
    for expected, names in NAMES.items():
        for name in names:
            vector = _load(VECTORS / f"{suite}-{name}.json")
            verdict = vector["verdict"]
            assert (verdict["valid"] if expected == "valid"
                    else verdict == {"valid": False, "reason": expected}), (name, verdict)
    after = _load(VECTORS / f"{suite}-after-validator-change.json")
    assert len(after["bundle"]["validator_updates"]) == 2
    assert _load(VECTORS / f"{suite}-issue.json")["bundle"]["suite"] == suite
    assert _load(VECTORS / f"{suite}-two-signers.json")["verdict"]["signers"] == \
        ["validator-0", "bank-b"]


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_tally_verify_gives_the_recorded_verdict(path: Path) -> None:
    vector = _load(path)
    assert _verdict(_bytes(vector), vector["genesis_hash"]) == vector["verdict"]
    if "bundle" in vector:  # the parsed form, as a program would pass it, agrees too
        assert _verdict(vector["bundle"], vector["genesis_hash"]) == vector["verdict"]


@pytest.mark.parametrize("name", ["intl-issue", "gm-after-validator-change", "intl-version-2",
                                  "gm-clone-chain", "intl-tampered-leaf", "gm-missing-update",
                                  "intl-float", "gm-byte-order-mark"])
def test_the_clis_exit_codes_agree(name: str, tmp_path: Path) -> None:
    """Tally's CLI and tally-verify's: 0 valid, 1 invalid, 2 malformed."""
    vector = _load(VECTORS / f"{name}.json")
    bundle = tmp_path / "bundle.json"
    bundle.write_bytes(_bytes(vector))
    verdict = vector["verdict"]
    expected = 0 if verdict["valid"] else 2 if verdict["reason"] == "format" else 1
    pin = ["--genesis-hash", vector["genesis_hash"]] if vector["genesis_hash"] else []
    for module in ("tally", "tally_verify"):
        command = [sys.executable, "-m", module, *(["evidence", "verify"] if module == "tally"
                                                   else []), str(bundle), *pin, "--json"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert done.returncode == expected, (module, done.stdout, done.stderr)
        printed = json.loads(done.stdout)
        assert printed["valid"] == verdict["valid"]
        assert printed.get("reason") == verdict.get("reason")
        assert printed.get("facts") == verdict.get("facts")
