"""The standalone verifier (tally_verify) against the verifier it replaced, side by side.

Times ``verify_bundle`` in process on the checked-in evidence vectors (valid bundles of
both suites: one event before any validator change, one after two updates, one with a
consistency proof), from the bundle's bytes to the verdict, pinned genesis hash, for

* ``tally_verify.verify_bundle`` (verifier/, decision 0024), and
* ``tally/evidence/verify.py`` as it was at commit ``LEGACY`` (with ``tally.log`` and
  ``tally.crypto`` as they are now: ZIP 215 Ed25519 in Rust, SM2 with cached keys),
  loaded from git history, so both run in the same process on the same bytes.

The two are timed alternately, round after round, and the median of each is printed
with the ratio (new / old: below 1 is faster).

    python bench/bench_verify.py [--rounds 300]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "verifier")]

import tally_verify  # noqa: E402

LEGACY = "264b73f"
VECTORS = ROOT / "tests" / "vectors" / "evidence"
CASES = ("issue", "after-validator-change", "consistency")


def legacy_verifier() -> types.ModuleType:
    source = subprocess.run(["git", "show", f"{LEGACY}:tally/evidence/verify.py"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout
    spec = importlib.util.spec_from_loader("legacy_evidence_verify", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    exec(compile(source, f"{LEGACY}:tally/evidence/verify.py", "exec"), module.__dict__)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description="standalone vs legacy evidence verifier")
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    legacy = legacy_verifier()
    print(f"{'bundle':34} {'tally_verify':>13} {'legacy':>10} {'new/old':>8}")
    for suite in ("intl", "gm"):
        for case in CASES:
            vector = json.loads((VECTORS / f"{suite}-{case}.json").read_text())
            data, pin = json.dumps(vector["bundle"]).encode(), vector["genesis_hash"]
            verifiers = {"new": tally_verify.verify_bundle, "old": legacy.verify_bundle}
            assert verifiers["new"](data, genesis_hash=pin).facts == \
                verifiers["old"](data, genesis_hash=pin).facts == vector["verdict"]["facts"]
            times: dict[str, list[float]] = {"new": [], "old": []}
            for _ in range(args.rounds):
                for name, verify in verifiers.items():
                    start = time.perf_counter()
                    verify(data, genesis_hash=pin)
                    times[name].append(time.perf_counter() - start)
            new, old = (statistics.median(times[n]) * 1000 for n in ("new", "old"))
            print(f"{suite + '-' + case:34} {new:10.3f} ms {old:7.3f} ms {new / old:8.2f}")


if __name__ == "__main__":
    main()
