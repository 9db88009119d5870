"""Network partitions between validators, cut and healed with Linux network namespaces.

Each of the 4 validators (its CometBFT and its Tally process) runs in a network
namespace of its own, with its own loopback and one veth link to a bridge in a hub
namespace (10.77.0.1-4/24; the hub, where the test observes from, is 10.77.0.254).
Everything is created by the test, named after its pid, and deleted at the end; the
host's interfaces and routes are never touched. Each namespace is a host of its own, so
the network is written the way an operator writes one across machines,
``net_init(hosts=[10.77.0.1, ...])``, and every node uses the same ports: 26656 p2p,
26657 RPC, 26658 ABCI (loopback only), 26659 Tally API. The only change the test makes
to that configuration is opening each node's CometBFT RPC to the namespace network (it
stays on loopback as written), so the observer can read heights.

A link is cut with blackhole routes inside the two nodes' namespaces (each drops what
it would send to the other), and healed by deleting them: TCP connections survive,
packets are simply lost meanwhile, which is what a real network partition looks like
to both sides. The observer in the hub still reaches every node.

The test process talks to the nodes from threads that joined the hub namespace
(``setns(2)`` applies to the calling thread only).

Scenarios: 2|2 (neither side has more than 2/3 of the power: the chain halts, no fork;
healed, it resumes), then 1|3 (the three continue, acknowledged transactions and all;
the isolated node stays behind without diverging; healed, it catches up). Skipped, with
the reason, only where network namespaces cannot be created (no ``ip`` or not
permitted); TALLY_REQUIRE_NETNS=1 makes that a failure instead.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tally import tx as txmod
from tally.home import Home
from tally.net.cometbft.binary import find_cometbft
from tally.net.cometbft.config import update_config
from tally.net.cometbft.localnet import NodeSpec
from tally.net.cometbft.process import ManagedProcess
from tally.net.local import api_url, net_init, tally_node_argv
from tally.sdk import Receipt, TallyClient
from tests.support.net import (
    EXPIRY,
    TxLoad,
    assert_acknowledged_present,
    check_agreement,
    comet_height,
    require_cometbft,
    say,
    tally_height,
    wait_all_heights,
)

require_cometbft()

pytestmark = pytest.mark.slow

PREFIX = f"tly{os.getpid()}"
HUB = f"{PREFIX}h"
SUBNET = "10.77.0"
HUB_ADDR = f"{SUBNET}.254"
RPC = 26657
ASSET = "PRT-1"
SENDERS = ["alice", "bob", "lender"]
CLONE_NEWNET = 0x40000000
T = TypeVar("T")


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check,
                          timeout=30)


def netns_unavailable() -> str | None:
    """Why namespaces cannot be used here (None: they can)."""
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    probe = f"{PREFIX}probe"
    try:
        done = ip("netns", "add", probe, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"`ip netns add` failed: {exc}"
    if done.returncode != 0:
        return f"`ip netns add` is not permitted here: {done.stderr.strip()}"
    ip("netns", "del", probe, check=False)
    return None


def remove_stale_namespaces() -> None:
    """Namespaces left by an earlier run that was killed (its pid is gone)."""
    listing = ip("netns", "list", check=False).stdout
    for line in listing.splitlines():
        m = re.match(r"^(tly(\d+)(?:h|n\d+|probe))\b", line)
        if m and int(m[2]) != os.getpid() and not Path(f"/proc/{m[2]}").exists():
            ip("netns", "del", m[1], check=False)


_why = netns_unavailable()
if _why is not None:  # pragma: no cover - depends on the machine
    if os.environ.get("TALLY_REQUIRE_NETNS"):
        raise RuntimeError(f"TALLY_REQUIRE_NETNS is set but {_why}")
    pytest.skip(f"network namespaces unavailable: {_why}", allow_module_level=True)

_libc = ctypes.CDLL(None, use_errno=True)


def enter_netns(name: str) -> None:
    """Move the calling thread (only it) into network namespace ``name``."""
    fd = os.open(f"/var/run/netns/{name}", os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({name}): {os.strerror(err)}")
    finally:
        os.close(fd)


def node_ns(i: int) -> str:
    return f"{PREFIX}n{i}"


def node_addr(i: int) -> str:
    return f"{SUBNET}.{i + 1}"


@dataclass
class PartitionedNet:
    """4 validators in namespaces, and an observer in the hub namespace."""

    base: Path
    chain_id: str
    specs: list[NodeSpec]
    apps: list[ManagedProcess]
    nodes: list[ManagedProcess]
    observer: ThreadPoolExecutor
    cut: set[tuple[int, int]]

    @property
    def api_urls(self) -> list[str]:
        return [api_url(s) for s in self.specs]

    @property
    def rpc_urls(self) -> list[str]:
        return [f"http://{node_addr(i)}:{RPC}" for i in range(4)]

    def observe(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` in the hub namespace (where 10.77.0.x is reachable)."""
        return self.observer.submit(fn, *args).result()

    def heights(self) -> list[int | None]:
        return self.observe(lambda: [comet_height(u) for u in self.rpc_urls])

    def wait(self, predicate: Callable[[list[int | None]], bool], timeout: float,
             what: str) -> float:
        began = time.monotonic()
        while True:
            hs = self.heights()
            if predicate(hs):
                return time.monotonic() - began
            if time.monotonic() - began > timeout:
                raise TimeoutError(f"{what}: heights {hs} after {timeout:.0f} s\n"
                                   + "\n".join(n.tail(15) for n in self.nodes))
            time.sleep(0.1)

    def partition(self, *groups: list[int]) -> None:
        """Cut every link between nodes of different groups (both directions)."""
        for a, group in enumerate(groups):
            for other in groups[a + 1:]:
                for i in group:
                    for j in other:
                        for x, y in ((i, j), (j, i)):
                            ip("-n", node_ns(x), "route", "add", "blackhole",
                               f"{node_addr(y)}/32")
                            self.cut.add((x, y))

    def heal(self) -> None:
        for x, y in sorted(self.cut):
            ip("-n", node_ns(x), "route", "del", "blackhole", f"{node_addr(y)}/32")
        self.cut.clear()


def build_namespaces() -> None:
    ip("netns", "add", HUB)
    ip("-n", HUB, "link", "set", "lo", "up")
    ip("-n", HUB, "link", "add", "br0", "type", "bridge")
    ip("-n", HUB, "addr", "add", f"{HUB_ADDR}/24", "dev", "br0")
    ip("-n", HUB, "link", "set", "br0", "up")
    for i in range(4):
        ns = node_ns(i)
        ip("netns", "add", ns)
        ip("-n", ns, "link", "set", "lo", "up")
        # Created directly inside the two namespaces: never an interface on the host.
        ip("link", "add", f"tv{i}", "netns", ns, "type", "veth", "peer", "name", f"tp{i}",
           "netns", HUB)
        ip("-n", ns, "addr", "add", f"{node_addr(i)}/24", "dev", f"tv{i}")
        ip("-n", ns, "link", "set", f"tv{i}", "up")
        ip("-n", HUB, "link", "set", f"tp{i}", "master", "br0")
        ip("-n", HUB, "link", "set", f"tp{i}", "up")


def delete_namespaces() -> None:
    for ns in [*(node_ns(i) for i in range(4)), HUB]:
        ip("netns", "del", ns, check=False)


def configure(base: Path) -> list[NodeSpec]:
    """A network across the four namespaces, as `tally net init --hosts` writes it."""
    specs = net_init(base, 4, chain_id="tally-partition",
                     hosts=[node_addr(i) for i in range(4)])
    assert [(s.host, s.p2p_port, s.rpc_port) for s in specs] == [
        (node_addr(i), 26656, RPC) for i in range(4)]
    for s in specs:  # observation only: the hub reads heights from CometBFT's RPC
        update_config(s.home, {"rpc": {"laddr": f"tcp://0.0.0.0:{RPC}"}})
    return specs


@pytest.fixture(scope="module")
def pnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PartitionedNet]:
    base = tmp_path_factory.mktemp("partition") / "net"
    remove_stale_namespaces()
    specs = configure(base)
    cometbft = str(find_cometbft())
    apps, nodes = [], []
    for i, spec in enumerate(specs):
        home = base / f"node{i}"
        apps.append(ManagedProcess(["ip", "netns", "exec", node_ns(i), *tally_node_argv(spec)],
                                   log_path=home / "app.log", name=f"app[node{i}]"))
        nodes.append(ManagedProcess(["ip", "netns", "exec", node_ns(i), cometbft, "start",
                                     "--home", str(home)],
                                    log_path=home / "cometbft.log", name=f"cometbft[node{i}]"))
    observer = ThreadPoolExecutor(max_workers=2, initializer=enter_netns, initargs=(HUB,),
                                  thread_name_prefix="hub")
    net = PartitionedNet(base, "tally-partition", specs, apps, nodes, observer, set())
    try:
        build_namespaces()
        began = time.monotonic()
        for a in apps:
            a.start()

        def apis_up() -> bool:  # the API serves once the ABCI server listens
            return all(tally_height(u) is not None for u in net.api_urls)

        while not net.observe(apis_up):
            assert all(a.running for a in apps), "\n".join(a.tail() for a in apps)
            assert time.monotonic() - began < 60, "Tally processes did not serve"
            time.sleep(0.2)
        for n in nodes:
            n.start()
        net.wait(lambda hs: all((h or 0) >= 2 for h in hs), 90, "first blocks")
        say("namespaced network start", f"{time.monotonic() - began:.1f} s to height 2")
        fund(net)
        yield net
    finally:
        for n in nodes:
            n.stop()
        for a in apps:
            a.stop()
        observer.shutdown(wait=True)
        delete_namespaces()


def fund(net: PartitionedNet) -> None:
    home = Home(net.base)
    issuer = home.key("issuer")
    raws = [txmod.sign(issuer.key, chain=net.chain_id, nonce=0, expiry=EXPIRY,
                       kind="asset.issue", payload={"asset": ASSET, "class": "security",
                                                    "name": "partition asset",
                                                    "quantity": 10**9})]
    for n, name in enumerate(SENDERS):
        raws.append(txmod.sign(issuer.key, chain=net.chain_id, nonce=n + 1, expiry=EXPIRY,
                               kind="custody.transfer",
                               payload={"asset": ASSET, "to": home.key(name).address,
                                        "quantity": 10**6}))

    def send() -> list:
        with TallyClient(net.api_urls[0]) as client:
            return client.submit_batch_and_wait(raws)

    results = net.observe(send)
    assert len(results) == len(raws), results
    assert all(isinstance(r, Receipt) and r.ok for r in results), results


def load_for(net: PartitionedNet, targets: list[int]) -> TxLoad:
    home = Home(net.base)
    return TxLoad(net.api_urls, net.chain_id, [home.key(n) for n in SENDERS],
                  home.key("issuer").address, ASSET, targets,
                  thread_init=lambda: enter_netns(HUB))


def test_host_is_untouched(pnet: PartitionedNet) -> None:
    """The namespaces are ours alone: no interface, address or route on the host."""
    assert pnet.observe(tally_height, pnet.api_urls[0]) is not None  # reachable inside
    host_links = ip("link", "show").stdout
    assert not re.search(r"\b(tp|tv)\d\b|\bbr0\b", host_links), host_links
    assert SUBNET not in ip("addr", "show").stdout + ip("route", "show").stdout


def test_two_two_split_halts_without_fork_and_resumes_when_healed(pnet: PartitionedNet
                                                                  ) -> None:
    """2|2: each side holds half the power, not more than 2/3, so neither commits;
    after healing, the chain resumes and all four agree at every height."""
    before = pnet.heights()
    pnet.partition([0, 1], [2, 3])
    t_cut = time.monotonic()
    try:
        time.sleep(2.0)  # a height already decided may still commit on some nodes
        stuck = pnet.heights()
        time.sleep(6.0)
        assert pnet.heights() == stuck, "a block committed on a side without 2/3 of the power"
        for side in ([0, 1], [2, 3]):
            pnet.observe(check_agreement, pnet.api_urls, pnet.rpc_urls, side)
        # Across the cut too: nobody committed anything the other side does not have.
        pnet.observe(check_agreement, pnet.api_urls, pnet.rpc_urls, [0, 1, 2, 3])
    finally:
        pnet.heal()
    t_heal = time.monotonic()
    top = max(h or 0 for h in stuck)
    resumed = pnet.wait(lambda hs: max(h or 0 for h in hs) > top, 120, "resume after heal")
    together = pnet.wait(lambda hs: min(h or 0 for h in hs) > top + 2, 120, "all four moving")
    agreed = pnet.observe(check_agreement, pnet.api_urls, pnet.rpc_urls, [0, 1, 2, 3])
    say("2|2 partition", f"heights {before} at the cut, stuck at {stuck}; halted "
        f"{t_heal - t_cut + resumed:.1f} s in all ({t_heal - t_cut:.1f} s cut); first block "
        f"{resumed:.1f} s after healing, all four past it {together:.1f} s after; agreement "
        f"at 1..{agreed.hi}")


def test_one_three_split_majority_continues_minority_catches_up(pnet: PartitionedNet) -> None:
    """1|3: the three hold 3/4 of the power and keep committing (acknowledged
    transactions included); node 3 stays behind, diverging in nothing; healed, it
    catches up and every acknowledged transaction is on all four nodes."""
    load = load_for(pnet, [0, 1, 2]).start()
    try:
        while len(load.acked()) < 3:
            time.sleep(0.1)
        pnet.partition([0, 1, 2], [3])
        t_cut = time.monotonic()
        at_cut = pnet.heights()
        cut_top = max(h or 0 for h in at_cut)
        majority = pnet.wait(lambda hs: min(h or 0 for h in hs[:3]) >= cut_top + 10, 90,
                             "10 blocks on the majority side")
        acks_during = len(load.acked())
        isolated = pnet.heights()[3]
        assert isolated is not None and isolated <= cut_top + 1, (at_cut, isolated)
        side = pnet.observe(check_agreement, pnet.api_urls, pnet.rpc_urls, [0, 1, 2])
        minority = pnet.observe(check_agreement, pnet.api_urls, pnet.rpc_urls, [0, 1, 2, 3], 1,
                                tally_height_of(pnet, 3))
        assert minority.hi <= side.hi
    finally:
        pnet.heal()
    t_heal = time.monotonic()
    target = max(h or 0 for h in pnet.heights()[:3])
    caught_up = pnet.wait(lambda hs: (hs[3] or 0) >= target, 120, "node 3 catching up")
    load.stop()
    acks = load.acked()
    pnet.observe(wait_all_heights, pnet.api_urls, pnet.rpc_urls, range(4),
                 max(a.height for a in acks))
    agreed = pnet.observe(check_agreement, pnet.api_urls, pnet.rpc_urls, [0, 1, 2, 3])
    assert assert_acknowledged_present(agreed, acks) == len(acks)
    say("1|3 partition", f"majority made 10 blocks in {majority:.1f} s "
        f"({majority * 100:.0f} ms per block) with {acks_during} acknowledged transactions "
        f"by then; node 3 stayed at {isolated}; {t_heal - t_cut:.1f} s cut; node 3 at the "
        f"majority's height {target} {caught_up:.1f} s after healing; {len(acks)} "
        f"acknowledged transactions on all four, agreement at 1..{agreed.hi}")


def tally_height_of(pnet: PartitionedNet, i: int) -> int:
    h = pnet.observe(tally_height, pnet.api_urls[i])
    assert h is not None
    return h



def tally_cli_in(ns: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``tally ARGS`` run inside namespace ``ns``, as the operator of that host runs it."""
    return subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-m", "tally", *args],
                          capture_output=True, text=True, timeout=180,
                          env=dict(os.environ, COLUMNS="200"))


def test_an_operator_runs_one_node_per_host_with_the_cli(pnet: PartitionedNet) -> None:
    """The multi-host workflow on real separate network stacks: node 3's operator starts
    only node 3 on its host (`tally net up --node 3`), it rejoins the network written by
    `net init --hosts`, `tally net status` from another machine shows every node by its
    API, and `tally net down --node 3` stops exactly that node."""
    pnet.nodes[3].stop()
    pnet.apps[3].stop()
    base = str(pnet.base)
    try:
        up = tally_cli_in(node_ns(3), "net", "up", "--dir", base, "--node", "3")
        assert up.returncode == 0, up.stdout + up.stderr
        target = max(h or 0 for h in pnet.heights()[:3])
        pnet.observe(wait_all_heights, pnet.api_urls, pnet.rpc_urls, [3], target)
        status = tally_cli_in(HUB, "net", "status", "--dir", base)
        assert status.returncode == 0, status.stderr
        rows = {line.split()[1]: line for line in status.stdout.splitlines()
                if re.match(r"^\W*node\d", line)}
        assert sorted(rows) == [f"node{i}" for i in range(4)], status.stdout
        for i in range(4):  # heights read from each node's API across the bridge
            assert re.search(rf"\b{re.escape(api_url(pnet.specs[i]))}\b", rows[f"node{i}"])
            height = int(re.findall(r"\s(\d+)\s", rows[f"node{i}"])[0])
            assert height >= target, rows[f"node{i}"]
        assert "elsewhere" in rows["node0"] and "up" in rows["node3"], status.stdout
        refused = tally_cli_in(node_ns(3), "net", "down", "--dir", base, "--node", "9")
        assert refused.returncode == 2 and "no node 9" in refused.stderr, refused.stderr
    finally:
        down = tally_cli_in(node_ns(3), "net", "down", "--dir", base, "--node", "3")
    assert down.returncode == 0, down.stderr
    assert pnet.observe(tally_height, pnet.api_urls[3]) is None  # node 3 is gone
    assert all(h is not None for h in pnet.heights()[:3])  # the others were not touched
    say("one node per host", f"node 3 restarted with `tally net up --node 3` in its own "
        f"namespace and caught up to height {target}; `net status` from the hub read all "
        "four APIs")
