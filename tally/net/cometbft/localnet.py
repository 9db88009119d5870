"""Local networks: node specs and ports, writing and loading a network, running it.

`make_localnet` writes N node homes with one shared genesis and a config.toml tuned
for a network on one machine (or one node per host), and ``localnet.json`` so a
later process can `load_localnet`; `Localnet` starts and stops each node's ABCI app
and cometbft, and waits for heights through the RPC.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from .config import init_node, update_config
from .process import CometProcess, ManagedProcess, wait_for_listen
from .rpc import CometRPC, RPCError, wait_for_height

LOCALHOST = "127.0.0.1"
MANIFEST = "localnet.json"


@dataclass
class NodeSpec:
    """One node of a network: its home, address, ports and identity.

    ``host`` is the address the other nodes and clients reach this node at: 127.0.0.1
    for a network on one machine, the machine's address when `make_localnet` was given
    hosts. CometBFT's RPC and the ABCI socket stay on the node's own loopback either
    way; only the p2p port and the Tally API face the network.
    """

    index: int
    moniker: str
    home: str
    node_id: str
    validator_address: str
    validator_pubkey: str
    p2p_port: int
    rpc_port: int
    proxy_app: str  # tcp://127.0.0.1:PORT or unix:///path (where the ABCI app listens)
    chain_id: str
    app_dir: str = ""
    host: str = LOCALHOST

    @property
    def rpc_url(self) -> str:
        """CometBFT's RPC, as the node's own Tally process (same machine) reaches it."""
        return f"http://{LOCALHOST}:{self.rpc_port}"

    @property
    def p2p_address(self) -> str:
        return f"{self.node_id}@{self.host}:{self.p2p_port}"

    @property
    def on_loopback(self) -> bool:
        return self.host == LOCALHOST

    @property
    def log_path(self) -> Path:
        return Path(self.home) / "cometbft.log"


def port_is_free(port: int, host: str = LOCALHOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def ephemeral_port_range() -> tuple[int, int]:
    """The ports the kernel hands to outgoing connections (Linux's ``ip_local_port_range``;
    the IANA range 49152-65535 elsewhere)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 49152, 65535


def free_port_block(count: int, *, low: int = 20000, high: int = 40000, step: int = 10) -> int:
    """A base port B with B..B+count-1 all free on 127.0.0.1 (for tests and localnets).

    Randomised so concurrent test runs rarely pick the same block; still check-then-use,
    so a caller that loses the race sees a bind error, not silent sharing. The block stays
    below the kernel's ephemeral range: a port there that is free now may become the
    source port of any outgoing connection (a client's, CometBFT's own dials) before the
    node binds it, which made network tests fail with "address already in use".
    """
    high = min(high, ephemeral_port_range()[0])
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(low, high - count, step)
        if all(port_is_free(base + i) for i in range(count)):
            return base
    raise RuntimeError(f"no block of {count} free ports in {low}..{high}")


def localnet_config(
    spec: NodeSpec,
    peers: Sequence[NodeSpec],
    *,
    timeout_commit: str = "500ms",
    timeout_propose: str = "1s",
    create_empty_blocks: bool = True,
    create_empty_blocks_interval: str = "0s",
    log_level: str = "info",
    mempool_size: int = 50000,
    mempool_recheck: bool = True,
    tx_index: str = "kv",
) -> dict[str, dict[str, Any]]:
    """The config.toml changes for one node (see docs/abci.md for the why).

    A node of a one-machine network listens on 127.0.0.1 only. A node given a host
    listens for peers on every interface and tells them ``host:port``
    (``external_address``), so the network works behind the machine's own address
    choices; its RPC stays on loopback, for its own Tally process and operator.
    """
    p2p_listen = LOCALHOST if spec.on_loopback else "0.0.0.0"
    return {
        "": {
            "moniker": spec.moniker,
            "proxy_app": spec.proxy_app,
            "abci": "socket",
            "log_level": log_level,
        },
        "rpc": {
            "laddr": f"tcp://{LOCALHOST}:{spec.rpc_port}",
            "pprof_laddr": "",
            "max_body_bytes": 10_000_000,
            "timeout_broadcast_tx_commit": "30s",
            "max_request_batch_size": 1000,  # load generators batch broadcast_tx_*
        },
        "p2p": {
            "laddr": f"tcp://{p2p_listen}:{spec.p2p_port}",
            "external_address": "" if spec.on_loopback else f"{spec.host}:{spec.p2p_port}",
            "persistent_peers": ",".join(p.p2p_address for p in peers if p.index != spec.index),
            "addr_book_strict": False,
            "allow_duplicate_ip": True,
            "pex": False,  # all peers are persistent; nothing to discover
            "persistent_peers_max_dial_period": "2s",  # a restarted peer is redialled fast
            "flush_throttle_timeout": "10ms",
            "send_rate": 50_000_000,
            "recv_rate": 50_000_000,
            "max_packet_msg_payload_size": 10240,
        },
        "mempool": {
            "size": mempool_size,
            "cache_size": mempool_size * 2,
            "max_txs_bytes": 1 << 30,
            "recheck": mempool_recheck,
        },
        "consensus": {
            "timeout_propose": timeout_propose,
            "timeout_propose_delta": "200ms",
            "timeout_prevote": "500ms",
            "timeout_prevote_delta": "200ms",
            "timeout_precommit": "500ms",
            "timeout_precommit_delta": "200ms",
            "timeout_commit": timeout_commit,
            "create_empty_blocks": create_empty_blocks,
            "create_empty_blocks_interval": create_empty_blocks_interval,
            "peer_gossip_sleep_duration": "20ms",
        },
        "tx_index": {"indexer": tx_index},
        "instrumentation": {"prometheus": False},
    }


def make_localnet(
    base_dir: str | os.PathLike[str],
    n_validators: int,
    base_port: int,
    *,
    chain_id: str = "tally-localnet",
    power: int = 10,
    vote_extensions_enable_height: int = 0,
    abci_transport: str = "tcp",
    binary: str | os.PathLike[str] | None = None,
    hosts: Sequence[str] | None = None,
    **config: Any,
) -> list[NodeSpec]:
    """Create `n_validators` node homes under `base_dir`, all in one network.

    Ports start at base_port (+0 p2p, +1 RPC, +2 ABCI app if tcp, +3 the Tally API):
    on one machine node i uses base_port+10*i; with ``hosts`` (node i runs on
    ``hosts[i]``) each node uses base_port itself unless an earlier node shares its
    host, in which case it takes the next block of 10.  Genesis gives every validator
    `power`; `vote_extensions_enable_height` > 0 turns on vote extensions from that
    height.  Extra keyword arguments go to `localnet_config`.  Writes
    ``base_dir/localnet.json`` for `load_localnet`, with paths relative to it, so the
    directory (or one node's part of it) can be copied to where the node runs.
    """
    if hosts is not None and len(hosts) != n_validators:
        raise ValueError(f"{len(hosts)} hosts given for {n_validators} nodes")
    base = Path(base_dir).resolve()
    base.mkdir(parents=True, exist_ok=True)
    specs: list[NodeSpec] = []
    placed: dict[str, int] = {}
    for i in range(n_validators):
        home = base / f"node{i}"
        moniker = f"node{i}"
        keys = init_node(home, moniker, binary=binary)
        app_dir = home / "app"
        app_dir.mkdir(exist_ok=True)
        host = hosts[i] if hosts is not None else LOCALHOST
        slot = i if hosts is None else placed.get(host, 0)
        placed[host] = slot + 1
        port = base_port + 10 * slot
        if abci_transport == "unix":
            sock = app_dir / "abci.sock"
            if len(str(sock)) > 100:  # sun_path holds 108 bytes
                raise ValueError(f"unix socket path too long for the kernel: {sock}")
            proxy_app = f"unix://{sock}"
        elif abci_transport == "tcp":
            proxy_app = f"tcp://{LOCALHOST}:{port + 2}"
        else:
            raise ValueError("abci_transport must be 'tcp' or 'unix'")
        specs.append(
            NodeSpec(
                index=i,
                moniker=moniker,
                home=str(home),
                node_id=keys.node_id,
                validator_address=keys.validator_address,
                validator_pubkey=keys.validator_pubkey,
                p2p_port=port,
                rpc_port=port + 1,
                proxy_app=proxy_app,
                chain_id=chain_id,
                app_dir=str(app_dir),
                host=host,
            )
        )
    genesis = json.loads((Path(specs[0].home) / "config" / "genesis.json").read_text())
    genesis["chain_id"] = chain_id
    genesis["initial_height"] = "1"
    genesis["consensus_params"]["abci"]["vote_extensions_enable_height"] = str(
        vote_extensions_enable_height
    )
    genesis["validators"] = [
        {
            "address": s.validator_address,
            "pub_key": {"type": "tendermint/PubKeyEd25519", "value": s.validator_pubkey},
            "power": str(power),
            "name": s.moniker,
        }
        for s in specs
    ]
    genesis["app_hash"] = ""
    text = json.dumps(genesis, indent=2)
    for s in specs:
        (Path(s.home) / "config" / "genesis.json").write_text(text)
        update_config(s.home, localnet_config(s, specs, **config))
    manifest = [
        {**asdict(s), "home": os.path.relpath(s.home, base),
         "app_dir": os.path.relpath(s.app_dir, base)}
        for s in specs
    ]
    (base / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return specs


def load_localnet(base_dir: str | os.PathLike[str]) -> list[NodeSpec]:
    """The specs `make_localnet` wrote to ``base_dir/localnet.json``.

    Paths in the manifest are relative to ``base_dir`` (older manifests: absolute),
    so a network directory copied elsewhere still finds its homes.
    """
    base = Path(base_dir).resolve()
    specs = []
    for d in json.loads((base / MANIFEST).read_text()):
        d["home"] = str(base / d["home"])
        if d.get("app_dir"):
            d["app_dir"] = str(base / d["app_dir"])
        specs.append(NodeSpec(**d))
    return specs


def read_genesis(spec: NodeSpec) -> dict[str, Any]:
    return json.loads((Path(spec.home) / "config" / "genesis.json").read_text())


AppCommand = Callable[[NodeSpec], Sequence[str]]


class Localnet:
    """The processes of a local network: per node, an ABCI app process and cometbft.

    `app` builds each node's app command line (`tally.net.local.tally_node_argv` for a
    Tally network, ``kvstore_argv`` of bench/kvstore_app.py for the example kvstore);
    pass ``app=None`` with ``builtin_app="kvstore"`` to run CometBFT's in-process Go app.
    """

    def __init__(
        self,
        specs: Sequence[NodeSpec],
        *,
        app: AppCommand | None,
        builtin_app: str | None = None,
        binary: str | os.PathLike[str] | None = None,
        detached: bool = False,
    ) -> None:
        self.specs = list(specs)
        self.detached = detached
        self.apps: list[ManagedProcess | None] = []
        self.nodes: list[ManagedProcess] = []
        for s in self.specs:
            if app is not None:
                self.apps.append(
                    ManagedProcess(
                        app(s),
                        log_path=Path(s.home) / "app.log",
                        pid_path=Path(s.home) / "app.pid",
                        name=f"app[{s.moniker}]",
                    )
                )
            else:
                self.apps.append(None)
            self.nodes.append(CometProcess(s.home, binary=binary, proxy_app=builtin_app))

    @classmethod
    def attach(cls, base_dir: str | os.PathLike[str], **kw: Any) -> Localnet:
        """The net in `base_dir` (from localnet.json), re-attached to processes that
        another Python process started detached (found through their pid files)."""
        net = cls(load_localnet(base_dir), detached=True, **kw)
        for i, s in enumerate(net.specs):
            node = ManagedProcess.from_pidfile(Path(s.home) / "cometbft.pid")
            if node is not None and node.running:
                net.nodes[i] = node
            app = ManagedProcess.from_pidfile(Path(s.home) / "app.pid")
            if app is not None and app.running:
                net.apps[i] = app
        return net

    def status(self) -> list[dict[str, Any]]:
        """Per node: processes running, latest height (None if the RPC does not answer)."""
        out = []
        for i, s in enumerate(self.specs):
            height = None
            # The RPC listens on loopback: only a node running here answers for itself.
            if s.on_loopback or self.nodes[i].running:
                with contextlib.suppress(httpx.HTTPError, RPCError), self.rpc(i, timeout=2
                                                                              ) as rpc:
                    height = rpc.latest_height()
            app = self.apps[i]
            out.append(
                {
                    "node": s.moniker,
                    "rpc": s.rpc_url,
                    "cometbft": self.nodes[i].running,
                    "cometbft_pid": self.nodes[i].pid,
                    "app": app.running if app else None,
                    "app_pid": app.pid if app else None,
                    "height": height,
                }
            )
        return out

    def rpc(self, i: int, timeout: float = 10.0) -> CometRPC:
        return CometRPC(self.specs[i].rpc_url, timeout=timeout)

    def start(self, indices: Iterable[int] | None = None) -> None:
        """Start app then cometbft for the given nodes (default all)."""
        idx = list(range(len(self.specs)) if indices is None else indices)
        for i in idx:
            a = self.apps[i]
            if a is not None and not a.running:
                a.start(detached=self.detached)
        for i in idx:
            a = self.apps[i]
            if a is not None:
                try:
                    wait_for_listen(self.specs[i].proxy_app)
                except TimeoutError:
                    raise RuntimeError(f"app of node {i} did not listen:\n{a.tail()}") from None
        for i in idx:
            if not self.nodes[i].running:
                self.nodes[i].start(detached=self.detached)

    def stop(self, indices: Iterable[int] | None = None, *, kill: bool = False) -> None:
        """Stop cometbft first (it expects the app to outlive it), then the app."""
        idx = list(range(len(self.specs)) if indices is None else indices)
        for i in idx:
            self.nodes[i].kill() if kill else self.nodes[i].stop()
        for i in idx:
            a = self.apps[i]
            if a is not None:
                a.kill() if kill else a.stop()

    def wait_for_height(
        self, height: int, *, nodes: Iterable[int] | None = None, timeout: float = 60.0
    ) -> None:
        idx = list(range(len(self.specs)) if nodes is None else nodes)
        deadline = time.monotonic() + timeout
        for i in idx:
            with self.rpc(i) as rpc:
                try:
                    wait_for_height(rpc, height, timeout=max(0.1, deadline - time.monotonic()))
                except TimeoutError as e:
                    raise TimeoutError(f"node {i}: {e}\n{self.nodes[i].tail()}") from None

    def __enter__(self) -> Localnet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
