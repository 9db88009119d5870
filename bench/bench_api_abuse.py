"""A node's commit latency and memory, idle and under hostile HTTP traffic from one client.

The node and its API run in this process, as ``tally node run`` runs them (the API
server of tally.api.server, with the default limits). A second process sends about
``--rate`` requests a second from one address, open loop, each on a new connection, a
mix of what the API abuse suite refuses: out-of-range numbers, unknown routes, JSON
nested past the limit, queries past the rate limit, oversized bodies declared or
chunked, half-open request heads (slowloris), event streams opened and dropped, and
garbage transactions — with a few cheap valid reads among them. Meanwhile this process
commits transfers one at a time (``Node.submit_and_wait``) and samples its resident
memory. The target (issue 13, a benchmark, not a test): commit latency within 20 % of
idle, memory within 100 MB of idle.

    python bench/bench_api_abuse.py [--rate 1000] [--commits 40] [--connections-per-client N]

``--connections-per-client 1`` refuses nearly every hostile connection at once (429):
what is left is the cost of accepting and refusing connections in the node's process.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tally import tx as txmod  # noqa: E402
from tally.api.limits import ApiLimits  # noqa: E402
from tally.api.server import make_server  # noqa: E402
from tally.crypto import get_suite  # noqa: E402
from tally.genesis import make_genesis  # noqa: E402
from tally.keys import generate  # noqa: E402
from tally.node import Node  # noqa: E402

CHAIN = "bench"
MiB = 1024 * 1024

HOSTILE = [
    b"GET /v1/blocks/18446744073709551616 HTTP/1.1\r\nHost: n\r\n\r\n",
    b"GET /no/such/route HTTP/1.1\r\nHost: n\r\n\r\n",
    b"GET /v1/status HTTP/1.1\r\nHost: n\r\n\r\n",
    b"POST /v1/txs HTTP/1.1\r\nHost: n\r\nContent-Type: application/json\r\n"
    b"Content-Length: 500000000\r\n\r\n",
    b"POST /v1/txs HTTP/1.1\r\nHost: n\r\nContent-Type: application/json\r\n"
    b"Content-Length: 16\r\n\r\n{\"tx\": \"AAAA==\"}",
    b"GET /v1/events?after=-1&limit=10 HTTP/1.1\r\nHost: n\r\n\r\n",
]


def _post(path: bytes, body: bytes) -> bytes:
    return (b"POST " + path + b" HTTP/1.1\r\nHost: n\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body) + body)


HOSTILE += [
    _post(b"/v1/contracts/probe/query", b'{"method": "m", "args": ' + b"[" * 3000 + b"]" * 3000
          + b"}"),
    _post(b"/v1/contracts/probe/query", b'{"method": "m", "args": [' + b"9" * 5000 + b"]}"),
    _post(b"/v1/contracts/probe/query", b'{"method": "m", "args": []}'),
]
CHUNKED = (b"POST /v1/txs HTTP/1.1\r\nHost: n\r\nContent-Type: application/json\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n")
STREAM = b"GET /v1/events/stream HTTP/1.1\r\nHost: n\r\n\r\n"
SLOW_HEAD = b"GET /v1/status HTTP/1.1\r\nHost: n\r\nX-Slow: "


async def _hostile(port: int, rate: float, seconds: float, out: dict) -> None:
    counts: Counter[str] = Counter()
    held: list[asyncio.StreamWriter] = []
    gate = asyncio.Semaphore(48)  # requests in flight, not counting half-open heads

    async def one(i: int) -> None:
        try:
            await asyncio.wait_for(attempt(i), 15)
        except TimeoutError:
            counts["client timeout"] += 1

    async def attempt(i: int) -> None:
        async with gate:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                counts["connect failed"] += 1
                return
            try:
                kind = i % 12
                if kind == 9:  # a chunked body that never ends
                    writer.write(CHUNKED)
                    for _ in range(16):
                        writer.write(b"%x\r\n" % (64 * 1024) + b"[" * 64 * 1024 + b"\r\n")
                        await writer.drain()
                elif kind == 10:  # a half-open head, left for the server to time out
                    writer.write(SLOW_HEAD)
                    if len(held) < 40:
                        held.append(writer)
                        counts["half-open"] += 1
                        return
                elif kind == 11:  # an event stream, dropped once it answers
                    writer.write(STREAM)
                else:
                    writer.write(HOSTILE[kind % len(HOSTILE)])
                head = await asyncio.wait_for(reader.read(4096), 5)
                counts[head[9:12].decode() or "closed"] += 1
            except (OSError, TimeoutError):
                counts["reset"] += 1
            writer.close()

    tasks = []
    started = time.monotonic()
    i = 0
    while (elapsed := time.monotonic() - started) < seconds:
        due = int(elapsed * rate)
        while i < due:
            tasks.append(asyncio.ensure_future(one(i)))
            i += 1
        if len(held) >= 40:  # the server closes them after its head timeout
            alive = [w for w in held if not w.is_closing() and not w.transport.is_closing()]
            held[:] = alive
        await asyncio.sleep(0.005)
    await asyncio.gather(*tasks, return_exceptions=True)
    for writer in held:
        writer.close()
    out.update(sent=i, seconds=time.monotonic() - started, statuses=dict(counts))


def _hostile_process(port: int, rate: float, seconds: float, results: object) -> None:
    out: dict = {}
    asyncio.run(_hostile(port, rate, seconds, out))
    results.put(out)  # type: ignore[attr-defined]


def rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def commit_latencies(node: Node, sender, to: str, nonce: int, n: int) -> list[float]:
    times = []
    for k in range(n):
        raw = txmod.sign(sender.key, chain=CHAIN, nonce=nonce + k, expiry=10_000,
                         kind="custody.transfer",
                         payload={"asset": "BOND", "to": to, "quantity": 1})
        started = time.monotonic()
        receipt = node.submit_and_wait(raw)
        times.append(time.monotonic() - started)
        assert receipt.ok, receipt
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--commits", type=int, default=40)
    parser.add_argument("--port", type=int, default=26990)
    parser.add_argument("--connections-per-client", type=int, default=None,
                        help="the node's ApiLimits.connections_per_client (default: its own)")
    args = parser.parse_args()

    data = Path(tempfile.mkdtemp(prefix="tally-abuse-"))
    suite = get_suite("intl")
    validator = generate("validator-0", "intl")
    issuer = generate("issuer", "intl")
    other = generate("other", "intl")
    genesis = make_genesis(CHAIN, suite, [(validator.name, validator.key)],
                           {issuer.address: ["issuer"]}, 1_700_000_000_000)
    node = Node(data / "node", genesis, validator).start()
    first = txmod.sign(issuer.key, chain=CHAIN, nonce=0, expiry=10_000, kind="asset.issue",
                       payload={"asset": "BOND", "class": "security", "name": "Bench bond",
                                "quantity": 10**12})
    assert node.submit_and_wait(first).ok
    limits = ApiLimits() if args.connections_per_client is None else ApiLimits(
        connections_per_client=args.connections_per_client)
    server = make_server(node, host="127.0.0.1", port=args.port, log_level="critical",
                         limits=limits)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        commit_latencies(node, issuer, other.address, 1, 10)  # warm
        nonce = 11
        idle_rss = rss()
        idle = commit_latencies(node, issuer, other.address, nonce, args.commits)
        nonce += args.commits
        idle_rss = max(idle_rss, rss())

        results: multiprocessing.Queue = multiprocessing.get_context("spawn").Queue()
        seconds = max(10.0, statistics.median(idle) * args.commits * 3 + 5)
        load = multiprocessing.get_context("spawn").Process(
            target=_hostile_process, args=(args.port, args.rate, seconds, results))
        load.start()
        time.sleep(3)  # the load is at full rate
        peak = [rss()]
        sampling = True

        def sample() -> None:
            while sampling:
                peak.append(rss())
                time.sleep(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        hostile = commit_latencies(node, issuer, other.address, nonce, args.commits)
        sampling = False
        sampler.join()
        report = results.get(timeout=seconds + 60)
        load.join(10)
    finally:
        server.should_exit = True
        thread.join(10)
        node.stop()
        shutil.rmtree(data, ignore_errors=True)

    def ms(values: list[float], q: float) -> float:
        return 1000 * sorted(values)[min(len(values) - 1, int(q * len(values)))]

    rate = report["sent"] / report["seconds"]
    print(f"hostile load: {report['sent']} requests in {report['seconds']:.1f} s "
          f"({rate:.0f}/s) from one client; answers {report['statuses']}")
    print(f"commit latency idle:    median {ms(idle, 0.5):.1f} ms, p90 {ms(idle, 0.9):.1f} ms")
    print(f"commit latency hostile: median {ms(hostile, 0.5):.1f} ms, "
          f"p90 {ms(hostile, 0.9):.1f} ms")
    print(f"ratio (median): {statistics.median(hostile) / statistics.median(idle):.2f} "
          "(target: at most 1.20)")
    print(f"memory: idle {idle_rss / MiB:.0f} MiB, peak under load {max(peak) / MiB:.0f} MiB, "
          f"+{(max(peak) - idle_rss) / MiB:.0f} MiB (target: at most +100 MB)")


if __name__ == "__main__":
    main()
