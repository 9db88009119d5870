"""Account registrations per second on the embedded node (issue 15's target: at least
1,000 a second on ``intl``, the ``gm`` figure recorded).

A member's registrar registers N real-name accounts, each by an X.509 certificate its CA
issued: every registration verifies the certificate's chain to the member's CA at block
time (tally.identity.certs), checks revocations, and records the account. Certificates
and transactions are made before the clock starts; the time is from the first
submission to the last registration's block being durable.

    python bench/bench_identity.py [--suite intl|gm] [--accounts 4000]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_custody import CHAIN, run_inprocess  # noqa: E402
from identity_setup import GENESIS_TIME_MS, identity_parts, member_ca  # noqa: E402

from tally import tx as txmod  # noqa: E402
from tally.crypto import get_suite  # noqa: E402
from tally.genesis import make_genesis  # noqa: E402
from tally.identity import commitment  # noqa: E402
from tally.keys import generate  # noqa: E402
from tally.node import Node  # noqa: E402
from tally.protocol.versions import IDENTITY  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--suite", default="intl", choices=["intl", "gm"])
    ap.add_argument("--accounts", type=int, default=None,
                    help="registrations (default 4000 intl, 300 gm: openssl makes gm certs)")
    args = ap.parse_args()
    n = args.accounts or (4000 if args.suite == "intl" else 300)
    tmp = Path(tempfile.mkdtemp(prefix="tally-bench-identity-"))
    try:
        suite = get_suite(args.suite)
        validator = generate("validator-0", args.suite)
        registrar = generate("registrar", args.suite)
        ca_pem, leaf = member_ca(args.suite, tmp)
        staff = {registrar.address: ["admin", "registrar"]}
        genesis = make_genesis(CHAIN, suite, [(validator.name, validator.key)], staff,
                               GENESIS_TIME_MS, protocol_version=IDENTITY,
                               **identity_parts(ca_pem, staff,
                                                {registrar.address: registrar.public_key}))
        made = time.perf_counter()
        customers = [suite.generate_private_key().public_key for _ in range(n)]
        certificates = [leaf(key, f"customer {i}") for i, key in enumerate(customers)]
        salt = commitment.new_salt()
        raws = [txmod.sign(registrar.key, chain=CHAIN, nonce=i, expiry=100_000,
                           kind="account.register",
                           payload={"certificate": cert, "kyc": 2, "commitment":
                                    commitment.commit(suite, {"n": str(i)}, salt)})
                for i, cert in enumerate(certificates)]
        print(f"suite={args.suite}: {n} certificates and transactions made in "
              f"{time.perf_counter() - made:.1f} s (not timed)")
        node = Node(tmp / "node", genesis, validator).start()
        try:
            elapsed = run_inprocess(node, raws)
            registered = sum(1 for key in customers
                             if node.reader.value(f"account/{suite.address(key)}".encode()))
        finally:
            node.stop()
        assert registered == n, f"only {registered} of {n} registered"
        print(f"suite={args.suite}: {n} registrations committed in {elapsed:.2f} s = "
              f"{n / elapsed:,.0f} registrations/s (target: >= 1,000/s on intl)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
