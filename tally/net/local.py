"""A Tally consortium network on one machine: N validators, each a Tally node process
(the ABCI application and its HTTP API) and a CometBFT process.

    base/genesis.json       the Tally genesis (validators' checkpoint keys, consensus
                            keys, powers; roles)
    base/keys/<name>.json   development account keys
    base/node<i>/           CometBFT home (config, data, cometbft.log)
    base/node<i>/app/       the Tally node's home: genesis.json, validator.json, data/
    base/localnet.json      ports and identities (tally.net.cometbft.load_localnet)

Ports of node i, from the base port B: B+10i p2p, +1 CometBFT RPC, +2 ABCI, +3 Tally API.

Given hosts (``net_init(hosts=[...])``, one per node), the same directory describes a
network across machines: every node uses B..B+3 on its own host (the next block of 10
when a host runs more than one node), listens for peers and API clients on all
interfaces, and `net_up`/`net_down` take the nodes that run on this machine.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tally import keys
from tally.crypto import get_suite
from tally.genesis import Genesis, Validator
from tally.home import DEV_ACCOUNTS
from tally.net.cometbft.localnet import (
    Localnet,
    NodeSpec,
    free_port_block,
    load_localnet,
    make_localnet,
)
from tally.protocol.versions import LATEST_VERSION

VALIDATOR_POWER = 10
DEFAULT_BASE_PORT = 26656  # CometBFT's own p2p port: on hosts, nodes use 26656..26659
_HOST = re.compile(r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?")


def check_hosts(hosts: list[str], nodes: int) -> None:
    """Refuse a host list that cannot describe ``nodes`` nodes, before anything is written.

    A host is a DNS name or an IPv4 address, without a port (ports come from the base
    port). IPv6 literals are not accepted: CometBFT's peer strings would need brackets
    that its address book does not round-trip in every version.
    """
    if len(hosts) != nodes:
        raise ValueError(f"{len(hosts)} hosts given for {nodes} nodes: give one per node")
    for host in hosts:
        if not _HOST.fullmatch(host):
            raise ValueError(f"host {host!r}: give a DNS name or IPv4 address, without a port")
        if host in ("127.0.0.1", "localhost", "0.0.0.0"):
            raise ValueError(f"host {host!r}: other machines cannot reach it; leave out "
                             "--hosts for a network on this machine")


def api_port(spec: NodeSpec) -> int:
    return spec.p2p_port + 3


def api_url(spec: NodeSpec) -> str:
    return f"http://{spec.host}:{api_port(spec)}"


def tally_node_argv(spec: NodeSpec) -> list[str]:
    """The command line of node ``spec``'s Tally process."""
    listen = [] if spec.on_loopback else ["--host", "0.0.0.0"]
    return [sys.executable, "-m", "tally", "node", "run", "--home", spec.app_dir,
            "--engine", "cometbft", "--abci", spec.proxy_app, "--rpc", spec.rpc_url,
            *listen, "--port", str(api_port(spec))]


TIMEOUT_PROPOSE_ONE_MACHINE = "400ms"
TIMEOUT_PROPOSE_ACROSS_MACHINES = "1s"


def default_timeout_propose(hosts: list[str] | None) -> str:
    """How long validators wait for a proposal before voting to skip its proposer.

    Every height whose proposer is down costs this much, so it bounds the throughput a
    network keeps with a validator stopped; too short, and a proposer that is merely slow
    (applying the last block, or sending a big one over a WAN) loses its turn. On one
    machine a proposal arrives within tens of milliseconds; across institutions' links,
    allow more. Decision 0015 has the measurements.
    """
    return TIMEOUT_PROPOSE_ONE_MACHINE if hosts is None else TIMEOUT_PROPOSE_ACROSS_MACHINES


def net_init(base_dir: Path, validators: int = 4, *, suite_name: str = "intl",
             chain_id: str = "tally-net", base_port: int | None = None,
             timeout_commit: str = "300ms", timeout_propose: str | None = None,
             log_level: str = "error", full_nodes: int = 0,
             hosts: list[str] | None = None) -> list[NodeSpec]:
    """Write keys, both geneses and the configuration of a network.

    ``full_nodes`` more nodes follow the chain without voting; each has a checkpoint key
    ready, so governance can promote it to validator later. ``hosts`` (one address per
    node, validators first) places the nodes on other machines; without it, every node
    runs here on 127.0.0.1. ``timeout_propose`` defaults by placement
    (`default_timeout_propose`, decision 0015).
    """
    base = Path(base_dir)
    if (base / "localnet.json").exists():
        raise FileExistsError(f"{base} already holds a network")
    suite = get_suite(suite_name)
    if hosts is not None:
        check_hosts(hosts, validators + full_nodes)
        base_port = DEFAULT_BASE_PORT if base_port is None else base_port
    elif base_port is None:
        base_port = free_port_block(10 * validators)
    specs = make_localnet(base, validators + full_nodes, base_port, chain_id=chain_id,
                          power=VALIDATOR_POWER, vote_extensions_enable_height=1,
                          timeout_commit=timeout_commit,
                          timeout_propose=timeout_propose or default_timeout_propose(hosts),
                          log_level=log_level, hosts=hosts)
    if full_nodes:
        _drop_genesis_validators(specs, keep=validators)
    roles: dict[str, list[str]] = {}
    for name, account_roles in DEV_ACCOUNTS.items():
        account = keys.generate(name, suite_name)
        keys.save(base / "keys" / f"{name}.json", account)
        if account_roles:
            roles[account.address] = account_roles
    members = []
    for spec in specs:
        validator = keys.generate(spec.moniker, suite_name)
        keys.save(Path(spec.app_dir) / "validator.json", validator)
        if spec.index < validators:
            members.append(Validator(spec.moniker, validator.public_key, VALIDATOR_POWER,
                                     base64.b64decode(spec.validator_pubkey)))
    genesis = Genesis(chain_id, suite.name, time.time_ns() // 1_000_000, tuple(members),
                      {a: tuple(sorted(r)) for a, r in roles.items()},
                      protocol_version=LATEST_VERSION)
    genesis.write(base / "genesis.json")
    for spec in specs:
        shutil.copy(base / "genesis.json", Path(spec.app_dir) / "genesis.json")
    return specs


def _drop_genesis_validators(specs: list[NodeSpec], keep: int) -> None:
    """Make only the first ``keep`` nodes validators in every CometBFT genesis."""
    for spec in specs:
        path = Path(spec.home) / "config" / "genesis.json"
        doc = json.loads(path.read_text())
        doc["validators"] = doc["validators"][:keep]
        path.write_text(json.dumps(doc, indent=2))


def consensus_key(spec: NodeSpec) -> bytes:
    """The Ed25519 key CometBFT votes with on node ``spec``."""
    return base64.b64decode(spec.validator_pubkey)


def network(base_dir: Path) -> Localnet:
    """The network in ``base_dir``, attached to whatever of it is running."""
    return Localnet.attach(base_dir, app=tally_node_argv)


def net_up(base_dir: Path, timeout: float = 60.0, nodes: list[int] | None = None
           ) -> Localnet:
    """Start the given nodes (default: all), detached, and wait until their APIs serve.

    On a network across hosts, each machine starts its own nodes; a node's API serves
    height 1 only once enough validators are up for a first block, so the wait covers
    the time the operators of the other hosts take: when only some nodes start here,
    the wait ends once their APIs answer, at whatever height.
    """
    net = Localnet(load_localnet(base_dir), app=tally_node_argv, detached=True)
    chosen = check_nodes(net.specs, nodes)
    net.start(chosen)
    everyone = len(chosen) == len(net.specs)
    wait_for_apis([net.specs[i] for i in chosen], timeout, min_height=1 if everyone else 0)
    return net


def check_nodes(specs: list[NodeSpec], nodes: list[int] | None) -> list[int]:
    """The node indices asked for, all of them if none, refused if one does not exist."""
    if not nodes:
        return list(range(len(specs)))
    unknown = [i for i in nodes if not 0 <= i < len(specs)]
    if unknown:
        raise ValueError(f"no node {unknown[0]}: this network has nodes 0..{len(specs) - 1}")
    return sorted(set(nodes))


def wait_for_apis(specs: list[NodeSpec], timeout: float = 60.0, min_height: int = 1) -> None:
    """Until every node's API answers and has committed ``min_height`` blocks."""
    deadline = time.monotonic() + timeout
    for spec in specs:
        while True:
            try:
                status = httpx.get(f"{api_url(spec)}/v1/status", timeout=2).json()
                if status["height"] >= min_height:
                    break
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{spec.moniker}'s API at {api_url(spec)} is not serving")
            time.sleep(0.2)


def net_down(base_dir: Path, nodes: list[int] | None = None) -> None:
    net = network(base_dir)
    net.stop(check_nodes(net.specs, nodes))


def net_status(base_dir: Path) -> list[dict[str, Any]]:
    net = network(base_dir)
    rows = net.status()
    for spec, row in zip(net.specs, rows, strict=True):
        row["api"] = api_url(spec)
        # A node on another host has no processes here: its API is what says it runs.
        row["here"] = spec.on_loopback or bool(row["cometbft"] or row["app"])
        try:
            status = httpx.get(f"{api_url(spec)}/v1/status", timeout=2).json()
            row["tally_height"] = status["height"]
            row["log_size"] = status["log_size"]
            row["state_root"] = status["state_root"][:16]
            row["diverged"] = status.get("diverged")
        except (httpx.HTTPError, ValueError, KeyError):
            row["tally_height"] = None
    return rows


def net_logs(base_dir: Path, node: int, lines: int = 40) -> str:
    spec = load_localnet(base_dir)[node]
    out = []
    for name in ("app.log", "cometbft.log"):
        path = Path(spec.home) / name
        if path.exists():
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"== {spec.moniker} {name} ==\n" + "\n".join(tail))
    return "\n".join(out)
