"""A Tally consortium network on one machine: N validators, each a Tally node process
(the ABCI application and its HTTP API) and a CometBFT process.

    base/genesis.json       the Tally genesis (validators' checkpoint keys, consensus
                            keys, powers; roles)
    base/keys/<name>.json   development account keys
    base/node<i>/           CometBFT home (config, data, cometbft.log)
    base/node<i>/app/       the Tally node's home: genesis.json, validator.json, data/
    base/localnet.json      ports and identities (tally.net.cometbft.load_localnet)

Ports of node i, from the base port B: B+10i p2p, +1 CometBFT RPC, +2 ABCI, +3 Tally API.
"""

from __future__ import annotations

import base64
import json
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
from tally.net.cometbft import (
    Localnet,
    NodeSpec,
    free_port_block,
    load_localnet,
    make_localnet,
)

VALIDATOR_POWER = 10


def api_port(spec: NodeSpec) -> int:
    return spec.p2p_port + 3


def api_url(spec: NodeSpec) -> str:
    return f"http://127.0.0.1:{api_port(spec)}"


def tally_node_argv(spec: NodeSpec) -> list[str]:
    """The command line of node ``spec``'s Tally process."""
    return [sys.executable, "-m", "tally", "node", "run", "--home", spec.app_dir,
            "--engine", "cometbft", "--abci", spec.proxy_app, "--rpc", spec.rpc_url,
            "--port", str(api_port(spec))]


def net_init(base_dir: Path, validators: int = 4, *, suite_name: str = "intl",
             chain_id: str = "tally-net", base_port: int | None = None,
             timeout_commit: str = "300ms", log_level: str = "error",
             full_nodes: int = 0) -> list[NodeSpec]:
    """Write keys, both geneses and the configuration of a local network.

    ``full_nodes`` more nodes follow the chain without voting; each has a checkpoint key
    ready, so governance can promote it to validator later.
    """
    base = Path(base_dir)
    if (base / "localnet.json").exists():
        raise FileExistsError(f"{base} already holds a network")
    suite = get_suite(suite_name)
    if base_port is None:
        base_port = free_port_block(10 * validators)
    specs = make_localnet(base, validators + full_nodes, base_port, chain_id=chain_id,
                          power=VALIDATOR_POWER, vote_extensions_enable_height=1,
                          timeout_commit=timeout_commit, log_level=log_level)
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
                      {a: tuple(sorted(r)) for a, r in roles.items()})
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


def net_up(base_dir: Path, timeout: float = 60.0) -> Localnet:
    net = Localnet(load_localnet(base_dir), app=tally_node_argv, detached=True)
    net.start()
    wait_for_apis(net.specs, timeout)
    return net


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


def net_down(base_dir: Path) -> None:
    network(base_dir).stop()


def net_status(base_dir: Path) -> list[dict[str, Any]]:
    net = network(base_dir)
    rows = net.status()
    for spec, row in zip(net.specs, rows, strict=True):
        row["api"] = api_url(spec)
        try:
            status = httpx.get(f"{api_url(spec)}/v1/status", timeout=2).json()
            row["tally_height"] = status["height"]
            row["log_size"] = status["log_size"]
            row["state_root"] = status["state_root"][:16]
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
