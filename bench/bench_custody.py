"""Custody transfers per second, committed end to end on the embedded (solo) node.

Pre-signs N transfers from many senders, then measures from the first submission to the
moment the last one's block is durable. Two paths: in-process (Node.submit_many, the
engine's own ceiling) and over HTTP (the batch endpoint, as a client would).

    python bench/bench_custody.py [--suite intl|gm] [--txs 20000] [--senders 200] [--http]
    python bench/bench_custody.py --compare-permissions

``--compare-permissions`` measures the same transfers side by side on a protocol-version-3
chain (roles only) and on a version-4 chain whose every sender is a registered account of
a member and whose every transaction passes the policy check (tally.exec.policy), and
prints the cost of the checks (issue 15's target: at most 10 %).
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tally import tx as txmod  # noqa: E402
from tally.crypto import get_suite  # noqa: E402
from tally.genesis import make_genesis  # noqa: E402
from tally.keys import generate  # noqa: E402
from tally.node import Node  # noqa: E402
from tally.protocol.versions import IDENTITY, LATEST_VERSION  # noqa: E402

CHAIN = "bench"


def setup(suite_name: str, senders: int, data_dir: Path, version: int = LATEST_VERSION,
          registered: bool = False):
    """A started node funded for ``senders``; ``registered``: a version-4 chain with one
    member whose accounts are the issuer and every sender (registration required)."""
    suite = get_suite(suite_name)
    validator = generate("validator-0", suite_name)
    issuer = generate("issuer", suite_name)
    accounts = [generate(f"acct-{i}", suite_name) for i in range(senders)]
    staff = {issuer.address: ["issuer", "admin"]}
    extra: dict = {}
    if registered:
        from identity_setup import GENESIS_TIME_MS, identity_parts, member_ca

        ca_pem, _ = member_ca(suite_name, data_dir.parent)
        keys = {a.address: a.public_key for a in (issuer, *accounts)}
        extra = identity_parts(ca_pem, staff, keys) | {"time_ms": GENESIS_TIME_MS}
    genesis = make_genesis(CHAIN, suite, [(validator.name, validator.key)], staff,
                           extra.pop("time_ms", 1_700_000_000_000), protocol_version=version,
                           **extra)
    node = Node(data_dir, genesis, validator).start()
    # Fund every sender: one issue, then one transfer each (not timed).
    raws = [txmod.sign(issuer.key, chain=CHAIN, nonce=0, expiry=10_000, kind="asset.issue",
                       payload={"asset": "BOND", "class": "security", "name": "Bench bond",
                                "quantity": 10**12})]
    for i, acct in enumerate(accounts):
        raws.append(txmod.sign(issuer.key, chain=CHAIN, nonce=i + 1, expiry=10_000,
                               kind="custody.transfer",
                               payload={"asset": "BOND", "to": acct.address, "quantity": 10**9}))
    results = node.submit_many(raws, wait=True)
    assert all(getattr(r, "ok", False) for r in results), results[:3]
    return node, accounts


def presign(accounts, n: int) -> list[bytes]:
    raws = []
    per = n // len(accounts)
    for nonce in range(per):
        for i, acct in enumerate(accounts):
            to = accounts[(i + 1) % len(accounts)].address
            raws.append(txmod.sign(acct.key, chain=CHAIN, nonce=nonce, expiry=10_000,
                                   kind="custody.transfer",
                                   payload={"asset": "BOND", "to": to, "quantity": 1}))
    return raws


def run_inprocess(node: Node, raws: list[bytes], chunk: int = 2000) -> float:
    start = time.perf_counter()
    last_height = node.ledger.height
    for i in range(0, len(raws), chunk):
        for r in node.submit_many(raws[i:i + chunk], wait=False):
            if not isinstance(r, str):
                raise RuntimeError(f"refused: {r!r}")
    # wait until the mempool is drained and the last block committed
    while node.engine.mempool_depth or node.ledger.height == last_height:
        time.sleep(0.002)
    target = node.ledger.height
    while node.reader.tx_row(txmod.decode(raws[-1], max_size=1 << 20).id) is None:
        node.wait_for_height(target + 1, 0.01)
    return time.perf_counter() - start


def run_http(node: Node, raws: list[bytes], chunk: int = 1000, clients: int = 2) -> float:
    import httpx

    from tally.api.server import make_server

    port = 26000 + os.getpid() % 1000
    server = make_server(node, host="127.0.0.1", port=port, log_level="error")
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    # Each client owns a share of the senders and sends their transactions in nonce
    # order, so concurrent clients never race one sender's nonces.
    senders = len({txmod.decode(r, max_size=1 << 20).sender for r in raws[:1000]})
    shares = [[r for j, r in enumerate(raws) if (j % senders) % clients == k]
              for k in range(clients)]
    errors: list[BaseException] = []
    start = time.perf_counter()

    def worker(share: list[bytes]) -> None:
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
                for i in range(0, len(share), chunk):
                    body = {"txs": [base64.b64encode(r).decode() for r in share[i:i + chunk]],
                            "wait": True}
                    resp = client.post("/v1/txs/batch", json=body).json()
                    bad = [r for r in resp["results"] if r.get("code") != "OK"]
                    if bad:
                        raise RuntimeError(bad[:2])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(share,)) for share in shares]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    elapsed = time.perf_counter() - start
    server.should_exit = True
    thread.join(5)
    return elapsed


def compare_permissions(args: argparse.Namespace, tmp: Path) -> None:
    """Alternating rounds, each starting with the other chain (so machine load and warm-up
    hit both alike); the best round of each."""
    best: dict[str, float] = {}
    chains = [("v3 roles", 3, False), ("v4 registered+policy", IDENTITY, True)]
    for round_ in range(args.rounds):
        for label, version, registered in (chains if round_ % 2 == 0 else chains[::-1]):
            node, accounts = setup(args.suite, args.senders, tmp / f"{label}-{round_}"
                                   .replace(" ", "_").replace("+", "_"), version, registered)
            raws = presign(accounts, args.txs)
            rate = len(raws) / run_inprocess(node, raws)
            node.stop()
            best[label] = max(best.get(label, 0.0), rate)
            print(f"round {round_ + 1} suite={args.suite} {label}: {rate:,.0f} tx/s")
    before, after = best["v3 roles"], best["v4 registered+policy"]
    print(f"best: v3 {before:,.0f} tx/s, v4 {after:,.0f} tx/s; the identity and policy "
          f"checks cost {100 * (1 - after / before):.1f} % of throughput (target <= 10 %)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--suite", default="intl", choices=["intl", "gm"])
    ap.add_argument("--txs", type=int, default=20_000)
    ap.add_argument("--senders", type=int, default=200)
    ap.add_argument("--http", action="store_true", help="also measure through the HTTP API")
    ap.add_argument("--compare-permissions", action="store_true",
                    help="version 3 against version 4 with registered senders, side by side")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of --compare-permissions")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tally-bench-"))
    if args.compare_permissions:
        try:
            compare_permissions(args, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    try:
        node, accounts = setup(args.suite, args.senders, tmp / "inproc")
        raws = presign(accounts, args.txs)
        elapsed = run_inprocess(node, raws)
        print(f"suite={args.suite} in-process: {len(raws)} transfers committed in {elapsed:.2f} s "
              f"= {len(raws) / elapsed:,.0f} tx/s (height {node.ledger.height})")
        node.stop()
        if args.http:
            node, accounts = setup(args.suite, args.senders, tmp / "http")
            raws = presign(accounts, args.txs)
            elapsed = run_http(node, raws)
            print(f"suite={args.suite} HTTP batch: {len(raws)} transfers committed in "
                  f"{elapsed:.2f} s = {len(raws) / elapsed:,.0f} tx/s")
            node.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
