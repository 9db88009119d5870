"""A long fuzz of the native canonical-CBOR fast path against the reference decoder.

tests/unit/test_cbor_fast.py runs a few thousand cases per `make test`; this runs for as long
as you give it, after a change to native/cbor (decision 0016):

    .venv/bin/python scripts/fuzz_cbor_fast.py SEED SECONDS

It builds random plain values, encodes them canonically, mutates the bytes (overwrite,
insert, delete, truncate, splice) and asserts the one-sided agreement the tests hold
the fast path to: whenever it answers, the reference accepts the same bytes with the
same value, of the same types.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from typing import Any

import cbor2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from test_cbor_fast import agrees, fast, same  # noqa: E402

EDGES = [0, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1]


def scalar(rng: random.Random) -> Any:
    kind = rng.randrange(5)
    if kind == 0:
        return rng.choice(EDGES) * rng.choice([1, -1]) - rng.choice([0, 1])
    if kind == 1:
        return rng.randrange(-(2**64), 2**64)
    if kind == 2:
        return rng.randbytes(rng.choice([0, 1, 23, 24, 255, 256]))
    if kind == 3:
        return "".join(chr(rng.choice([0x61, 0xE9, 0x4E2D, 0x1F600]))
                       for _ in range(rng.randrange(30)))
    return rng.choice([True, False, None])


def value(rng: random.Random, depth: int = 0) -> Any:
    r = rng.random()
    if depth > 5 or r < 0.5:
        return scalar(rng)
    if r < 0.75:
        return [value(rng, depth + 1) for _ in range(rng.randrange(6))]
    return {"".join(rng.choice("abé") for _ in range(rng.randrange(4))): value(rng, depth + 1)
            for _ in range(rng.randrange(6))}


def mutate(rng: random.Random, data: bytearray) -> bytes:
    for _ in range(rng.randrange(1, 4)):
        at = rng.randrange(len(data) + 1)
        op = rng.randrange(5)
        if op == 0 and at < len(data):
            data[at] = rng.randrange(256)
        elif op == 1:
            data.insert(at, rng.randrange(256))
        elif op == 2 and at < len(data):
            del data[at]
        elif op == 3:
            del data[at:]
        else:
            data[at:at] = rng.randbytes(rng.randrange(1, 9))
    return bytes(data)


def main() -> None:
    rng = random.Random(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 120.0
    tried = answered = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        original = [value(rng), value(rng)] if rng.random() < 0.5 else \
            {"k": value(rng), "kk": value(rng)}
        encoded = cbor2.dumps(original, canonical=True)
        decoded = fast(encoded)
        assert decoded is not None and same(decoded, cbor2.loads(encoded)), encoded.hex()
        tried += 1
        if agrees(mutate(rng, bytearray(encoded))) is not None:
            answered += 1
    print(f"{tried} mutated inputs, the fast path answered {answered}; no disagreement")


if __name__ == "__main__":
    main()
