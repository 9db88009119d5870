"""X.509 chain verification per second (root -> leaf), for intl (Ed25519) and gm (SM2).

Run from the repository root (needs the ``openssl`` command, which makes the CA)::

    .venv/bin/python bench/bench_certs.py

A registration parses the customer's leaf certificate (new every time) and verifies it
up to the member's CA (whose parse and fingerprint are cached: the same few CAs sign
everything). The figures split that cost: the raw signature verification the suite
does anyway, a cold parse of the leaf, the chain checks on parsed certificates, and the
whole path. The target is >= 1,000 registrations/s on intl, so the whole path must stay
well under 1 ms. Best of several rounds.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tally.crypto import get_suite  # noqa: E402
from tally.identity import certs  # noqa: E402
from tests.support.openssl_ca import OpensslPki  # noqa: E402

CASES = (("intl", "ed25519"), ("gm", "sm2"))


def microseconds(operation: Callable[[], object], number: int, rounds: int = 5) -> float:
    return min(timeit.repeat(operation, number=number, repeat=rounds)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    number = 200 if parser.parse_args().quick else 2000
    print(f"python {platform.python_version()} on {platform.machine()}")
    print(f"{'suite':<6}{'step':<48}{'us/op':>9}{'ops/s':>10}")
    with tempfile.TemporaryDirectory() as directory:
        pki = OpensslPki(Path(directory))
        for suite_name, algorithm in CASES:
            for name, operation in steps(pki, suite_name, algorithm).items():
                us = microseconds(operation, number)
                print(f"{suite_name:<6}{name:<48}{us:>9.1f}{1e6 / us:>10,.0f}")


def steps(pki: OpensslPki, suite_name: str, algorithm: str) -> dict[str, Callable[[], object]]:
    account = get_suite(suite_name).generate_private_key()
    root_ca = pki.root(f"Bank {algorithm}", algorithm)
    leaf_pem = pki.leaf(root_ca, "alice", public_key=account.public_key, algorithm=algorithm)
    root = certs.parse_certificate(root_ca.pem)
    leaf = certs.parse_certificate(leaf_pem)
    at = leaf.not_before_ms + 60_000
    parse_cold = certs._parse_der.__wrapped__  # type: ignore[attr-defined]  # no cache

    def verify(cert: certs.Certificate) -> certs.VerifiedChain:
        return certs.verify_chain(cert, [], [root], at_ms=at, suite_name=suite_name,
                                  public_key=account.public_key)

    return {
        "signature alone (the suite's verify)": lambda: certs._signature_valid(
            root.key_algorithm, root.public_key, leaf.tbs, leaf.signature),
        "parse the leaf, cold (DER walk + cryptography)": lambda: parse_cold(leaf.der),
        "verify_chain on parsed certificates": lambda: verify(leaf),
        "whole path: PEM leaf, cold parse, verify": (
            lambda: verify(parse_cold(certs._der_of(leaf_pem)))),
    }


if __name__ == "__main__":
    main()
