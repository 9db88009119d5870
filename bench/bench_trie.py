"""State trie benchmark: batch update throughput, proof cost and proof size.

    .venv/bin/python bench/bench_trie.py [SIZE ...] [--batches 1000,20000]
        [--suite intl|gm] [--cache-nodes N] [--rounds R] [--warmup W]

For each trie size (default 10000 100000 1000000 keys) it builds the trie, runs W
untimed blocks (a running node's cache is warm), then times ``update`` with R blocks of
each batch size. A block's writes mimic custody transfers:
90 % overwrite existing keys, 5 % create keys, 5 % delete keys, so the key count stays
level (a trie smaller than twice the batch gets creates instead of the overwrites it
cannot hold). ``update`` is timed alone, and again together with ``take_dirty`` and writing
the records into the in-memory store (the node's SQLite write is not included), in
wall-clock time and, for ``update``, in CPU time too (steadier on a shared machine; the
best block is the least disturbed by other processes). Then
it times the first block after a restart (cold cache), ``prove`` and
``verify_state_proof`` for present and absent keys, and reports proof sizes.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tally.crypto import get_suite  # noqa: E402
from tally.state.trie import (  # noqa: E402
    DEFAULT_CACHE_NODES,
    DictTrieStore,
    StateTrie,
    verify_state_proof,
)


def _value(rng: random.Random) -> bytes:
    # A custody record is a small CBOR map; its size does not matter much to the trie,
    # which only hashes it once.
    return rng.randbytes(96)


def build(hash_fn, size: int, cache_nodes: int, rng: random.Random):
    store = DictTrieStore()
    trie = StateTrie(hash_fn, store, cache_nodes=cache_nodes)
    start = time.perf_counter()
    step = 50_000
    for lo in range(0, size, step):
        trie.update({b"asset/%d" % i: _value(rng) for i in range(lo, min(size, lo + step))})
        store.write(trie.take_dirty())
    return store, trie, time.perf_counter() - start


def block(rng: random.Random, live: list[int], next_id: list[int], size: int) -> dict:
    """A block of ``size`` writes: 90 % overwrites, 5 % creates, 5 % deletes (more
    creates when the trie is too small for that many distinct overwrites)."""
    changes: dict[bytes, bytes | None] = {}
    n_new = n_del = size // 20
    # A small trie cannot take a big block of distinct overwrites: create the rest.
    n_new = max(n_new, size - n_del - len(live) // 2)
    for _ in range(n_del):
        j = rng.randrange(len(live))
        live[j], live[-1] = live[-1], live[j]
        changes[b"asset/%d" % live.pop()] = None
    for _ in range(n_new):
        live.append(next_id[0])
        changes[b"asset/%d" % next_id[0]] = _value(rng)
        next_id[0] += 1
    while len(changes) < size:
        changes[b"asset/%d" % live[rng.randrange(len(live))]] = _value(rng)
    return changes


def run(
    size: int, batches: list[int], suite_name: str, cache_nodes: int, rounds: int, warmup: int
) -> dict:
    hash_fn = get_suite(suite_name).hash
    rng = random.Random(size)
    store, trie, build_s = build(hash_fn, size, cache_nodes, rng)
    live = list(range(size))
    next_id = [size]
    result: dict = {"keys": size, "build_s": round(build_s, 2), "records": len(store.records)}

    start = time.perf_counter()
    StateTrie(hash_fn, store, cache_nodes=cache_nodes)
    result["open_us"] = round((time.perf_counter() - start) * 1e6, 1)

    # A running node's cache is warm: a few untimed blocks first.
    for _ in range(warmup):
        trie.update(block(rng, live, next_id, max(batches)))
        store.write(trie.take_dirty())

    for batch in batches:
        update_s, total_s, cpu_s, records, nbytes = [], [], [], [], []
        for _ in range(rounds):
            changes = block(rng, live, next_id, batch)
            gc.collect()
            c0, t0 = time.process_time(), time.perf_counter()
            trie.update(changes)
            c1, t1 = time.process_time(), time.perf_counter()
            dirty = trie.take_dirty()
            store.write(dirty)
            t2 = time.perf_counter()
            records.append(len(dirty))
            nbytes.append(sum(len(p) + len(r or b"") for p, r in dirty))
            update_s.append(t1 - t0)
            cpu_s.append(c1 - c0)
            total_s.append(t2 - t0)
        med_update, med_total = statistics.median(update_s), statistics.median(total_s)
        med_cpu = statistics.median(cpu_s)
        result[f"batch_{batch}"] = {
            "update_ms": round(med_update * 1e3, 1),
            "update_cpu_ms": round(med_cpu * 1e3, 1),
            "update_cpu_ms_best": round(min(cpu_s) * 1e3, 1),
            "updates_per_s": round(batch / med_update),
            "updates_per_cpu_s": round(batch / med_cpu),
            "with_take_dirty_ms": round(med_total * 1e3, 1),
            "with_take_dirty_per_s": round(batch / med_total),
            "dirty_records": round(statistics.median(records)),
            "dirty_mb": round(statistics.median(nbytes) / 1e6, 2),
        }

    # Right after a restart the cache is empty: the first block reads what it needs.
    cold = StateTrie(hash_fn, store, cache_nodes=cache_nodes)
    changes = block(rng, live, next_id, max(batches))
    t0 = time.perf_counter()
    cold.update(changes)
    result["cold_first_block_ms"] = round((time.perf_counter() - t0) * 1e3, 1)
    store.write(cold.take_dirty())
    trie = cold

    # Proofs for present keys (in the store) and absent keys (never written).
    root = trie.root()
    present = [b"asset/%d" % live[rng.randrange(len(live))] for _ in range(2000)]
    absent = [b"absent/%d" % i for i in range(2000)]
    values = {}
    for key in present:  # the verifier is handed the value; take it from a fresh write
        values[key] = _value(rng)
    trie.update(values)
    store.write(trie.take_dirty())
    root = trie.root()
    for label, keys in (("present", present), ("absent", absent)):
        t0 = time.perf_counter()
        proofs = [trie.prove(k) for k in keys]
        t1 = time.perf_counter()
        for k, p in zip(keys, proofs, strict=True):
            verify_state_proof(hash_fn, root, k, values.get(k), p)
        t2 = time.perf_counter()
        sizes = [len(p.to_bytes()) for p in proofs]
        result[f"proof_{label}"] = {
            "prove_us": round((t1 - t0) / len(keys) * 1e6, 1),
            "verify_us": round((t2 - t1) / len(keys) * 1e6, 1),
            "bytes_mean": round(statistics.mean(sizes)),
            "bytes_max": max(sizes),
            "json_bytes_mean": round(
                statistics.mean(len(json.dumps(p.to_dict())) for p in proofs[:200])
            ),
            "levels_mean": round(statistics.mean(len(p.levels) for p in proofs), 2),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--batches", default="1000,20000")
    parser.add_argument("--suite", default="intl", choices=["intl", "gm"])
    parser.add_argument("--cache-nodes", type=int, default=DEFAULT_CACHE_NODES)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=5, help="untimed blocks before timing")
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    print(
        f"# python {sys.version.split()[0]}, suite {args.suite}, "
        f"cache_nodes {args.cache_nodes}, {args.warmup} warm-up blocks, "
        f"median of {args.rounds} blocks"
    )
    for size in args.sizes:
        result = run(size, batches, args.suite, args.cache_nodes, args.rounds, args.warmup)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
