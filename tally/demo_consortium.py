"""The demo's consortium: four founders (a bank, a securities firm, a custodian, a
regulator), each with its own CA made by the ``openssl`` command line and its own keys
(the founding ceremony of tally.net.ceremony, decision 0029), real-name customers
registered by their members, and a fifth member admitted by the committee's vote, live.

One process plays every institution here, but each keeps its keys in its own directory
and the chain is assembled from their public files only, exactly as on separate machines.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from tally import keys
from tally.crypto import get_suite
from tally.genesis import Genesis
from tally.identity import commitment
from tally.identity.credit_code import check_character
from tally.keys import NamedKey
from tally.net import ceremony
from tally.net.cometbft.localnet import Localnet, NodeSpec, free_port_block, load_localnet
from tally.net.cometbft.rpc import CometRPC
from tally.net.local import api_url, tally_node_argv, wait_for_apis
from tally.sdk import Account, TallyClient

#: member id -> (name, credit code without its check character, its admin's extra roles,
#: the scenario's name for its admin)
FOUNDERS: dict[str, tuple[str, str, tuple[str, ...], str]] = {
    "bank": ("Bank of Lujiazui", "91310000100000001", ("issuer",), "issuer"),
    "broker": ("Pudong Securities", "91310000200000002", (), "broker"),
    "custody": ("China Custody Trust", "91310000300000003", ("custodian",), "custodian"),
    "regulator": ("Securities Regulator", "11100000400000004", ("regulator",), "regulator"),
}
#: customer -> (member that registers it, real name, resident ID number)
CUSTOMERS = {
    "alice": ("bank", "Zhang Li (Alice)", "110101199001010011"),
    "bob": ("broker", "Wang Bo (Bob)", "310101198502020022"),
    "lender": ("bank", "Lujiazui Lending Co.", "91310000600000006"),
    "supplier": ("custody", "Jiangnan Parts Ltd.", "91320000700000007"),
    "factor": ("broker", "Huangpu Factoring Ltd.", "91310000800000008"),
}
NEWCOMER = ("fifth", "Fifth Trust Company", "91310000900000009")
#: The regulator's alert rules (docs/supervision.md): its node evaluates them.
ALERT_RULES = """\
[[rule]]
name = "large-transfer"
kind = "large_transfer"
min_quantity = 2000
"""
_SM2_ID = "1234567812345678"


def openssl_available() -> bool:
    return shutil.which("openssl") is not None


def credit_code(body: str) -> str:
    return body + check_character(body)


class OpensslCa:
    """A member's root CA, made and used with the ``openssl`` command line, as the
    member's IT department would (Ed25519 for ``intl``, SM2 with SM3 for ``gm``)."""

    def __init__(self, directory: Path, name: str, suite_name: str) -> None:
        self.directory, self.name, self.suite_name = directory, name, suite_name
        directory.mkdir(parents=True, exist_ok=True)
        self.key, self.cert = directory / "ca.key", directory / "ca.pem"
        algorithm = ["-algorithm", "ED25519"] if suite_name == "intl" else ["-algorithm", "SM2"]
        self._run("genpkey", *algorithm, "-out", str(self.key))
        config = directory / "ca.cnf"
        config.write_text("[req]\ndistinguished_name = dn\n[dn]\n[ext]\n"
                          "basicConstraints = critical,CA:TRUE\n"
                          "keyUsage = critical,keyCertSign,cRLSign\n"
                          "subjectKeyIdentifier = hash\n")
        self._run("req", "-new", "-x509", "-key", str(self.key), "-subj",
                  f"/C=CN/O={name}/CN={name} CA", "-days", "3650", "-config", str(config),
                  "-extensions", "ext", *self._sign(), "-out", str(self.cert))

    def _sign(self) -> list[str]:
        return [] if self.suite_name == "intl" else ["-sm3", "-sigopt", f"distid:{_SM2_ID}"]

    def _run(self, *args: str) -> None:
        done = subprocess.run(["openssl", *args], cwd=self.directory, capture_output=True)
        if done.returncode != 0:
            raise RuntimeError(f"openssl {args[0]} failed: {done.stderr.decode(errors='replace')}")

    @property
    def pem(self) -> bytes:
        return self.cert.read_bytes()

    def certify(self, subject: str, public_key: bytes) -> bytes:
        """A certificate (PEM) for an account key, with digitalSignature."""
        stem = self.directory / f"leaf-{secrets.token_hex(4)}"
        pub, ext, out = stem.with_suffix(".pub"), stem.with_suffix(".cnf"), stem.with_suffix(".pem")
        pub.write_text(ceremony.public_key_pem(self.suite_name, public_key))
        ext.write_text("[ext]\nbasicConstraints = critical,CA:FALSE\n"
                       "keyUsage = critical,digitalSignature\nsubjectKeyIdentifier = hash\n"
                       "authorityKeyIdentifier = keyid\n")
        self._run("x509", "-new", "-subj", f"/C=CN/O={self.name}/CN={subject}",
                  "-force_pubkey", str(pub), "-CA", str(self.cert), "-CAkey", str(self.key),
                  "-days", "365", "-set_serial", str(secrets.randbits(63)),
                  "-extfile", str(ext), "-extensions", "ext", *self._sign(), "-out", str(out))
        return out.read_bytes()


@dataclass
class Consortium:
    """The running consortium: its directories, genesis, nodes and the scenario's keys."""

    base: Path
    suite_name: str
    genesis: Genesis
    cas: dict[str, OpensslCa]
    specs: list[NodeSpec]
    net: Localnet
    keys: dict[str, NamedKey] = field(default_factory=dict)
    extra: list[Localnet] = field(default_factory=list)

    def stop(self) -> None:
        for net in self.extra:
            net.stop()
        self.net.stop()


def found(base: Path, suite_name: str, console: Console, chain_id: str = "tally-demo"
          ) -> Consortium:
    """The founding ceremony, then the four nodes started and serving."""
    say = console.print
    suite = get_suite(suite_name)
    port = free_port_block(60)
    say("[bold]Founding ceremony[/]: each founder makes its CA (openssl) and its own keys; "
        "only public.json leaves its directory.")
    cas, publics = {}, []
    for i, (member, (name, body, roles, _)) in enumerate(FOUNDERS.items()):
        cas[member] = OpensslCa(base / "pki" / member, name, suite.name)
        inst = ceremony.keygen(base / member, member_id=member, name=name,
                               credit_code=credit_code(body), ca_pems=[cas[member].pem],
                               suite_name=suite.name, port=port + 10 * i, roles=roles)
        publics.append(inst)
        say(f"  {member:<9} {name:<22} credit code {inst.doc['member']['credit_code']}  "
            f"admin {inst.admin_address[:12]}… roles {', '.join(inst.roles)}")
    genesis = ceremony.assemble_genesis(chain_id, suite.name, publics)
    for member in FOUNDERS:
        ceremony.check_genesis(genesis, base / member)
        ceremony.configure(base / member, genesis, publics)
    say(f"  genesis assembled from the public files; all {len(FOUNDERS)} founders checked "
        f"their entries and the hash {genesis.hash.hex()[:16]}…")
    specs = [load_localnet(base / member)[0] for member in FOUNDERS]
    rules = base / "regulator" / "alerts.toml"
    rules.write_text(ALERT_RULES)
    regulator_home = specs[list(FOUNDERS).index("regulator")].app_dir

    def node_argv(spec: NodeSpec) -> list[str]:
        """The regulator's node evaluates its alert rules (off the commit path)."""
        extra = ["--alerts", str(rules)] if spec.app_dir == regulator_home else []
        return [*tally_node_argv(spec), *extra]

    net = Localnet(specs, app=node_argv)
    consortium = Consortium(base, suite.name, genesis, cas, specs, net)
    try:
        net.start()
        wait_for_apis(specs, timeout=90)
    except BaseException:
        net.stop()
        raise
    for member, (_, _, _, scenario_name) in FOUNDERS.items():
        consortium.keys[scenario_name] = keys.load(base / member / "admin.json")
    return consortium


def register_customers(c: Consortium, client: TallyClient, console: Console) -> None:
    """Each customer's member certifies its key with its CA, and its registrar registers
    it with the commitment to the customer's identity record (kept by the member)."""
    say = console.print
    say("\n[bold]Real-name customers[/], each registered by its member's registrar with a "
        "certificate from the member's CA (the chain keeps only a commitment to the name):")
    registrars = {m: client.account(keys.load(c.base / m / "admin.json")) for m in FOUNDERS}
    suite = get_suite(c.suite_name)
    certificates = {}
    for name, (member, real_name, _) in CUSTOMERS.items():
        c.keys[name] = keys.generate(name, c.suite_name)
        certificates[name] = c.cas[member].certify(real_name, c.keys[name].public_key)
    ceremony.wait_until_valid(client, list(certificates.values()))
    signed = []
    for name, (member, real_name, id_number) in CUSTOMERS.items():
        record = {"name": real_name, "id_number": id_number}
        signed.append(registrars[member].sign("account.register", {
            "certificate": certificates[name],
            "commitment": commitment.commit(suite, record, commitment.new_salt()), "kyc": 2}))
    receipts = _all_ok(client.submit_batch_and_wait(signed))
    for (name, (member, real_name, _)), receipt in zip(CUSTOMERS.items(), receipts,
                                                       strict=True):
        say(f"  {name:<9} {real_name:<24} by {member:<8} → {c.keys[name].address[:12]}… "
            f"(block {receipt.height})")


def _all_ok(results: list[Any]) -> list[Any]:
    for result in results:
        if isinstance(result, Exception):
            raise result
        result.raise_for_code()
    return results


def supervise(c: Consortium, console: Console) -> None:
    """The regulator's view: its node's alerts on the scenario's traffic, a freeze of an
    asset on the record, a refused move, and the report of the period."""
    from tally.supervision.report import build_report

    say = console.print
    spec = c.specs[list(FOUNDERS).index("regulator")]
    say("\n[bold]Supervision[/]: the regulator's node evaluates its alert rules on every "
        "block, off the commit path.")
    with TallyClient(api_url(spec)) as regulator_node:
        _wait(lambda: bool(regulator_node.alerts()), 20, "the regulator's alerts")
        for alert in regulator_node.alerts()[:3]:
            say(f"  alert #{alert.id} at block {alert.height} ({alert.rule}): {alert.message}")
        regulator = regulator_node.account(c.keys["regulator"])
        frozen = regulator.send("asset.freeze", {"asset": "BOND-2030", "reason_code": "AML",
                                                 "reason": "pattern review 2026-17"})
        say(f"  the regulator freezes BOND-2030 (AML), block {frozen.height}: every move of "
            "it is refused")
        move = regulator_node.account(c.keys["bob"]).send(
            "custody.transfer", {"asset": "BOND-2030", "to": c.keys["alice"].address,
                                 "quantity": 1}, check=False)
        say(f"  ✓ bob's transfer refused: {move.code}")
        regulator.send("asset.unfreeze", {"asset": "BOND-2030", "reason_code": "AML",
                                          "reason": "review closed"})
        report = build_report(regulator_node, 1, regulator_node.status().height,
                              [a.model_dump() for a in regulator_node.alerts()])
        say(f"  report of blocks 1-{report['period']['to']}: "
            f"{sum(r['events'] for r in report['activity'])} custody moves by "
            f"{len({r['member'] for r in report['activity']})} members, "
            f"{len(report['interventions'])} interventions, {len(report['alerts'])} alert(s) "
            "(tally supervise report writes it as JSON and CSV)")


def admit_newcomer(c: Consortium, client: TallyClient, console: Console) -> str:
    """A fifth institution makes its keys, the bank proposes its admission and its node,
    the broker and the custodian vote for; its node syncs and joins the validators.
    The name of the validator that then cosigns checkpoints."""
    say = console.print
    member, name, body = NEWCOMER
    say(f"\n[bold]A fifth member joins[/]: {name} makes its CA and keys; the committee votes.")
    ca = OpensslCa(c.base / "pki" / member, name, c.suite_name)
    port = free_port_block(10)
    inst = ceremony.keygen(c.base / member, member_id=member, name=name,
                           credit_code=credit_code(body), ca_pems=[ca.pem],
                           suite_name=c.suite_name, port=port)
    inst = ceremony.certify(c.base / member, ca.certify(f"{name} registrar", inst.admin_key))
    founders = [ceremony.Institution.read(c.base / m / ceremony.PUBLIC) for m in FOUNDERS]
    spec = ceremony.configure(c.base / member, c.genesis, founders)
    net = Localnet([spec], app=tally_node_argv)
    c.extra.append(net)
    net.start()  # it follows the chain while the committee votes
    say(f"  {member} made its keys and a registrar certificate from its CA; its node "
        f"starts and follows the chain, not voting")
    seats: dict[str, Account] = {m: client.account(keys.load(c.base / m / "admin.json"))
                                 for m in ("bank", "broker", "custody")}
    ceremony.wait_until_valid(client, [ca.pem, inst.registrar_certificate or b""])
    proposed = _all_ok(client.submit_batch_and_wait([
        seats["bank"].sign("gov.propose", {"action": "member.admit",
                                           **ceremony.admission(inst)}),
        seats["bank"].sign("gov.propose", {"action": "validator.set",
                                           **ceremony.validator_change(inst)})]))
    say(f"  bank proposes member.admit and validator.set of {member} (block "
        f"{proposed[-1].height}); the bank's seat votes for")
    votes = _all_ok(client.submit_batch_and_wait([
        seats[voter].sign("gov.vote", {"proposal": receipt.tx, "vote": "for"})
        for voter in ("broker", "custody") for receipt in proposed]))
    say(f"  broker and custody vote for both (block {votes[-1].height}): 3 of 4 seats, "
        "passed")
    height = client.status().height
    wait_for_apis([spec], timeout=60, min_height=height)
    say(f"  {member}'s node ran the chain from block 1 to {height} itself")
    consensus = inst.validator.consensus_key
    _wait(lambda: consensus in _cometbft_validators(c.specs[0]), 30,
          "CometBFT to add the fifth validator")
    fifth = TallyClient(api_url(spec))

    def cosigned() -> bool:
        h = fifth.status().height - 1
        return h > 0 and f"— {inst.validator.name} " in fifth.checkpoint(h)

    _wait(cosigned, 30, "a checkpoint cosigned by the fifth validator")
    total = len(_cometbft_validators(c.specs[0]))
    say(f"  [green]✓[/] {member} is a member with its registrar account, and its node is "
        f"one of {total} validators cosigning checkpoints (block "
        f"{fifth.status().height - 1})")
    return inst.validator.name


def _cometbft_validators(spec: NodeSpec) -> set[bytes]:
    import base64

    with CometRPC(spec.rpc_url) as rpc:
        return {base64.b64decode(v["pub_key"]["value"]) for v in rpc.validators()["validators"]}


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.2)


def run_consortium_demo(base: Path, suite_name: str, out: Path, console: Console,
                        run_scenario: Callable[..., Any]) -> Any:
    """The whole demo: found, register, the custody scenario (tally.demo), admit."""
    c = found(base, suite_name, console)
    try:
        with TallyClient(api_url(c.specs[0])) as client:
            register_customers(c, client, console)
            console.print()
            result = run_scenario(client, c.keys, out, console)
            supervise(c, console)
            admit_newcomer(c, client, console)
        return result
    finally:
        c.stop()
