"""Private-data envelopes: seal and open per second, both suites.

Run from the repository root::

    .venv/bin/python bench/bench_envelope.py          # --quick for a smoke run

A 256-byte private field sealed to 2 recipients (say, the two parties; a regulator
makes 3), then opened by one of them. Best of several rounds.
"""

from __future__ import annotations

import argparse
import platform
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tally.crypto import SUITE_NAMES  # noqa: E402
from tally.privacy import (  # noqa: E402
    EnvelopeContext,
    generate_encryption_key,
    open_envelope,
    seal,
)

FIELD = bytes(range(256))
CONTEXT = EnvelopeContext("bench-chain", "asset.transfer/memo")


def per_second(operation: Callable[[], object], number: int, rounds: int = 5) -> float:
    return number / min(timeit.repeat(operation, number=number, repeat=rounds))


def measure(name: str, count: int, scale: float) -> None:
    keys = [generate_encryption_key(name) for _ in range(count)]
    recipients = [key.public_key for key in keys]
    envelope = seal(name, FIELD, recipients, CONTEXT)
    number = max(1, int((2000 if name == "intl" else 200) * scale))
    seals = per_second(lambda: seal(name, FIELD, recipients, CONTEXT), number)
    opens = per_second(lambda: open_envelope(name, envelope, keys[0], CONTEXT), number)

    def both() -> None:
        open_envelope(name, seal(name, FIELD, recipients, CONTEXT), keys[0], CONTEXT)

    pairs = per_second(both, number)
    print(f"{name:6} {seals:9,.0f} {opens:9,.0f} {pairs:12,.0f} {len(envelope):6}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    parser.add_argument("--recipients", type=int, default=2)
    args = parser.parse_args()
    scale = 0.1 if args.quick else 1.0
    print(f"python {platform.python_version()} on {platform.machine()}; "
          f"{len(FIELD)}-byte field, {args.recipients} recipients")
    print(f"{'suite':6} {'seal/s':>9} {'open/s':>9} {'seal+open/s':>12} {'bytes':>6}")
    for name in SUITE_NAMES:
        measure(name, args.recipients, scale)

if __name__ == "__main__":
    main()
