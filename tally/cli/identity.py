"""``tally member``, ``account``, ``claim``, ``policy`` and ``proposal``: identities and
governance of protocol version 4 (docs/identity.md, docs/governance.md) from the command
line.

Reads go through the node's API (:class:`tally.sdk.TallyClient`); transactions are signed
with a key file (``--key``) and sent through the SDK's :class:`~tally.sdk.Account`,
waiting for their block. Committee actions (admitting a member, naming a claim topic's
issuers, setting a policy...) are proposals: the command proposes, the other seats vote
with ``tally proposal vote``. Exit status: 0 done, 1 refused or failed, 2 unreadable
input.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from tally.cli.common import DEFAULT_URL, UrlOpt, call, console, fail, open_client
from tally.cli.common import print_json as _print
from tally.cli.common import print_receipt as _receipt
from tally.cli.common import propose as _propose
from tally.cli.common import transact as _transact

member_app = typer.Typer(help="Members: the institutions of a consortium chain.",
                         epilog="Example: tally member show bank-a --url http://127.0.0.1:26680",
                         no_args_is_help=True)
account_app = typer.Typer(help="Real-name accounts: register, inspect, freeze, rotate; "
                               "disclose an identity to a court.", no_args_is_help=True,
                          epilog="Example: tally account show 3f2a...e9 (40 hex digits)")
claim_app = typer.Typer(help="Claims: facts trusted issuers attest about accounts.",
                        epilog="Example: tally claim list 3f2a...e9",
                        no_args_is_help=True)
policy_app = typer.Typer(help="Policies: who may do what, and why an account may not.",
                         epilog="Example: tally policy may 3f2a...e9 tx:asset.issue",
                         no_args_is_help=True)
proposal_app = typer.Typer(help="Committee proposals: list, vote, withdraw, propose.",
                           epilog="Example: tally proposal vote 5be1...07 for --key broker.json",
                           no_args_is_help=True)
#: (name, group), for tally.cli.main to add.
GROUPS = (("member", member_app), ("account", account_app), ("claim", claim_app),
          ("policy", policy_app), ("proposal", proposal_app))

KeyOpt = Annotated[Path, typer.Option("--key", help="key file of the sender")]
ReasonOpt = Annotated[str, typer.Option(help="why (recorded in the event)")]
TtlOpt = Annotated[int | None, typer.Option(
    help="blocks until the proposal expires (default: the chain's, 100000)")]
_INT = re.compile(r"^-?[0-9]{1,19}$")


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        fail(f"cannot read {what} {path}: {exc.strerror}", 2)


def _hex(text: str, what: str, size: int | None = None) -> bytes:
    try:
        raw = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        fail(f"{what} must be hex", 2)
    if size is not None and len(raw) != size:
        fail(f"{what} must be {size} bytes ({2 * size} hex digits)", 2)
    return raw


# --- tally member ---------------------------------------------------------------------

@member_app.command("list", epilog="Example: tally member list --url http://127.0.0.1:26680")
def member_list(url: UrlOpt = DEFAULT_URL,
                limit: Annotated[int, typer.Option(help="at most this many")] = 1000) -> None:
    """List the members: id, name, credit code, status, CA fingerprints."""

    with open_client(url) as client:
        _print([m.to_dict() for m in call(client.members, limit)])


@member_app.command("show", epilog="Example: tally member show bank-a")
def member_show(member_id: Annotated[str, typer.Argument(metavar="ID")],
                url: UrlOpt = DEFAULT_URL) -> None:
    """Show a member: its record, its CA certificates (PEM) and its status."""

    with open_client(url) as client:
        _print(call(client.member, member_id))


@member_app.command("admit", epilog=(
    "Example: tally member admit --id bank-d --name 'Bank D' --credit-code "
    "91310000500000005X --ca bank-d-ca.pem --registrar bank-d-registrar.pem "
    "--key admin.json"))
def member_admit(member_id: Annotated[str, typer.Option("--id", help="the member's id")],
                 name: Annotated[str, typer.Option(help="the institution's name")],
                 credit_code: Annotated[str, typer.Option(
                     help="its unified social credit code (18 characters)")],
                 ca: Annotated[list[Path], typer.Option(
                     help="a CA certificate file, PEM or DER (repeatable)")],
                 key: KeyOpt,
                 registrar: Annotated[list[Path] | None, typer.Option(
                     help="the certificate of a first registrar account (repeatable)")] = None,
                 ttl: TtlOpt = None, url: UrlOpt = DEFAULT_URL) -> None:
    """Propose admitting a member (committee action member.admit)."""
    args: dict[str, Any] = {"id": member_id, "name": name, "credit_code": credit_code,
                            "cas": [_read(p, "CA certificate") for p in ca]}
    if registrar:
        args["registrars"] = [_read(p, "registrar certificate") for p in registrar]
    _propose(url, key, "member.admit", ttl, **args)


def _member_status(action: str, verb: str) -> Callable[..., None]:
    def command(member_id: Annotated[str, typer.Argument(metavar="ID")], key: KeyOpt,
                reason: ReasonOpt = "", ttl: TtlOpt = None, url: UrlOpt = DEFAULT_URL
                ) -> None:
        args: dict[str, Any] = {"id": member_id}
        if reason:
            args["reason"] = reason
        _propose(url, key, action, ttl, **args)

    command.__doc__ = f"Propose to {verb} a member (committee action {action})."
    return command


for _action, _verb in (("suspend", "suspend"), ("reinstate", "reinstate"),
                       ("expel", "expel")):
    member_app.command(_action, epilog=f"Example: tally member {_action} bank-d "
                                       "--reason 'licence withdrawn' --key admin.json")(
        _member_status(f"member.{_action}", _verb))


# --- tally account --------------------------------------------------------------------

@account_app.command("register", epilog=(
    "Example: tally account register alice.pem --commitment $(jq -r .commitment "
    "alice.disclosure.json) --kyc 2 --key registrar.json"))
def account_register(cert: Annotated[Path, typer.Argument(
                         metavar="CERT", help="the account's certificate, PEM or DER")],
                     commitment: Annotated[str, typer.Option(
                         help="the commitment to the person's record, 64 hex digits "
                              "(tally account disclose prints it)")],
                     kyc: Annotated[int, typer.Option(help="the KYC level, 0 to 5")],
                     key: Annotated[Path, typer.Option("--key",
                                                       help="key file of a registrar")],
                     chain: Annotated[list[Path] | None, typer.Option(
                         help="an intermediate CA certificate (repeatable)")] = None,
                     url: UrlOpt = DEFAULT_URL) -> None:
    """Register the account a member's CA certified (sent by a registrar of the member)."""
    certificate = _read(cert, "certificate")
    digest = _hex(commitment, "--commitment", 32)
    intermediates = [_read(p, "certificate") for p in chain or []]
    _receipt(_transact(url, key, lambda a: a.register_account(
        certificate, commitment=digest, kyc=kyc, chain=intermediates)))


@account_app.command("show", epilog="Example: tally account show 3f2a...e9 (40 hex digits)")
def account_show(address: Annotated[str, typer.Argument(metavar="ADDR")],
                 url: UrlOpt = DEFAULT_URL) -> None:
    """Show who a registered account is: member, KYC level, status, commitment,
    certificate issuer and serial, roles, and whether it may act now (and why not)."""

    with open_client(url) as client:
        _print(call(client.identity, address))


def _status_change(method: str, kind: str) -> Callable[..., None]:
    def command(address: Annotated[str, typer.Argument(metavar="ADDR")], key: KeyOpt,
                reason: ReasonOpt = "", url: UrlOpt = DEFAULT_URL) -> None:
        _receipt(_transact(url, key, lambda a: getattr(a, method)(address, reason)))

    command.__doc__ = f"Send {kind} for an account (a registrar of its member; see " \
                      "tally policy show tx:" + kind + ")."
    return command


for _cmd, _method in (("freeze", "freeze_account"), ("unfreeze", "unfreeze_account"),
                      ("close", "close_account")):
    account_app.command(_cmd, epilog=f"Example: tally account {_cmd} 3f2a...e9 "
                                     "--reason 'court order 2026-17' --key registrar.json")(
        _status_change(_method, f"account.{_cmd}"))


@account_app.command("rotate", epilog=(
    "Example: tally account rotate alice-new.pem --asset BOND-2030 --key alice.json"))
def account_rotate(cert: Annotated[Path, typer.Argument(
                       metavar="CERT", help="the new key's certificate from the same member")],
                   key: Annotated[Path, typer.Option("--key",
                                                     help="the account's current key file")],
                   asset: Annotated[list[str] | None, typer.Option(
                       help="an asset whose units move to the new address (repeatable)")]
                   = None,
                   url: UrlOpt = DEFAULT_URL) -> None:
    """Move this account to a new key (signed by its current key)."""
    certificate = _read(cert, "certificate")
    _receipt(_transact(url, key, lambda a: a.rotate_key(certificate, assets=asset or [])))


@account_app.command("recover", epilog=(
    "Example: tally account recover 3f2a...e9 alice-new.pem --reason 'lost key' "
    "--key registrar.json"))
def account_recover(address: Annotated[str, typer.Argument(metavar="ADDR")],
                    cert: Annotated[Path, typer.Argument(metavar="CERT")],
                    key: Annotated[Path, typer.Option("--key",
                                                      help="key file of a registrar")],
                    reason: Annotated[str, typer.Option(help="why (recorded)")],
                    asset: Annotated[list[str] | None, typer.Option(
                        help="an asset whose units move (repeatable)")] = None,
                    url: UrlOpt = DEFAULT_URL) -> None:
    """Move an account whose holder lost the key to a new certified key (a registrar)."""
    certificate = _read(cert, "certificate")
    _receipt(_transact(url, key, lambda a: a.recover_account(
        address, certificate, reason=reason, assets=asset or [])))


@account_app.command("disclose", epilog=(
    "Example: tally account disclose --record alice.record.json --salt <64 hex> "
    "--out alice.disclosure.json"))
def account_disclose(record: Annotated[Path, typer.Option(
                         help="the identity record: a JSON object of text fields")],
                     salt: Annotated[str | None, typer.Option(
                         help="the record's 32-byte salt, hex (omitted: a new one, for a "
                              "new registration)")] = None,
                     suite: Annotated[str, typer.Option(help="the chain's suite: intl or "
                                                             "gm")] = "intl",
                     out: Annotated[Path | None, typer.Option(
                         help="write the disclosure here (default: print it)")] = None
                     ) -> None:
    """Write the disclosure a member hands a court: the record, its salt and the
    commitment they make (offline). With no --salt, a new salt: the commitment to
    register (keep the file; it is the only way to disclose later)."""
    from tally.crypto import get_suite
    from tally.identity import commitment

    try:
        doc = json.loads(_read(record, "record"))
        raw_salt = commitment.new_salt() if salt is None else _hex(salt, "--salt", 32)
        disclosure = commitment.disclosure(get_suite(suite), doc, raw_salt)
    except ValueError as exc:
        fail(f"cannot make the disclosure: {exc}", 2)
    text = json.dumps(disclosure, indent=2, ensure_ascii=False) + "\n"
    if out is None:
        console.print_json(text)
    else:
        out.write_text(text)
        console.print(f"commitment {disclosure['commitment']} → {out}")


@account_app.command("check-disclosure", epilog=(
    "Example: tally account check-disclosure alice.disclosure.json --account 3f2a...e9"))
def account_check_disclosure(file: Annotated[Path, typer.Argument(metavar="FILE")],
                             account: Annotated[str, typer.Option(
                                 help="the account the disclosure is about")],
                             url: UrlOpt = DEFAULT_URL) -> None:
    """Check a disclosure against the commitment the chain holds for an account: the
    commitment is read from the node, the check runs here. Exit 0 it matches, 1 not."""
    from tally.crypto import get_suite
    from tally.identity import commitment

    try:
        doc = json.loads(_read(file, "disclosure"))
    except ValueError as exc:
        fail(f"{file} is not JSON: {exc}", 2)
    with open_client(url) as client:
        identity = call(client.identity, account)
        suite = get_suite(call(client.genesis).suite)
    try:
        disclosed = commitment.check_disclosure(suite, doc, bytes.fromhex(identity.commitment))
    except ValueError as exc:
        fail(f"does not match account {account}: {exc}")
    _print({"account": account, "member": identity.member, "matches": True,
            "commitment": identity.commitment, "record": disclosed})


# --- tally claim ----------------------------------------------------------------------

def _claim_value(text: str) -> int | str:
    return int(text) if _INT.match(text) else text


@claim_app.command("issue", epilog=(
    "Example: tally claim issue 3f2a...e9 qualified_investor 1 --expires-ms 1798761600000 "
    "--key broker.json"))
def claim_issue(subject: Annotated[str, typer.Argument(metavar="ADDR")],
                topic: str,
                value: Annotated[str, typer.Argument(help="a whole number, or text")],
                key: KeyOpt,
                expires_ms: Annotated[int | None, typer.Option(
                    help="block time it expires at, ms since the Unix epoch")] = None,
                url: UrlOpt = DEFAULT_URL) -> None:
    """Issue a claim about an account (a trusted issuer of the topic)."""
    _receipt(_transact(url, key, lambda a: a.issue_claim(
        subject, topic, _claim_value(value), expires_ms=expires_ms)))


@claim_app.command("revoke", epilog=(
    "Example: tally claim revoke 3f2a...e9 qualified_investor --key broker.json"))
def claim_revoke(subject: Annotated[str, typer.Argument(metavar="ADDR")], topic: str,
                 key: KeyOpt, reason: ReasonOpt = "", url: UrlOpt = DEFAULT_URL) -> None:
    """Revoke a claim (a trusted issuer of the topic)."""
    _receipt(_transact(url, key, lambda a: a.revoke_claim(subject, topic, reason)))


@claim_app.command("list", epilog="Example: tally claim list 3f2a...e9")
def claim_list(address: Annotated[str, typer.Argument(metavar="ADDR")],
               url: UrlOpt = DEFAULT_URL) -> None:
    """List an account's claims, each flagged valid, expired or untrusted now."""

    with open_client(url) as client:
        _print(call(client.claims, address))


@claim_app.command("topic", epilog=(
    "Example: tally claim topic qualified_investor --issuer 3f2a...e9 --key admin.json"))
def claim_topic(topic: str,
                key: KeyOpt,
                issuer: Annotated[list[str] | None, typer.Option(
                    help="a trusted issuer's address (repeatable; none: the topic has no "
                         "issuers)")] = None,
                ttl: TtlOpt = None, url: UrlOpt = DEFAULT_URL) -> None:
    """Propose the trusted issuers of a claim topic (committee action claim.topic)."""
    _propose(url, key, "claim.topic", ttl, topic=topic, issuers=list(issuer or []))


# --- tally policy ---------------------------------------------------------------------

@policy_app.command("show", epilog="Example: tally policy show tx:asset.issue")
def policy_show(resource: Annotated[str, typer.Argument(
                    help="tx:<kind>, call:<contract>:<method> or gov:<action>")],
                url: UrlOpt = DEFAULT_URL) -> None:
    """Show a resource's effective policy (stored, or the default) in JSON and in words."""

    with open_client(url) as client:
        _print(call(client.policy, resource))


@policy_app.command("may", epilog="Example: tally policy may 3f2a...e9 tx:asset.issue")
def policy_may(account: Annotated[str, typer.Argument(metavar="ACCOUNT")],
               resource: Annotated[str, typer.Argument(metavar="RESOURCE")],
               url: UrlOpt = DEFAULT_URL) -> None:
    """May ACCOUNT act on RESOURCE now? Prints the verdict and the reason; exit 0 when
    allowed, 1 when not."""

    with open_client(url) as client:
        verdict = call(client.may, account, resource)
    _print(verdict)
    if not verdict.allowed:
        raise typer.Exit(1)


@policy_app.command("set", epilog=(
    "Examples: tally policy set tx:asset.issue --allow '{\"role\": \"issuer\", \"member\": "
    "\"bank\"}' --key admin.json; tally policy set tx:custody.transfer --deny 3f2a...e9 "
    "--key admin.json; tally policy set gov:contract.deploy --vote TWO_THIRDS --key "
    "admin.json; tally policy set tx:asset.issue --reset --key admin.json"))
def policy_set(resource: str, key: KeyOpt,
               allow: Annotated[str | None, typer.Option(
                   help="a signer policy, JSON (docs/governance.md)")] = None,
               deny: Annotated[list[str] | None, typer.Option(
                   help="an address refused whatever allow says (repeatable; the list "
                        "replaces the current one)")] = None,
               vote: Annotated[str | None, typer.Option(
                   help="for gov:<action>: MAJORITY, TWO_THIRDS, ALL, or JSON "
                        "{participation, win} in basis points")] = None,
               reset: Annotated[bool, typer.Option(
                   "--reset", help="back to the default policy")] = False,
               ttl: TtlOpt = None, url: UrlOpt = DEFAULT_URL) -> None:
    """Propose a resource's policy (committee action policy.set)."""
    args: dict[str, Any] = {"resource": resource}
    if reset:
        if allow is not None or deny or vote is not None:
            fail("--reset takes no other policy option", 2)
        args["reset"] = "yes"
    if allow is not None:
        args["allow"] = _json(allow, "--allow")
    if deny:
        args["deny"] = list(deny)
    if vote is not None:
        args["vote"] = vote if vote in ("MAJORITY", "TWO_THIRDS", "ALL") else \
            _json(vote, "--vote")
    if len(args) == 1:
        fail("give --allow, --deny, --vote or --reset", 2)
    _propose(url, key, "policy.set", ttl, **args)


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        fail(f"{what} is not JSON: {exc}", 2)


# --- tally proposal -------------------------------------------------------------------

@proposal_app.command("list", epilog="Example: tally proposal list --status open")
def proposal_list(status: Annotated[str, typer.Option(help="open or all")] = "open",
                  url: UrlOpt = DEFAULT_URL) -> None:
    """List proposals with their votes, tallies and status as of the latest block."""

    if status not in ("open", "all"):
        fail("--status must be open or all", 2)
    with open_client(url) as client:
        _print([p.to_dict() for p in call(client.proposals, status)])


@proposal_app.command("show", epilog="Example: tally proposal show 5be1...07")
def proposal_show(proposal_id: Annotated[str, typer.Argument(metavar="ID")],
                  url: UrlOpt = DEFAULT_URL) -> None:
    """Show a proposal: action, arguments, votes, tally, vote policy and status."""

    with open_client(url) as client:
        _print(call(client.proposal, proposal_id))


@proposal_app.command("vote", epilog="Example: tally proposal vote 5be1...07 for --key "
                                     "broker.json")
def proposal_vote(proposal_id: Annotated[str, typer.Argument(metavar="ID")],
                  vote: Annotated[str, typer.Argument(metavar="for|against")],
                  key: KeyOpt, url: UrlOpt = DEFAULT_URL) -> None:
    """Vote for or against a proposal (a seat holder); prints its status after the vote."""

    if vote not in ("for", "against"):
        fail("the vote is for or against", 2)
    receipt = _transact(url, key, lambda a: a.vote(proposal_id, vote))
    with open_client(url) as client:
        proposal = call(client.proposal, proposal_id)
    _print({"tx": receipt.tx, "height": receipt.height, "proposal": proposal_id,
            "status": proposal.status, "tally": proposal.tally.model_dump(by_alias=True)})


@proposal_app.command("withdraw", epilog="Example: tally proposal withdraw 5be1...07 --key "
                                         "admin.json")
def proposal_withdraw(proposal_id: Annotated[str, typer.Argument(metavar="ID")],
                      key: KeyOpt, url: UrlOpt = DEFAULT_URL) -> None:
    """Withdraw your open proposal (its proposer only)."""
    _receipt(_transact(url, key, lambda a: a.withdraw(proposal_id)))


@proposal_app.command("propose", epilog=(
    "Example: tally proposal propose role.grant --arg account=3f2a...e9 --arg role=issuer "
    "--key admin.json (a value is JSON if it parses, else text; @FILE reads a file's "
    "text)"))
def proposal_propose(action: str, key: KeyOpt,
                     arg: Annotated[list[str] | None, typer.Option(
                         help="an argument of the action, NAME=VALUE (repeatable)")] = None,
                     ttl: TtlOpt = None, url: UrlOpt = DEFAULT_URL) -> None:
    """Propose any committee action with its arguments (docs/governance.md lists them)."""
    args: dict[str, Any] = {}
    for item in arg or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            fail(f"--arg {item!r}: write NAME=VALUE", 2)
        args[name] = _arg_value(value)
    _propose(url, key, action, ttl, **args)


def _arg_value(text: str) -> Any:
    if text.startswith("@"):
        return _read(Path(text[1:]), "argument file").decode()
    try:
        return json.loads(text)
    except ValueError:
        return text
