"""Helpers to find, configure, run and talk to CometBFT v0.38 nodes.

Everything here is what a `tally net init/up/down/status/logs` command needs, as plain
functions and small classes, so the CLI (and the tests, and the benchmarks) stay thin:

* `find_cometbft` locates the pinned binary (TALLY_COMETBFT, then $(go env GOPATH)/bin,
  then PATH).
* `init_node` and `make_localnet` write node homes: keys, one shared genesis, and a
  config.toml tuned for a localhost network (distinct ports, fast timeouts, large mempool).
  `make_localnet` also writes ``localnet.json`` so a later process can `load_localnet`.
* `ManagedProcess` / `CometProcess` run a process with its log in a file and a pid file,
  attached (dies with us) or detached (survives us; found again through the pid file).
* `Localnet` starts/stops app + node pairs; `CometRPC` / `AsyncCometRPC` speak
  CometBFT's JSON-RPC; `wait_for_height` polls.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any

import httpx

PINNED_VERSION = "0.38.26"
LOCALHOST = "127.0.0.1"
MANIFEST = "localnet.json"


class CometBFTNotFound(FileNotFoundError):
    """No usable cometbft binary; run scripts/install_cometbft.sh."""


# --- the binary ----------------------------------------------------------------------


def _go_binary() -> str | None:
    return shutil.which("go") or (
        "/usr/local/go/bin/go" if os.access("/usr/local/go/bin/go", os.X_OK) else None
    )


def find_cometbft(binary: str | os.PathLike[str] | None = None) -> Path:
    """Path of the cometbft binary: explicit, $TALLY_COMETBFT, $(go env GOPATH)/bin, PATH."""
    candidates: list[str] = []
    if binary:
        candidates.append(str(binary))
    if os.environ.get("TALLY_COMETBFT"):
        candidates.append(os.environ["TALLY_COMETBFT"])
    go = _go_binary()
    if go:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            gopath = subprocess.run(
                [go, "env", "GOPATH"], capture_output=True, text=True, timeout=10
            ).stdout.strip()
            if gopath:
                candidates.append(str(Path(gopath.split(os.pathsep)[0]) / "bin" / "cometbft"))
    found = shutil.which("cometbft")
    if found:
        candidates.append(found)
    for c in candidates:
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return Path(c)
    raise CometBFTNotFound(
        "cometbft not found (looked at TALLY_COMETBFT, $(go env GOPATH)/bin, PATH); "
        "install it with scripts/install_cometbft.sh"
    )


def cometbft_version(binary: str | os.PathLike[str] | None = None) -> str:
    out = subprocess.run(
        [str(find_cometbft(binary)), "version"], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


# --- config.toml editing -------------------------------------------------------------


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} to TOML")


_SECTION = re.compile(r"^\s*\[([\w.\-]+)\]\s*$")
_KEYLINE = re.compile(r"^(\s*)([\w.\-]+)(\s*=\s*)(.*)$")


def update_config(home: str | os.PathLike[str], changes: dict[str, dict[str, Any]]) -> None:
    """Set keys in ``home/config/config.toml``: {"" or "section": {key: value}}.

    Edits lines in place, keeping CometBFT's comments, and refuses unknown keys so a typo
    (or a key renamed between CometBFT versions) fails loudly instead of being ignored.
    """
    path = Path(home) / "config" / "config.toml"
    lines = path.read_text().splitlines(keepends=True)
    pending = {(sec, k): v for sec, kv in changes.items() for k, v in kv.items()}
    section = ""
    for i, line in enumerate(lines):
        m = _SECTION.match(line)
        if m:
            section = m[1]
            continue
        if line.lstrip().startswith("#"):
            continue
        m = _KEYLINE.match(line)
        if m and (section, m[2]) in pending:
            lines[i] = f"{m[1]}{m[2]}{m[3]}{_toml_value(pending.pop((section, m[2])))}\n"
    if pending:
        raise KeyError(f"keys not in {path}: {sorted(pending)}")
    path.write_text("".join(lines))


# --- keys and homes ------------------------------------------------------------------


@dataclass
class NodeKeys:
    """Identity of an initialised home: p2p node id and validator key."""

    node_id: str
    validator_address: str  # upper-case hex, as CometBFT prints it
    validator_pubkey: str  # base64 Ed25519


def read_node_keys(home: str | os.PathLike[str]) -> NodeKeys:
    home = Path(home)
    nk = json.loads((home / "config" / "node_key.json").read_text())
    node_priv = base64.b64decode(nk["priv_key"]["value"])
    node_id = sha256(node_priv[32:]).digest()[:20].hex()  # ed25519: seed || pubkey
    pv = json.loads((home / "config" / "priv_validator_key.json").read_text())
    return NodeKeys(node_id, pv["address"], pv["pub_key"]["value"])


def init_node(
    home: str | os.PathLike[str], moniker: str, *, binary: str | os.PathLike[str] | None = None
) -> NodeKeys:
    """`cometbft init` into `home` (keys, default config, single-validator genesis)."""
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [str(find_cometbft(binary)), "init", "--home", str(home)],
        check=True,
        capture_output=True,
        text=True,
    )
    update_config(home, {"": {"moniker": moniker}})
    return read_node_keys(home)


# --- local networks ------------------------------------------------------------------


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


def free_port_block(count: int, *, low: int = 20000, high: int = 40000, step: int = 10) -> int:
    """A base port B with B..B+count-1 all free on 127.0.0.1 (for tests and localnets).

    Randomised so concurrent test runs rarely pick the same block; still check-then-use,
    so a caller that loses the race sees a bind error, not silent sharing.
    """
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


# --- processes -----------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1
_prctl: Any = None
with contextlib.suppress(Exception):  # resolved here: the child must not dlopen after fork
    _prctl = ctypes.CDLL(None, use_errno=True).prctl


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) still answers kill(0).
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


class ManagedProcess:
    """A child process with its output in `log_path` and its pid in `pid_path`.

    Attached (default): the child gets SIGTERM if this process dies (Linux
    PR_SET_PDEATHSIG), so a crashed test run leaves nothing behind.  Note this fires
    when the *thread* that started it exits: start attached processes from a thread
    that outlives them.  Detached: a new session, no death signal; `from_pidfile`
    finds it again from another process (what `tally net up/down` needs).
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        log_path: str | os.PathLike[str],
        pid_path: str | os.PathLike[str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        env: dict[str, str] | None = None,
        name: str = "",
    ) -> None:
        self.argv = [str(a) for a in argv]
        self.log_path = Path(log_path)
        self.pid_path = Path(pid_path) if pid_path else None
        self.cwd = cwd
        self.env = env
        self.name = name or Path(self.argv[0]).name
        self._popen: subprocess.Popen[bytes] | None = None
        self._pid: int | None = None

    # identity -------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else self._pid

    @property
    def running(self) -> bool:
        if self._popen is not None:
            return self._popen.poll() is None
        return self._pid is not None and _pid_alive(self._pid) and self._is_ours(self._pid)

    @property
    def returncode(self) -> int | None:
        return self._popen.poll() if self._popen else None

    def _is_ours(self, pid: int) -> bool:
        """Guard against pid reuse: the process must still run our program."""
        cmd = _cmdline(pid)
        return bool(cmd) and Path(cmd[0]).name == Path(self.argv[0]).name

    @classmethod
    def from_pidfile(cls, pid_path: str | os.PathLike[str]) -> ManagedProcess | None:
        """Re-attach to a process started (detached) by another Python process."""
        try:
            info = json.loads(Path(pid_path).read_text())
        except (OSError, ValueError):
            return None
        proc = cls(info["argv"], log_path=info["log"], pid_path=pid_path, name=info.get("name", ""))
        proc._pid = int(info["pid"])
        return proc

    # lifecycle ------------------------------------------------------------------------

    def start(self, *, detached: bool = False) -> ManagedProcess:
        if self.running:
            raise RuntimeError(f"{self.name} already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} start {self.argv}\n".encode())
            log.flush()
            self._popen = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.cwd,
                env=self.env,
                start_new_session=detached,
                preexec_fn=None if detached else _die_with_parent,
            )
        self._pid = self._popen.pid
        if self.pid_path:
            self.pid_path.write_text(
                json.dumps(
                    {
                        "pid": self._pid,
                        "argv": self.argv,
                        "log": str(self.log_path),
                        "name": self.name,
                        "detached": detached,
                    }
                )
            )
        return self

    def signal(self, sig: int) -> None:
        pid = self.pid
        if pid is not None and self.running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for exit; the exit code if we are its parent, else None."""
        if self._popen is not None:
            try:
                return self._popen.wait(timeout)
            except subprocess.TimeoutExpired as e:
                raise TimeoutError(f"{self.name} still running") from e
        deadline = None if timeout is None else time.monotonic() + timeout
        # A process on its way out has already lost its command line (so `running`, which
        # checks it against pid reuse, says no) but not yet its pid: wait for that too.
        while self.running or (self._pid is not None and _pid_alive(self._pid)
                               and not _cmdline(self._pid)):
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} still running")
            time.sleep(0.05)
        return None

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout` seconds; remove the pid file."""
        rc = None
        if self.running:
            self.signal(signal.SIGTERM)
            try:
                rc = self.wait(timeout)
            except TimeoutError:
                self.signal(signal.SIGKILL)
                rc = self.wait(5)
        elif self._popen is not None:
            rc = self._popen.poll()
        if self.pid_path:
            with contextlib.suppress(FileNotFoundError):
                self.pid_path.unlink()
        return rc

    def kill(self) -> int | None:
        """SIGKILL: the crash case (no shutdown hooks run)."""
        self.signal(signal.SIGKILL)
        with contextlib.suppress(TimeoutError):
            return self.wait(5)
        return None

    def restart(self, *, detached: bool = False, timeout: float = 10.0) -> ManagedProcess:
        self.stop(timeout)
        return self.start(detached=detached)

    def tail(self, n: int = 40) -> str:
        """Last `n` lines of the log (for error messages)."""
        try:
            return "".join(self.log_path.read_text(errors="replace").splitlines(True)[-n:])
        except OSError:
            return ""


class CometProcess(ManagedProcess):
    """`cometbft start` for one home; log in home/cometbft.log, pid in home/cometbft.pid."""

    def __init__(
        self,
        home: str | os.PathLike[str],
        *,
        binary: str | os.PathLike[str] | None = None,
        proxy_app: str | None = None,
        extra_args: Iterable[str] = (),
    ) -> None:
        home = Path(home)
        argv = [str(find_cometbft(binary)), "start", "--home", str(home)]
        if proxy_app:
            argv.append(f"--proxy_app={proxy_app}")
        argv.extend(extra_args)
        super().__init__(
            argv,
            log_path=home / "cometbft.log",
            pid_path=home / "cometbft.pid",
            name=f"cometbft[{home.name}]",
        )
        self.home = home


def kvstore_argv(spec: NodeSpec) -> list[str]:
    """Command line of the example Python kvstore app for `spec` (db in its app_dir)."""
    return [
        sys.executable,
        "-m",
        "tally.consensus.abci.kvstore",
        "--address",
        spec.proxy_app,
        "--db",
        str(Path(spec.app_dir) / "kv.sqlite"),
    ]


def wait_for_listen(address: str, timeout: float = 15.0) -> None:
    """Block until an ABCI app accepts connections at `address` (tcp:// or unix://).

    CometBFT retries a refused ABCI connection only every few seconds, so starting it
    after the app is listening saves that wait.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            if address.startswith("unix://"):
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(address[len("unix://") :])
            else:
                host, _, port = address.removeprefix("tcp://").rpartition(":")
                socket.create_connection((host, int(port)), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listening at {address}") from None
            time.sleep(0.05)


AppCommand = Callable[[NodeSpec], Sequence[str]]


class Localnet:
    """The processes of a local network: per node, an ABCI app process and cometbft.

    `app` builds each node's app command line (default: the example kvstore); pass
    ``app=None`` with ``builtin_app="kvstore"`` to run CometBFT's in-process Go app.
    """

    def __init__(
        self,
        specs: Sequence[NodeSpec],
        *,
        app: AppCommand | None = kvstore_argv,
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


# --- RPC -----------------------------------------------------------------------------


class RPCError(RuntimeError):
    """CometBFT answered a JSON-RPC call with an error object."""

    def __init__(self, method: str, error: dict[str, Any]) -> None:
        self.code = error.get("code")
        self.data = error.get("data")
        super().__init__(f"{method}: {error.get('message')} ({self.data})")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _h(height: int | None) -> dict[str, str]:
    return {} if height is None else {"height": str(height)}


class _Methods:
    """CometBFT RPC methods; `call` is sync in CometRPC, a coroutine in AsyncCometRPC.

    Heights go as strings and bytes as base64: CometBFT's JSON decodes int64 from
    strings and []byte from base64.
    """

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        raise NotImplementedError

    def status(self) -> Any:
        return self.call("status")

    def health(self) -> Any:
        return self.call("health")

    def abci_info(self) -> Any:
        return self.call("abci_info")

    def net_info(self) -> Any:
        return self.call("net_info")

    def broadcast_tx_sync(self, tx: bytes) -> Any:
        return self.call("broadcast_tx_sync", {"tx": _b64(tx)})

    def broadcast_tx_async(self, tx: bytes) -> Any:
        return self.call("broadcast_tx_async", {"tx": _b64(tx)})

    def broadcast_tx_commit(self, tx: bytes) -> Any:
        return self.call("broadcast_tx_commit", {"tx": _b64(tx)})

    def block(self, height: int | None = None) -> Any:
        return self.call("block", _h(height))

    def block_results(self, height: int | None = None) -> Any:
        return self.call("block_results", _h(height))

    def commit(self, height: int | None = None) -> Any:
        return self.call("commit", _h(height))

    def validators(self, height: int | None = None, page: int = 1, per_page: int = 100) -> Any:
        return self.call("validators", {**_h(height), "page": str(page), "per_page": str(per_page)})

    def blockchain(self, min_height: int, max_height: int) -> Any:
        """Block metas (header, num_txs) for up to 20 heights, newest first."""
        return self.call("blockchain", {"minHeight": str(min_height), "maxHeight": str(max_height)})

    def num_unconfirmed_txs(self) -> Any:
        return self.call("num_unconfirmed_txs")

    def abci_query(self, path: str, data: bytes, height: int = 0, prove: bool = False) -> Any:
        return self.call(
            "abci_query",
            {"path": path, "data": data.hex(), "height": str(height), "prove": prove},
        )


def _batch_body(start_id: int, calls: Sequence[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    return [
        {"jsonrpc": "2.0", "id": start_id + n, "method": m, "params": p}
        for n, (m, p) in enumerate(calls)
    ]


def _unwrap_batch(
    start_id: int, calls: Sequence[tuple[str, dict[str, Any]]], resp: httpx.Response
) -> list[Any]:
    """Results in call order; an RPCError object in place of each failed call."""
    resp.raise_for_status()
    body = resp.json()
    if isinstance(body, dict):  # the whole batch was refused (e.g. too large)
        raise RPCError("batch", body.get("error") or {"message": str(body)})
    by_id = {int(r["id"]): r for r in body}
    out: list[Any] = []
    for n, (m, _) in enumerate(calls):
        r = by_id.get(start_id + n, {"error": {"message": "no response"}})
        out.append(RPCError(m, r["error"]) if r.get("error") else r["result"])
    return out


def tx_call(method: str, tx: bytes) -> tuple[str, dict[str, Any]]:
    """One broadcast_tx_* call for `call_batch`."""
    return method, {"tx": _b64(tx)}


def _unwrap(method: str, resp: httpx.Response) -> Any:
    body = resp.json()
    if body.get("error"):
        raise RPCError(method, body["error"])
    resp.raise_for_status()
    return body["result"]


class CometRPC(_Methods):
    """Synchronous JSON-RPC client for one node (httpx, keep-alive)."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._client = httpx.Client(timeout=timeout)
        self._id = 0

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        self._id += 1
        resp = self._client.post(
            self.url,
            json={"jsonrpc": "2.0", "id": self._id, "method": method, "params": params or {}},
        )
        return _unwrap(method, resp)

    def call_batch(self, calls: Sequence[tuple[str, dict[str, Any]]]) -> list[Any]:
        """One HTTP request for many calls (up to the node's max_request_batch_size)."""
        start = self._id + 1
        self._id += len(calls)
        resp = self._client.post(self.url, json=_batch_body(start, calls))
        return _unwrap_batch(start, calls, resp)

    def latest_height(self) -> int:
        return int(self.status()["sync_info"]["latest_block_height"])

    def app_hash_at(self, height: int) -> bytes:
        """The app hash FinalizeBlock returned for `height` (state *after* that block).

        Not the header's app_hash: block h's header carries the hash after h-1, and
        so does /status's latest_app_hash.
        """
        return base64.b64decode(self.block_results(height)["app_hash"])

    def latest_app_hash(self, timeout: float = 5.0) -> tuple[int, bytes]:
        """(latest committed height, app hash after it).

        CometBFT saves a block (and reports its height) before it has executed it and
        saved its results, so the results of the latest height can be missing for a
        moment: asked again until they are there.
        """
        h = self.latest_height()
        deadline = time.monotonic() + timeout
        while True:
            try:
                return h, self.app_hash_at(h)
            except RPCError as exc:
                if "could not find results" not in str(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(0.05)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> CometRPC:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncCometRPC(_Methods):
    """asyncio JSON-RPC client (load generators); methods return coroutines."""

    def __init__(self, url: str, timeout: float = 10.0, max_connections: int = 64) -> None:
        self.url = url.rstrip("/")
        self._client = httpx.AsyncClient(
            timeout=timeout, limits=httpx.Limits(max_connections=max_connections)
        )
        self._id = 0

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        self._id += 1
        resp = await self._client.post(
            self.url,
            json={"jsonrpc": "2.0", "id": self._id, "method": method, "params": params or {}},
        )
        return _unwrap(method, resp)

    async def call_batch(self, calls: Sequence[tuple[str, dict[str, Any]]]) -> list[Any]:
        start = self._id + 1
        self._id += len(calls)
        resp = await self._client.post(self.url, json=_batch_body(start, calls))
        return _unwrap_batch(start, calls, resp)

    async def aclose(self) -> None:
        await self._client.aclose()


def wait_for_rpc(rpc: CometRPC, timeout: float = 30.0) -> None:
    """Until the node's RPC answers at all (it starts after the ABCI handshake)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            rpc.status()
            return
        except (httpx.HTTPError, RPCError):
            if time.monotonic() > deadline:
                raise TimeoutError(f"RPC at {rpc.url} not up after {timeout}s") from None
            time.sleep(0.1)


def wait_for_height(rpc: CometRPC, height: int, timeout: float = 30.0, poll: float = 0.1) -> int:
    """Poll until the node's latest committed height is >= `height`; return it."""
    deadline = time.monotonic() + timeout
    last: int | None = None
    while True:
        with contextlib.suppress(httpx.HTTPError, RPCError):
            last = rpc.latest_height()
            if last >= height:
                return last
        if time.monotonic() > deadline:
            raise TimeoutError(f"{rpc.url}: height {last}, wanted {height} within {timeout}s")
        time.sleep(poll)


__all__ = [
    "PINNED_VERSION",
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
    "kvstore_argv",
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
