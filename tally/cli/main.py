"""The ``tally`` command."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from tally import keys as keyfiles
from tally.cli import identity, supervision
from tally.cli.common import CONNECTION, DEFAULT_URL, UrlOpt, console, err, fail, open_client
from tally.cli.common import call as _call
from tally.cli.net_ceremony import register as register_ceremony
from tally.protocol.versions import IDENTITY

app = typer.Typer(help="Tally: a consortium blockchain for custody evidence and Python contracts.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
keys_app = typer.Typer(help="Create and inspect key files.", no_args_is_help=True)
node_app = typer.Typer(help="Run an embedded (solo) node.", no_args_is_help=True)
evidence_app = typer.Typer(help="Export and verify evidence bundles.", no_args_is_help=True)
net_app = typer.Typer(help="A local consortium network: N validators on CometBFT.",
                      no_args_is_help=True)
app.add_typer(net_app, name="net")
app.add_typer(keys_app, name="keys")
app.add_typer(node_app, name="node")
app.add_typer(evidence_app, name="evidence")
witness_app = typer.Typer(help="Witness a chain: cosign its checkpoints (C2SP tlog-witness).",
                          no_args_is_help=True)
app.add_typer(witness_app, name="witness")
for _name, _group in identity.GROUPS:
    app.add_typer(_group, name=_name)
app.add_typer(supervision.supervise_app, name="supervise")



@app.callback()
def connection(
        key: Annotated[Path | None, typer.Option(
            "--key", envvar="TALLY_KEY",
            help="sign every API request with this account key (a node run with --access "
                 "authenticated; docs/access.md); a command's own --key signs its "
                 "transaction")] = None,
        ca_file: Annotated[Path | None, typer.Option(
            "--ca-file", envvar="TALLY_CA_FILE",
            help="verify the node's TLS certificate with this CA file (PEM)")] = None,
) -> None:
    """Tally: a consortium blockchain for custody evidence and Python contracts."""
    CONNECTION.update(key=key, ca_file=ca_file)


DEFAULT_HOME = Path(os.environ.get("TALLY_HOME", ".tally"))
HomeOpt = Annotated[Path, typer.Option("--home", help="node home directory", envvar="TALLY_HOME")]


# --- keys ------------------------------------------------------------------------------

@keys_app.command("new")
def keys_new(name: str, out: Annotated[Path, typer.Option(help="key file to write")],
             suite: Annotated[str, typer.Option(help="intl or gm")] = "intl") -> None:
    """Generate a key and write it to a file readable only by you."""
    if out.exists():
        fail(f"{out} exists; refusing to overwrite a key")
    try:
        named = keyfiles.generate(name, suite)
    except ValueError as exc:
        fail(str(exc))
    keyfiles.save(out, named)
    console.print(f"{named.name}: address {named.address} ({suite}) → {out}")


@keys_app.command("show", epilog="Example: tally keys show --pem alice.json > alice.pub.pem "
                                   "(then: openssl x509 ... -force_pubkey alice.pub.pem; "
                                   "docs/identity.md)")
def keys_show(path: Path,
              pem: Annotated[bool, typer.Option(
                  "--pem", help="print the public key as a PEM SubjectPublicKeyInfo, for a "
                                "member's CA to certify with openssl x509 -force_pubkey")]
              = False) -> None:
    """Print a key file's name, suite, public key and address (never the private key)."""
    try:
        named = keyfiles.load(path)
    except ValueError as exc:
        fail(str(exc))
    if pem:
        from tally.identity.certs import SUITE_KEY_ALGORITHM, public_key_pem

        sys.stdout.write(public_key_pem(SUITE_KEY_ALGORITHM[named.key.suite.name],
                                        named.public_key).decode())
        return
    console.print_json(json.dumps({"name": named.name, "suite": named.key.suite.name,
                                   "public_key": named.public_key.hex(),
                                   "address": named.address}))


# --- init and node ---------------------------------------------------------------------

@app.command()
def init(home: HomeOpt = DEFAULT_HOME,
         suite: Annotated[str, typer.Option(help="crypto suite, fixed for the chain's life")] = "intl",
         chain_id: Annotated[str, typer.Option(help="the chain's name")] = "tally-dev") -> None:
    """Create a single-validator chain with development accounts in HOME."""
    from tally.home import init_home

    try:
        h = init_home(home, suite_name=suite, chain_id=chain_id)
    except (FileExistsError, ValueError) as exc:
        fail(str(exc))
    g = h.genesis()
    console.print(f"Initialised {home}: chain {g.chain_id}, suite {g.suite_name}, "
                  f"genesis {g.hash.hex()}")


@node_app.command("run")
def node_run(home: HomeOpt = DEFAULT_HOME,
             host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
             port: Annotated[int, typer.Option(help="API port")] = 26680,
             engine: Annotated[str, typer.Option(help="solo, or cometbft")] = "solo",
             abci: Annotated[str, typer.Option(help="cometbft: where to serve ABCI")] =
             "tcp://127.0.0.1:26658",
             rpc: Annotated[str, typer.Option(help="cometbft: its RPC URL")] =
             "http://127.0.0.1:26657",
             log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "warning",
             witness: Annotated[list[str] | None, typer.Option(
                 help="URL of a witness to send each checkpoint to (repeatable)")] = None,
             connections_per_client: Annotated[int, typer.Option(
                 help="open API connections one IP address may hold")] = 32,
             query_steps: Annotated[int, typer.Option(
                 help="VM steps one @view query may run")] = 200_000,
             query_rate: Annotated[float, typer.Option(
                 help="@view queries per second one IP address may send")] = 10.0,
             alerts: Annotated[Path | None, typer.Option(
                 help="a supervision rules file (TOML, docs/supervision.md): evaluate it "
                      "on every committed block and serve /v1/alerts")] = None,
             access: Annotated[str, typer.Option(
                 help="open (anyone reads everything: development only) or authenticated "
                      "(signed requests of registered accounts, each seeing what it may; "
                      "docs/access.md)")] = "open",
             tls_cert: Annotated[Path | None, typer.Option(
                 help="serve HTTPS with this certificate (PEM, from the node's member CA)")]
             = None,
             tls_key: Annotated[Path | None, typer.Option(
                 help="the private key of --tls-cert (PEM)")] = None) -> None:
    """Run a node and its HTTP API until interrupted: the embedded solo engine, or the
    ABCI application of a CometBFT process (``--engine cometbft``). The API's limits
    are docs/api.md's "Limits"; the options tune the ones an operator most often needs
    to (a node behind a proxy sees one address for every client)."""
    import logging

    from tally.api.limits import ApiLimits
    from tally.api.server import make_server
    from tally.home import Home
    from tally.node import CometSettings, Node

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    if engine not in ("solo", "cometbft"):
        fail("--engine must be solo or cometbft", 2)
    if access not in ("open", "authenticated"):
        fail("--access must be open or authenticated", 2)
    if (tls_cert is None) != (tls_key is None):
        fail("--tls-cert and --tls-key go together", 2)
    comet = CometSettings(abci, rpc) if engine == "cometbft" else None
    rules = supervision.load_or_fail(alerts) if alerts is not None else None
    h = Home(home)
    try:
        node = Node(h.data_dir, h.genesis(), h.validator(), comet=comet)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        fail(str(exc))
    if access == "authenticated" and node.reader.protocol_version() < IDENTITY:
        fail("--access authenticated needs protocol version 4 (registered accounts sign "
             "requests); this chain is at version "
             f"{node.reader.protocol_version()}: upgrade it first (docs/access.md)", 2)
    node.start()
    feeder = None
    if witness:
        from tally.node.witnessing import WitnessFeeder

        feeder = WitnessFeeder.attach(node, witness)
    alerter = supervision.attach(node, rules, alerts) if rules is not None and alerts else None
    scheme = "https" if tls_cert is not None else "http"
    console.print(f"Node of chain {node.genesis.chain_id} ({engine}) at height "
                  f"{node.reader.height()}, API on {scheme}://{host}:{port} (OpenAPI: /docs), "
                  f"access {access}")
    if access == "open" and host not in ("127.0.0.1", "localhost", "::1"):
        err.print("[yellow]warning:[/] the API is open: anyone who reaches "
                  f"{host}:{port} reads every account and asset (docs/access.md)")
    server = make_server(node, host=host, port=port, log_level=log_level, limits=ApiLimits(
        connections_per_client=connections_per_client, query_steps=query_steps,
        query_rate=query_rate), access=access,
        tls_cert=None if tls_cert is None else str(tls_cert),
        tls_key=None if tls_key is None else str(tls_key), alerter=alerter)
    failure: list[BaseException] = []

    def watch() -> None:
        """A node whose engine died must not keep serving as if it were alive."""
        while not server.should_exit:
            error = node.engine.failure
            if error is not None:
                failure.append(error)
                server.should_exit = True
                return
            time.sleep(0.5)

    threading.Thread(target=watch, daemon=True, name="tally-watch").start()
    try:
        server.run()
    finally:
        if feeder is not None:
            feeder.stop()
        if alerter is not None:
            alerter.stop()
        node.stop()
    if failure:
        fail(f"the node's engine stopped: {failure[0]!r}")


@app.command()
def dev(home: HomeOpt = DEFAULT_HOME, port: int = 26680,
        suite: Annotated[str, typer.Option(help="suite for a new chain")] = "intl") -> None:
    """Development node: initialise HOME if needed, then run it."""
    from tally.home import init_home

    if not (home / "genesis.json").exists():
        init_home(home, suite_name=suite)
    node_run(home=home, port=port)


# --- net -------------------------------------------------------------------------------

NetDir = Annotated[Path, typer.Option("--dir", help="network directory", envvar="TALLY_NET")]
DEFAULT_NET = Path(".tally-net")


@net_app.command("init")
def net_init_cmd(dir: NetDir = DEFAULT_NET,
                 validators: Annotated[int | None, typer.Option(
                     help="number of validators (default: 4, or one per --hosts entry)")] = None,
                 suite: Annotated[str, typer.Option(help="intl or gm")] = "intl",
                 chain_id: Annotated[str, typer.Option(help="the chain's name")] = "tally-net",
                 base_port: Annotated[int | None, typer.Option(
                     help="first port: on this machine node i uses base+10i..base+10i+3 "
                          "(default: a free block); on hosts every node uses base..base+3 "
                          "(default 26656)")] = None,
                 hosts: Annotated[str | None, typer.Option(
                     help="comma-separated addresses, one per validator, for a network "
                          "across machines (each then runs `tally net up --node I`)")] = None,
                 timeout_commit: Annotated[str, typer.Option(
                     help="CometBFT's pause after each block, e.g. 300ms or 1s: longer "
                          "means bigger blocks, more throughput, more latency")] = "300ms",
                 timeout_propose: Annotated[str | None, typer.Option(
                     help="how long validators wait for a proposal before skipping its "
                          "proposer, e.g. 400ms or 2s: what each height of a stopped "
                          "validator costs (default: 400ms on one machine, 1s with "
                          "--hosts)")] = None,
                 ) -> None:
    """Write keys, genesis and configuration for a network of N validators."""
    from tally.net.local import api_url, check_hosts, net_init

    host_list = None if hosts is None else [h.strip() for h in hosts.split(",")]
    if validators is None:
        validators = 4 if host_list is None else len(host_list)
    if validators < 1:
        fail("a network needs at least one validator", 2)
    for option, value in (("--timeout-commit", timeout_commit),
                          ("--timeout-propose", timeout_propose)):
        if value is not None and re.fullmatch(r"[0-9]+(ms|s)", value) is None:
            fail(f"{option} {value!r}: give a duration such as 300ms or 1s", 2)
    if host_list is not None:
        try:
            check_hosts(host_list, validators)
        except ValueError as exc:
            fail(f"--hosts: {exc}", 2)
    try:
        specs = net_init(dir, validators, suite_name=suite, chain_id=chain_id,
                         base_port=base_port, timeout_commit=timeout_commit,
                         timeout_propose=timeout_propose, hosts=host_list)
    except (FileExistsError, ValueError) as exc:
        fail(str(exc))
    for spec in specs:
        console.print(f"{spec.moniker}: API {api_url(spec)}, CometBFT RPC {spec.rpc_url}"
                      + ("" if spec.on_loopback else f" on {spec.host}"))
    if host_list is None:
        console.print(f"Network written to {dir}; start it with `tally net up --dir {dir}`")
    else:
        console.print(
            f"Network written to {dir}. Copy to host i the files localnet.json and "
            f"genesis.json and the folder node<i> (it holds node i's private keys: give "
            f"each host only its own), then run there `tally net up --dir {dir} --node i`.")


NodesOpt = Annotated[list[int] | None, typer.Option(
    "--node", metavar="I", help="only node I (repeatable): the ones that run on this machine")]


@net_app.command("up")
def net_up_cmd(dir: NetDir = DEFAULT_NET, node: NodesOpt = None) -> None:
    """Start the nodes (detached; default all) and wait until they serve."""
    from tally.net.local import net_up

    try:
        net_up(dir, nodes=node)
    except ValueError as exc:
        fail(str(exc), 2)
    except (FileNotFoundError, RuntimeError, TimeoutError) as exc:
        fail(str(exc))
    net_status_cmd(dir)


@net_app.command("down")
def net_down_cmd(dir: NetDir = DEFAULT_NET, node: NodesOpt = None) -> None:
    """Stop the nodes of the network (default all) that run on this machine."""
    from tally.net.local import net_down

    try:
        net_down(dir, nodes=node)
    except ValueError as exc:
        fail(str(exc), 2)
    except FileNotFoundError as exc:
        fail(str(exc))
    console.print("network stopped" if not node else f"node(s) {sorted(set(node))} stopped")


@net_app.command("status")
def net_status_cmd(dir: NetDir = DEFAULT_NET) -> None:
    """Processes, heights and roots of every node."""
    from rich.table import Table

    from tally.net.local import net_status

    try:
        rows = net_status(dir)
    except FileNotFoundError as exc:
        fail(str(exc))
    table = Table("node", "cometbft", "app", "height", "log size", "state root", "API")
    def shown(running: bool | None, here: bool) -> str:
        return ("up" if running else "down") if here else "elsewhere"

    for r in rows:
        height = str(r.get("tally_height"))
        if r.get("diverged"):  # its state is wrong: say so where the operator looks
            height += f" DIVERGED at {r['diverged']['height']}"
        table.add_row(r["node"], shown(r["cometbft"], r["here"]), shown(r["app"], r["here"]),
                      height, str(r.get("log_size", "")), r.get("state_root", ""), r["api"])
    console.print(table)


register_ceremony(net_app)  # keygen, genesis, check-genesis, configure, propose-join


@net_app.command("logs")
def net_logs_cmd(node: int, dir: NetDir = DEFAULT_NET,
                 lines: Annotated[int, typer.Option(help="lines per log")] = 40) -> None:
    """The last lines of node N's Tally and CometBFT logs."""
    from tally.net.local import net_logs

    print(net_logs(dir, node, lines))


# --- demo ------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_api(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            fail(f"the node exited with code {proc.returncode}")
        try:
            if httpx.get(f"{url}/v1/status", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    fail(f"the node did not answer at {url} within {timeout:.0f} s")


@app.command()
def demo(suite: Annotated[str, typer.Option(help="intl or gm")] = "intl",
         engine: Annotated[str, typer.Option(
             help="cometbft: a consortium of four institutions on CometBFT, each with its "
                  "own CA and keys; solo: one embedded node")] = "cometbft",
         validators: Annotated[int, typer.Option(help="validators of the network")] = 4,
         out: Annotated[Path, typer.Option(help="where to write the evidence bundle")] = Path(
             "demo-output")) -> None:
    """Found a consortium of four institutions (or start an embedded node), register
    real-name customers, run the custody scenario, export and verify evidence, admit a
    fifth member and its node by the committee's vote, stop everything."""
    from tally.demo import run_scenario
    from tally.home import Home, init_home
    from tally.sdk import TallyClient

    tmp = Path(tempfile.mkdtemp(prefix="tally-demo-"))
    try:
        if engine == "cometbft" and validators == 4 and _openssl_available():
            from tally.demo_consortium import run_consortium_demo

            console.rule(f"Tally custody demo — a consortium of four institutions on "
                         f"CometBFT, suite {suite}")
            result = run_consortium_demo(tmp, suite, out, console, run_scenario)
        elif engine == "cometbft":
            if validators == 4:
                console.print("[yellow]openssl not found[/] (Debian/Ubuntu: apt-get install "
                              "openssl): the members' CAs need it, so this demo runs a "
                              "development network without members instead.")
            from tally.net.local import api_url, net_down, net_init, net_up

            console.rule(f"Tally custody demo — {validators} validators on CometBFT, "
                         f"suite {suite}")
            specs = net_init(tmp, validators, suite_name=suite, chain_id="tally-demo")
            try:
                net_up(tmp)
                with TallyClient(api_url(specs[0])) as client:
                    result = run_scenario(client, Home(tmp), out, console)
            finally:
                net_down(tmp)
        elif engine == "solo":
            console.rule(f"Tally custody demo — embedded node, suite {suite}")
            init_home(tmp, suite_name=suite, chain_id="tally-demo")
            result = _demo_solo(tmp, out, run_scenario)
        else:
            fail("--engine must be cometbft or solo", 2)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    console.rule("done")
    if not (result.verified and result.tamper_detected):
        fail("the demo's evidence checks did not hold")


def _openssl_available() -> bool:
    return shutil.which("openssl") is not None


def _demo_solo(home: Path, out: Path, run_scenario: Any) -> Any:
    from tally.home import Home
    from tally.sdk import TallyClient

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tally", "node", "run", "--home", str(home), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        _wait_for_api(url, proc)
        with TallyClient(url) as client:
            return run_scenario(client, Home(home), out, console)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


# --- evidence --------------------------------------------------------------------------

@evidence_app.command("export")
def evidence_export(
    event: Annotated[int | None, typer.Option(help="log index of the event")] = None,
    tx: Annotated[str | None, typer.Option(help="transaction id (its first event)")] = None,
    out: Annotated[Path, typer.Option(help="bundle file to write")] = Path("evidence.json"),
    consistency: Annotated[bool, typer.Option(help="add a proof to the latest checkpoint")] = True,
    url: UrlOpt = DEFAULT_URL,
) -> None:
    """Export the evidence bundle of one event from a running node."""
    from tally.sdk import ApiError, NodeUnreachable

    if (event is None) == (tx is None):
        fail("give exactly one of --event or --tx")
    with open_client(url) as client:
        try:
            index = event if event is not None else client.receipt(tx).events[0]  # type: ignore[arg-type]
            bundle = client.evidence(index, consistency=consistency)
        except NodeUnreachable as exc:
            fail(exc.message)
        except (ApiError, IndexError) as exc:
            fail(f"cannot export: {exc}")
    out.write_text(json.dumps(bundle.to_dict(), indent=2))
    console.print(f"Evidence of event {index} written to {out}")


@evidence_app.command("verify")
def evidence_verify(
    bundle: Path,
    genesis_hash: Annotated[str | None, typer.Option(
        help="the chain's genesis hash, obtained out of band (strongly recommended)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the verdict as JSON")] = False,
    witness: Annotated[list[str] | None, typer.Option(
        help="NAME=HEXKEY of a witness whose cosignature counts (repeatable)")] = None,
    witnesses_required: Annotated[int | None, typer.Option(
        help="how many of the --witness keys must have cosigned (default: all)")] = None,
    bound_from_height: Annotated[int | None, typer.Option(
        help="for a chain upgraded to protocol version 3: the upgrade height, published "
             "with its genesis hash; checkpoints from it on must name the genesis")] = None,
) -> None:
    """Verify a bundle offline. Exit 0 if valid; 1 with the reason if it does not prove
    what it claims (or lacks the witness cosignatures asked for); 2 if it is unreadable
    or malformed (reason ``format``)."""
    from tally.evidence.identity import identity_facts
    from tally.evidence.verify import EvidenceError, parse_bundle, verify_bundle
    from tally.evidence.witnessed import require_witnesses

    keys: dict[str, bytes] = {}
    for item in witness or []:
        name, _, key = item.partition("=")
        try:
            keys[name] = bytes.fromhex(key)
        except ValueError:
            fail(f"--witness takes NAME=HEXKEY, not {item!r}", 2)
    try:
        data = bundle.read_bytes()
    except OSError as exc:
        fail(f"cannot read {bundle}: {exc}", 2)
    try:
        doc = parse_bundle(data)
        verdict = verify_bundle(doc, genesis_hash=genesis_hash,
                                bound_from_height=bound_from_height)
        verdict.facts.extend(identity_facts(doc, verdict.event))
        if keys:
            required = len(keys) if witnesses_required is None else witnesses_required
            cosigned = require_witnesses(doc, keys, required)
            verdict.facts.append(f"Cosigned by witness(es) {', '.join(cosigned)}, who checked "
                                 "that the log's history was not rewritten.")
    except EvidenceError as exc:
        if as_json:
            print(json.dumps({"valid": False, "reason": exc.reason, "message": exc.message}))
        else:
            err.print(f"[red]INVALID[/] ({exc.reason}): {exc.message}")
        raise typer.Exit(2 if exc.reason == "format" else 1) from None
    if as_json:
        print(json.dumps({"valid": True, "facts": verdict.facts, "event": verdict.event,
                          "signers": verdict.signers, "genesis_pinned": verdict.genesis_pinned}))
        return
    console.print("[green]VALID[/]")
    for fact in verdict.facts:
        console.print(f"  {fact}")


@evidence_app.command("conflict")
def evidence_conflict(
    note_a: Annotated[Path, typer.Argument(help="a signed checkpoint (text file)")],
    note_b: Annotated[Path, typer.Argument(help="another signed checkpoint")],
    genesis: Annotated[Path, typer.Option(help="the chain's genesis.json")],
    genesis_hash: Annotated[str | None, typer.Option(help="pin the genesis hash")] = None,
) -> None:
    """Check two signed checkpoints for equivocation. Exit 0 and name the validators who
    signed both when they conflict; exit 1 when they do not; 2 on unreadable input."""
    from tally.evidence.verify import EvidenceError, find_misbehaviour
    from tally.genesis import Genesis

    try:
        g = Genesis.read(genesis)
        texts = note_a.read_text(), note_b.read_text()
    except (OSError, ValueError) as exc:
        fail(f"cannot read the inputs: {exc}", 2)
    if genesis_hash is not None and genesis_hash.lower() != g.hash.hex():
        fail(f"genesis hash {g.hash.hex()} is not the pinned {genesis_hash}", 2)
    try:
        proof = find_misbehaviour(g.canonical_bytes(), *texts)
    except EvidenceError as exc:
        fail(f"{exc.reason}: {exc.message}", 2)
    if proof is None:
        console.print("no conflict: the checkpoints are consistent or share no signer")
        raise typer.Exit(1)
    console.print(f"[red]MISBEHAVIOUR[/] in log {proof.origin}: {proof.reason}")
    console.print(f"signed both: {', '.join(proof.signers)}")


# --- witness ---------------------------------------------------------------------------

@witness_app.command("run")
def witness_run(
    key: Annotated[Path, typer.Option(help="the witness's key file (tally keys new)")],
    genesis: Annotated[Path, typer.Option(help="the chain's genesis.json")],
    state: Annotated[Path, typer.Option(help="file holding the latest cosigned checkpoint")],
    genesis_hash: Annotated[str | None, typer.Option(help="pin the genesis hash")] = None,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP port")] = 26690,
    follow: Annotated[list[str] | None, typer.Option(
        help="URL of a node API to fetch proven validator-set changes from (repeatable; "
             "untrusted: each change is checked against its proof)")] = None,
) -> None:
    """Run a C2SP tlog-witness for a chain: cosign each checkpoint a quorum of its
    validators signed, only once it is consistent with the last one cosigned. With
    --follow it learns validator-set changes from the chain's own log, proven."""
    import uvicorn

    from tally.api.limits import ApiLimits
    from tally.api.server import server_config
    from tally.genesis import Genesis
    from tally.keys import load
    from tally.witness import Witness, make_app

    try:
        g = Genesis.read(genesis)
        named = load(key)
        if genesis_hash is not None and genesis_hash.lower() != g.hash.hex():
            fail(f"genesis hash {g.hash.hex()} is not the pinned {genesis_hash}", 2)
        w = Witness(named, g, state, follow=follow or [])
    except (OSError, ValueError) as exc:
        fail(f"cannot start the witness: {exc}", 2)
    console.print(f"Witness {w.name} ({w.suite.name} key {w.public_key.hex()}) of "
                  f"{w.origin}, at size {w.size}, on http://{host}:{port}/add-checkpoint")
    if w.follow:
        console.print(f"Following the validator set ({len(w.updates)} update(s) known) "
                      f"through {', '.join(w.follow)}")
    # The API's connection limits (per-client caps, head and body deadlines) apply here too.
    uvicorn.Server(server_config(make_app(w), host=host, port=port, limits=ApiLimits(),
                                 log_level="warning")).run()


# --- reads and transactions against a node ---------------------------------------------

@app.command()
def status(url: UrlOpt = DEFAULT_URL) -> None:
    """Show a node's chain, height and roots."""

    with open_client(url) as client:
        console.print_json(json.dumps(_call(client.status).to_dict()))


@app.command()
def asset(asset_id: str, url: UrlOpt = DEFAULT_URL,
          history: Annotated[bool, typer.Option(help="also print the custody history")] = False
          ) -> None:
    """Show an asset, its holders and optionally its custody history."""

    with open_client(url) as client:
        console.print_json(json.dumps(_call(client.asset, asset_id).to_dict()))
        if history:
            console.print_json(json.dumps([e.to_dict() for e in _call(client.history,
                                                                          asset_id)]))


@app.command()
def send(kind: str,
         payload: Annotated[str, typer.Argument(help="the payload as JSON; 0x-prefixed hex "
                                                     "strings become bytes")],
         key: Annotated[Path, typer.Option(help="key file of the sender")],
         url: UrlOpt = DEFAULT_URL) -> None:
    """Sign a transaction of KIND with PAYLOAD and submit it; wait for its block."""
    from tally.sdk import ApiError, NodeUnreachable

    try:
        body = json.loads(payload, object_hook=_hex_to_bytes)
    except ValueError as exc:
        fail(f"payload is not JSON: {exc}", 2)
    if not isinstance(body, dict):
        fail("payload must be a JSON object", 2)
    try:
        named = keyfiles.load(key)
    except ValueError as exc:
        fail(str(exc), 2)
    with open_client(url, named) as client:
        try:
            receipt = client.account(named).send(kind, body, check=False)
        except NodeUnreachable as exc:
            fail(exc.message)
        except ApiError as exc:
            fail(f"refused ({exc.code}): {exc.message}")
    console.print_json(json.dumps(receipt.to_dict()))
    if not receipt.ok:
        raise typer.Exit(1)


@app.command()
def audit(home: HomeOpt = DEFAULT_HOME) -> None:
    """Re-derive every root from the stored ledger and check every signature (offline)."""
    from tally.audit import audit_ledger
    from tally.home import Home

    h = Home(home)
    report = audit_ledger(h.data_dir / "chain.sqlite", h.genesis())
    for line in report.lines:
        console.print(f"  {line}")
    if report.problems:
        for problem in report.problems:
            err.print(f"[red]✗[/] {problem}")
        raise typer.Exit(1)
    console.print("[green]ledger intact[/]")


def _hex_to_bytes(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: bytes.fromhex(v[2:]) if isinstance(v, str) and v.startswith("0x") else v
            for k, v in obj.items()}


if __name__ == "__main__":
    app()
