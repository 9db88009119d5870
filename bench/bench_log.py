"""Benchmark tally.log (SHA-256, in-memory DictNodeStore) against pymerkle 7
(InmemoryTree, SHA-256, RFC 6962-compatible hashing) in the same process.

Usage: .venv/bin/python bench/bench_log.py [SIZE ...] [--no-pymerkle] [--pymerkle-max N]

For each size: leaves/s appended (append_many in blocks of 5,000; pymerkle's
append_entries in the same blocks), root computation (current and past size),
inclusion and consistency proof generation and verification in µs per operation
(mean over random indices/sizes, best of 5 runs), and the Tally/pymerkle time ratio (< 1 means
Tally is faster; for appends, the ratio of rates, > 1 means Tally is faster).

Times are CPU time of this process (time.process_time), not wall time, so that
other work on a shared machine inflates them less.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import platform
import random
import sys
import time
from collections.abc import Callable

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from tally.log import (  # noqa: E402
    DictNodeStore,
    MerkleLog,
    verify_consistency,
    verify_inclusion,
)

BLOCK = 5_000
OPS = 2_000  # operations timed per proof measurement


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


REPEAT = 5  # each figure is the best of this many runs (as timeit advises)


def per_op_us(fn: Callable[[int], object], ops: int) -> float:
    """µs per call of fn(i) over i in range(ops), best of REPEAT runs."""
    gc.collect()
    best = float("inf")
    for _ in range(REPEAT):
        t0 = time.process_time()
        for i in range(ops):
            fn(i)
        best = min(best, time.process_time() - t0)
    return best / ops * 1e6


def append_runs(n: int) -> int:
    """Best of 3 appends for small trees, 1 for large (a 1M-leaf run takes seconds)."""
    return max(1, min(3, 300_000 // n))


def make_leaves(n: int) -> list[bytes]:
    blob = random.Random(n).randbytes(64 * n)
    return [blob[i : i + 64] for i in range(0, 64 * n, 64)]


def bench_tally(leaves: list[bytes], rng: random.Random) -> dict[str, float]:
    n = len(leaves)
    append_s = float("inf")
    for _ in range(append_runs(n)):
        log = MerkleLog(sha256, DictNodeStore())
        gc.collect()
        t0 = time.process_time()
        for i in range(0, n, BLOCK):
            log.append_many(leaves[i : i + BLOCK])
        append_s = min(append_s, time.process_time() - t0)
    r: dict[str, float] = {"append_per_s": n / append_s}
    root = log.root()
    r["root_current_us"] = per_op_us(lambda _: log.root(), OPS)
    r["root_past_us"] = per_op_us(lambda _: log.root(n - 1 if n > 1 else n), OPS)

    idx = [rng.randrange(n) for _ in range(OPS)]
    r["incl_gen_us"] = per_op_us(lambda i: log.inclusion_proof(idx[i], n), OPS)
    proofs = [log.inclusion_proof(i, n) for i in idx]
    lhs = [log.leaf_hash_at(i) for i in idx]
    r["incl_verify_us"] = per_op_us(
        lambda i: verify_inclusion(sha256, idx[i], n, lhs[i], proofs[i], root), OPS
    )

    s1 = [rng.randrange(1, n) if n > 1 else 1 for _ in range(OPS)]
    r1 = {s: log.root(s) for s in set(s1)}
    r["cons_gen_us"] = per_op_us(lambda i: log.consistency_proof(s1[i], n), OPS)
    cproofs = [log.consistency_proof(s, n) for s in s1]
    r["cons_verify_us"] = per_op_us(
        lambda i: verify_consistency(sha256, s1[i], n, cproofs[i], r1[s1[i]], root), OPS
    )
    r["proof_len"] = sum(len(p) for p in proofs) / len(proofs)
    return r


def bench_pymerkle(leaves: list[bytes], rng: random.Random) -> dict[str, float]:
    from pymerkle import InmemoryTree, verify_consistency, verify_inclusion

    n = len(leaves)
    append_s = float("inf")
    for _ in range(append_runs(n)):
        tree = InmemoryTree(algorithm="sha256")
        gc.collect()
        t0 = time.process_time()
        for i in range(0, n, BLOCK):
            tree.append_entries(leaves[i : i + BLOCK])
        append_s = min(append_s, time.process_time() - t0)
    r: dict[str, float] = {"append_per_s": n / append_s}
    root = tree.get_root()
    r["root_current_us"] = per_op_us(lambda _: tree.get_root(), OPS)
    r["root_past_us"] = per_op_us(lambda _: tree.get_root(n - 1 if n > 1 else n), OPS)

    idx = [rng.randrange(n) + 1 for _ in range(OPS)]  # pymerkle counts from 1
    r["incl_gen_us"] = per_op_us(lambda i: tree.prove_inclusion(idx[i], n), OPS)
    proofs = [tree.prove_inclusion(i, n) for i in idx]
    bases = [tree.get_leaf(i) for i in idx]
    r["incl_verify_us"] = per_op_us(
        lambda i: verify_inclusion(bases[i], root, proofs[i], index=idx[i], size=n), OPS
    )

    s1 = [rng.randrange(1, n) if n > 1 else 1 for _ in range(OPS)]
    r1 = {s: tree.get_root(s) for s in set(s1)}
    r["cons_gen_us"] = per_op_us(lambda i: tree.prove_consistency(s1[i], n), OPS)
    cproofs = [tree.prove_consistency(s, n) for s in s1]
    r["cons_verify_us"] = per_op_us(
        lambda i: verify_consistency(r1[s1[i]], root, cproofs[i], prior_size=s1[i], later_size=n),
        OPS,
    )
    # pymerkle's path includes the leaf hash itself
    r["proof_len"] = sum(len(p.path) - 1 for p in proofs) / len(proofs)
    return r


ROWS = [
    ("append_per_s", "append (leaves/s)", "{:,.0f}"),
    ("root_current_us", "root, current size (µs)", "{:.2f}"),
    ("root_past_us", "root, past size (µs)", "{:.2f}"),
    ("incl_gen_us", "inclusion proof gen (µs)", "{:.2f}"),
    ("incl_verify_us", "inclusion proof verify (µs)", "{:.2f}"),
    ("cons_gen_us", "consistency proof gen (µs)", "{:.2f}"),
    ("cons_verify_us", "consistency proof verify (µs)", "{:.2f}"),
    ("proof_len", "inclusion proof hashes (mean)", "{:.1f}"),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("sizes", nargs="*", type=int, default=[1_000, 10_000, 100_000, 1_000_000])
    ap.add_argument("--no-pymerkle", action="store_true", help="only benchmark Tally")
    ap.add_argument(
        "--pymerkle-max", type=int, default=None, help="skip pymerkle above this many leaves"
    )
    args = ap.parse_args()
    print(f"# python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    print(
        f"# best of {REPEAT} runs of {OPS} operations per µs figure; appends in blocks of {BLOCK:,}"
    )
    print(f"# CPU time (process_time); load average at start: {os.getloadavg()[0]:.2f}")
    for n in args.sizes:
        leaves = make_leaves(n)
        t = bench_tally(leaves, random.Random(1))
        p = None
        if not args.no_pymerkle and (args.pymerkle_max is None or n <= args.pymerkle_max):
            p = bench_pymerkle(leaves, random.Random(1))
        print(f"\n## {n:,} leaves")
        print(f"| {'operation':32} | {'Tally':>12} | {'pymerkle 7':>12} | {'Tally/pymerkle':>14} |")
        print(f"|{'-' * 34}|{'-' * 14}:|{'-' * 14}:|{'-' * 16}:|")
        for key, label, fmt in ROWS:
            tv = fmt.format(t[key])
            pv = fmt.format(p[key]) if p else "-"
            ratio = f"{t[key] / p[key]:.2f}" if p and p[key] else "-"
            print(f"| {label:32} | {tv:>12} | {pv:>12} | {ratio:>14} |")
        del leaves
        gc.collect()


if __name__ == "__main__":
    main()
