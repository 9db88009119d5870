"""``tally net keygen | certify | genesis | check-genesis | configure | propose-join``:
the founding ceremony of a consortium and a later institution's joining
(tally.net.ceremony, decision 0029). Registered on the ``net`` group by tally.cli.main."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tally.cli.common import console, open_client
from tally.cli.common import fail as _fail

DirOpt = Annotated[Path, typer.Option("--dir", help="this institution's directory (its keys)")]
PublicFiles = Annotated[list[Path], typer.Argument(help="the institutions' public.json files")]


def keygen_cmd(
    member: Annotated[str, typer.Option(help="the member's id, e.g. bank-a")],
    name: Annotated[str, typer.Option(help="the institution's name")],
    credit_code: Annotated[str, typer.Option(help="its unified social credit code")],
    ca: Annotated[list[Path], typer.Option(help="its root CA certificate, PEM (repeatable)")],
    dir: DirOpt,
    suite: Annotated[str, typer.Option(help="intl or gm: the chain's suite")] = "intl",
    host: Annotated[str, typer.Option(help="the address other nodes reach this node at")] =
    "127.0.0.1",
    port: Annotated[int, typer.Option(help="p2p port; RPC, ABCI and API take the next three")] =
    26656,
    role: Annotated[list[str] | None, typer.Option(
        help="a role for the admin account besides admin and registrar: issuer, "
             "custodian or regulator (repeatable)")] = None,
) -> None:
    """Make this institution's node, validator and admin keys in DIR (private, never to
    leave it) and write DIR/public.json, the only file to share."""
    from tally.net.ceremony import CeremonyError, keygen

    try:
        pems = [path.read_bytes() for path in ca]
        inst = keygen(dir, member_id=member, name=name, credit_code=credit_code,
                      ca_pems=pems, suite_name=suite, host=host, port=port,
                      roles=tuple(role or ()))
    except (OSError, CeremonyError, ValueError) as exc:
        _fail(str(exc))
        return
    console.print(f"{inst.member_id}: node {inst.p2p_address}, validator "
                  f"{inst.validator.name}, admin {inst.admin_address}")
    console.print(f"Share {dir / 'public.json'} (public material only); keep the rest of "
                  f"{dir} on this machine.")


def certify_cmd(certificate: Annotated[Path, typer.Argument(
                    help="the certificate your CA issued for DIR/admin.pub.pem (PEM)")],
                dir: DirOpt) -> None:
    """Add the registrar certificate of the admin key to DIR/public.json (a joining
    member brings it: it registers the admin as the member's first registrar)."""
    from tally.net.ceremony import CeremonyError, certify

    try:
        certify(dir, certificate.read_bytes())
    except (OSError, CeremonyError) as exc:
        _fail(str(exc))
    console.print(f"registrar certificate added to {dir / 'public.json'}")


def genesis_cmd(public: PublicFiles,
                chain_id: Annotated[str, typer.Option(help="the chain's name")],
                out: Annotated[Path, typer.Option(help="genesis file to write")] =
                Path("genesis.json"),
                suite: Annotated[str, typer.Option(help="intl or gm")] = "intl") -> None:
    """Assemble the founders' genesis from their public files; print its hash."""
    from tally.net.ceremony import CeremonyError, Institution, assemble_genesis

    try:
        genesis = assemble_genesis(chain_id, suite, [Institution.read(p) for p in public])
    except (CeremonyError, ValueError) as exc:
        _fail(str(exc))
        return
    genesis.write(out)
    console.print(f"genesis of {genesis.chain_id}: {len(genesis.members)} members, "
                  f"{len(genesis.validators)} validators, written to {out}")
    console.print(f"genesis hash {genesis.hash.hex()}")


def check_genesis_cmd(genesis: Annotated[Path, typer.Argument(help="the genesis.json")],
                      dir: DirOpt) -> None:
    """Check that our public material is in GENESIS unchanged; print its hash, to compare
    with the other founders over a channel of your own."""
    from tally.genesis import Genesis
    from tally.net.ceremony import CeremonyError, check_genesis

    try:
        g = Genesis.read(genesis)
        facts = check_genesis(g, dir)
    except (OSError, CeremonyError, ValueError) as exc:
        _fail(str(exc))
        return
    for fact in facts:
        console.print(f"  [green]✓[/] {fact}")
    console.print(f"genesis hash {g.hash.hex()}")


def configure_cmd(genesis: Annotated[Path, typer.Argument(help="the chain's genesis.json")],
                  dir: DirOpt,
                  peers: Annotated[list[Path] | None, typer.Option(
                      help="another institution's public.json (repeatable)")] = None) -> None:
    """Write this node's CometBFT genesis and config (PEERS as persistent peers); then
    `tally net up --dir DIR` starts it."""
    from tally.genesis import Genesis
    from tally.net.ceremony import CeremonyError, Institution, configure
    from tally.net.local import tally_node_argv

    try:
        g = Genesis.read(genesis)
        spec = configure(dir, g, [Institution.read(p) for p in peers or []])
    except (OSError, CeremonyError, ValueError) as exc:
        _fail(str(exc))
        return
    console.print(f"node {spec.moniker} of {g.chain_id} (genesis {g.hash.hex()[:16]}…) "
                  f"configured in {spec.home}")
    console.print(f"start it: tally net up --dir {dir}   (or: cometbft start --home "
                  f"{spec.home}, after {' '.join(tally_node_argv(spec)[1:])})")


def propose_join_cmd(public: Annotated[Path, typer.Argument(help="the newcomer's public.json")],
                     key: Annotated[Path, typer.Option(help="a seat holder's key file")],
                     url: Annotated[str, typer.Option(help="a node's API URL",
                                                      envvar="TALLY_URL")] =
                     "http://127.0.0.1:26659",
                     observer: Annotated[bool, typer.Option(
                         help="admit the member only: its node follows without voting")] =
                     False) -> None:
    """Propose the newcomer's admission (member.admit, with its registrar certificate) and
    its validator (validator.set); the other seats vote with gov.vote."""
    from tally import keys
    from tally.errors import TallyError
    from tally.net.ceremony import CeremonyError, Institution, propose_join

    try:
        inst = Institution.read(public)
        named = keys.load(key)
        with open_client(url, named) as client:
            proposals = propose_join(client.account(named), inst, observer=observer)
    except (CeremonyError, ValueError, TallyError) as exc:
        _fail(str(exc))
        return
    actions = ["member.admit"] + ([] if observer else ["validator.set"])
    for action, proposal in zip(actions, proposals, strict=True):
        console.print(f"{action} of {inst.member_id}: proposal {proposal}")
    console.print("the other seats vote: tally send gov.vote "
                  "'{\"proposal\": \"<id>\", \"vote\": \"for\"}' --key <their key>")


def join_cmd(genesis: Annotated[Path, typer.Argument(help="the chain's genesis.json")],
             dir: DirOpt,
             peers: Annotated[list[Path] | None, typer.Option(
                 help="another institution's public.json (repeatable)")] = None,
             timeout: Annotated[float, typer.Option(help="seconds to wait")] = 120.0) -> None:
    """Join a running consortium from this institution's side: configure and start its
    node, wait until it has caught up, and say whether the committee has admitted the
    member and made the node a validator yet (a seat holder proposes it with
    `tally net propose-join public.json`; the other seats vote).

    Example: tally net join genesis.json --dir fifth --peers bank/public.json"""
    from tally.genesis import Genesis
    from tally.net.ceremony import CeremonyError, Institution, join

    try:
        state = join(dir, Genesis.read(genesis), [Institution.read(p) for p in peers or []],
                     timeout=timeout)
    except (OSError, CeremonyError, ValueError, TimeoutError) as exc:
        _fail(str(exc))
        return
    console.print(f"node at height {state.height}, "
                  f"{'caught up' if state.caught_up else 'still catching up'}; member: "
                  f"{state.member}; "
                  f"{'a validator' if state.validator else 'following without voting'}")


def register(net_app: typer.Typer) -> None:
    """Add the ceremony's commands to the ``net`` group."""
    net_app.command("keygen")(keygen_cmd)
    net_app.command("certify")(certify_cmd)
    net_app.command("genesis")(genesis_cmd)
    net_app.command("check-genesis")(check_genesis_cmd)
    net_app.command("configure")(configure_cmd)
    net_app.command("propose-join")(propose_join_cmd)
    net_app.command("join")(join_cmd)
