"""Per-operation cost of each crypto suite, and Tally's SM2 beside pure-Python gmssl.

Run from the repository root::

    .venv/bin/python bench/bench_crypto.py

Prints microseconds per operation (the best of several rounds, so background load
inflates nothing). A signature admitted to a block is verified once at admission and
once per replay, so ``verify`` is the figure that bounds throughput.
"""

from __future__ import annotations

import argparse
import platform
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tally.crypto import SUITE_NAMES, get_suite  # noqa: E402

MESSAGE = bytes(range(200))  # about the size of an encoded transaction


def microseconds(operation: Callable[[], object], number: int, rounds: int = 5) -> float:
    return min(timeit.repeat(operation, number=number, repeat=rounds)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    scale = 0.1 if parser.parse_args().quick else 1.0

    def n(count: int) -> int:
        return max(1, int(count * scale))

    print(f"python {platform.python_version()} on {platform.machine()}")
    print(f"{'suite':<6} {'operation':<26} {'us/op':>10}")
    results: dict[tuple[str, str], float] = {}
    for name in SUITE_NAMES:
        suite = get_suite(name)
        key = suite.generate_private_key()
        signature = key.sign(MESSAGE)
        rows = {
            "hash (200 B)": microseconds(lambda s=suite: s.hash(MESSAGE), n(20000)),
            "sign (200 B)": microseconds(lambda k=key: k.sign(MESSAGE), n(500)),
            "verify (200 B)": microseconds(
                lambda s=suite, k=key, sig=signature: s.verify(k.public_key, MESSAGE, sig), n(500)
            ),
            "load_private_key": microseconds(
                lambda s=suite, raw=key.to_bytes(): s.load_private_key(raw), n(200)
            ),
        }
        for operation, value in rows.items():
            results[(name, operation)] = value
            print(f"{name:<6} {operation:<26} {value:>10.1f}")

    # Ed25519: libsodium (the verifier before decision 0013) beside Tally's, one by one
    # and in batches of the sizes admission verifies (a slice of 128, a bundle of 250).
    import nacl.bindings
    import nacl.signing

    intl = get_suite("intl")
    keys = [nacl.signing.SigningKey(i.to_bytes(32, "little")) for i in range(1, 401)]
    items = [(bytes(k.verify_key), MESSAGE + i.to_bytes(4, "little"),
              k.sign(MESSAGE + i.to_bytes(4, "little")).signature)
             for i, k in enumerate(keys * 3)][:1000]
    sodium = microseconds(lambda: [nacl.bindings.crypto_sign_open(s + m, k)
                                   for k, m, s in items], n(5), 3) / len(items)
    print(f"{'intl':<6} {'verify, libsodium':<26} {sodium:>10.1f}")
    for size in (1, 16, 128, 250, 1000):
        chunks = [items[i:i + size] for i in range(0, len(items), size)]
        batch = microseconds(lambda c=chunks: [intl.verify_many(chunk) for chunk in c],
                             n(5), 3) / len(items)
        print(f"{'intl':<6} {f'verify_many, {size} at a time':<26} {batch:>10.1f}"
              f"   libsodium / this = {sodium / batch:.1f}x")

    from gmssl import sm2 as gmssl_sm2

    gm = get_suite("gm")
    key = gm.generate_private_key()
    crypt = gmssl_sm2.CryptSM2(private_key=key.to_bytes().hex(), public_key="")
    crypt.public_key = key.public_key[1:].hex()
    signature_hex = key.sign(MESSAGE).hex()
    assert crypt.verify_with_sm3(signature_hex, MESSAGE)
    gmssl_verify = microseconds(lambda: crypt.verify_with_sm3(signature_hex, MESSAGE), n(20), 3)
    ratio = gmssl_verify / results[("gm", "verify (200 B)")]
    print(f"{'gmssl':<6} {'verify (200 B)':<26} {gmssl_verify:>10.1f}")
    print(f"SM2 verify: gmssl (pure Python) / Tally (libcrypto) = {ratio:.1f}x")


if __name__ == "__main__":
    main()
