"""Helpers to find, configure, run and talk to CometBFT v0.38 nodes.

Everything here is what a `tally net init/up/down/status/logs` command needs, as plain
functions and small classes, so the CLI (and the tests, and the benchmarks) stay thin.
One module per concern:

* :mod:`.binary`: `find_cometbft` locates the pinned binary (TALLY_COMETBFT, then
  $(go env GOPATH)/bin, then PATH); `cometbft_version`.
* :mod:`.config`: `init_node` runs ``cometbft init`` into a home and reads its keys;
  `update_config` edits config.toml in place.
* :mod:`.process`: `ManagedProcess` / `CometProcess` run a process with its log in a
  file and a pid file, attached (dies with us) or detached (survives us; found again
  through the pid file); `wait_for_listen`.
* :mod:`.localnet`: `make_localnet` writes node homes (keys, one shared genesis, a
  config.toml tuned for a localhost network) and ``localnet.json`` for
  `load_localnet`; `Localnet` starts/stops app + node pairs.
* :mod:`.rpc`: `CometRPC` / `AsyncCometRPC` speak CometBFT's JSON-RPC;
  `wait_for_height` polls.

The names below are re-exported so ``from tally.net.cometbft import CometRPC`` keeps
working; code inside the tree imports from the module that defines a name.
"""

from __future__ import annotations

from .binary import PINNED_VERSION, CometBFTNotFound, cometbft_version, find_cometbft
from .config import NodeKeys, init_node, read_node_keys, update_config
from .localnet import (
    LOCALHOST,
    MANIFEST,
    AppCommand,
    Localnet,
    NodeSpec,
    free_port_block,
    load_localnet,
    localnet_config,
    make_localnet,
    port_is_free,
    read_genesis,
)
from .process import CometProcess, ManagedProcess, wait_for_listen
from .rpc import AsyncCometRPC, CometRPC, RPCError, tx_call, wait_for_height, wait_for_rpc

__all__ = [
    "LOCALHOST",
    "MANIFEST",
    "PINNED_VERSION",
    "AppCommand",
    "AsyncCometRPC",
    "CometBFTNotFound",
    "CometProcess",
    "CometRPC",
    "Localnet",
    "ManagedProcess",
    "NodeKeys",
    "NodeSpec",
    "RPCError",
    "cometbft_version",
    "find_cometbft",
    "free_port_block",
    "init_node",
    "load_localnet",
    "localnet_config",
    "make_localnet",
    "port_is_free",
    "read_genesis",
    "read_node_keys",
    "tx_call",
    "update_config",
    "wait_for_height",
    "wait_for_listen",
    "wait_for_rpc",
]
