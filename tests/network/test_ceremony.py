"""The founding ceremony with real CometBFT processes (decision 0029): four founders, each
with its own openssl-made CA, make their keys in their own directories, a coordinator
assembles the genesis from their public files, each founder checks it and gets the same
hash, the nodes start and a registered customer transfers; then a fifth institution is
admitted by the committee's vote, and its node syncs and votes; a sixth joins as an
observer, whose node follows and serves the chain without voting."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tally.cli.main import app
from tally.identity import commitment
from tally.keys import generate, load
from tally.net.ceremony import (
    PRIVATE_FILES,
    PUBLIC,
    Institution,
    wait_until_valid,
)
from tally.net.cometbft.localnet import Localnet, free_port_block, load_localnet
from tally.net.cometbft.rpc import CometRPC
from tally.net.local import api_url, net_down, tally_node_argv, wait_for_apis
from tally.sdk import TallyClient
from tests.support.consortium import credit_code
from tests.support.net import require_cometbft, wait_until
from tests.support.openssl_ca import OpensslPki

require_cometbft()
if shutil.which("openssl") is None:  # pragma: no cover - depends on the machine
    pytest.skip("the openssl command line makes the members' CAs", allow_module_level=True)

#: member id -> (name, first 17 characters of the credit code, extra roles of its admin)
FOUNDERS = {"bank": ("Bank A", "91310000100000001", ["issuer"]),
            "broker": ("Broker B", "91310000200000002", []),
            "custody": ("Custodian C", "91310000300000003", ["custodian"]),
            "regulator": ("Regulator R", "11100000400000004", ["regulator"])}
NEWCOMER = ("fifth", "Fifth Trust", "91310000500000005")
OBSERVER = ("sixth", "Sixth Auditors", "91310000700000007")


def serves_the_chain(observer: TallyClient, validator: TallyClient, holder: str) -> bool:
    """The observer serves the chain: it reaches the validators' height, and a verified
    read from it is signed by a quorum of the validators (not by itself)."""
    wait_until(lambda: observer.status().height >= validator.status().height - 1, 30,
               "the observer to catch up")
    held = observer.verified_holding("BOND", holder)
    return held.held == 40 and len(held.signers) >= 3 and "sixth" not in held.signers


def tally(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result.output


def secrets_of(directory: Path) -> set[str]:
    """Every private key in an institution's directory, as its files spell it."""
    found = set()
    for name in PRIVATE_FILES:
        doc = json.loads((directory / name).read_text())
        if "private_key" in doc:  # Tally key files
            found.add(doc["private_key"])
        elif "priv_key" in doc:  # CometBFT's
            value = doc["priv_key"]["value"]
            found |= {value, base64.b64decode(value)[:32].hex()}
        else:  # the identity record's salt
            found.add(doc["salt"])
    return found


def text_of(directory: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(directory.rglob("*"))
                     if p.is_file() and p.stat().st_size < 1_000_000)


def test_founders_make_their_own_keys_and_a_fifth_member_joins_by_vote(tmp_path: Path) -> None:
    pki = OpensslPki(tmp_path / "pki")
    base_port = free_port_block(60, low=29600, high=29800)
    dirs = {m: tmp_path / m for m in [*FOUNDERS, NEWCOMER[0], OBSERVER[0]]}

    # 1. Each founder, on its own machine: keygen with its own CA.
    for i, (member, (name, body, roles)) in enumerate(FOUNDERS.items()):
        ca = pki.root(f"{name} CA", "ed25519")
        tally("net", "keygen", "--member", member, "--name", name,
              "--credit-code", credit_code(body), "--ca", str(ca.cert),
              "--dir", str(dirs[member]), "--port", str(base_port + 10 * i),
              *[arg for role in roles for arg in ("--role", role)])
    founders = [dirs[m] for m in FOUNDERS]
    publics = [str(d / PUBLIC) for d in founders]
    for d in founders:
        assert all((d / name).stat().st_mode & 0o777 == 0o600 for name in PRIVATE_FILES)
        public = (d / PUBLIC).read_text()
        for other in founders:
            leaked = [s for s in secrets_of(other) if s in public]
            assert not leaked, f"{d.name}'s public.json holds a secret of {other.name}"
            if other != d:
                assert not [s for s in secrets_of(other) if s in text_of(d)], \
                    f"{d.name}'s directory holds a private key of {other.name}"

    # 2. The coordinator assembles genesis from the public files alone; 3. each founder
    # checks its own material in it and prints the same hash.
    genesis_path = tmp_path / "genesis.json"
    out = tally("net", "genesis", *publics, "--chain-id", "ceremony-net", "--out",
                str(genesis_path))
    announced = out.split("genesis hash ")[1].split()[0]
    for d in founders:
        checked = tally("net", "check-genesis", str(genesis_path), "--dir", str(d))
        assert f"genesis hash {announced}" in checked and checked.count("✓") == 3
    # 4. Each configures its node with the others as peers, and starts it.
    for d in founders:
        tally("net", "configure", str(genesis_path), "--dir", str(d),
              *[arg for p in publics for arg in ("--peers", p)])
    specs = [load_localnet(d)[0] for d in founders]
    net = Localnet(specs, app=tally_node_argv)
    newcomer_net: Path | None = None
    observer_dir: Path | None = None
    try:
        net.start()
        wait_for_apis(specs, timeout=60)
        client = TallyClient(api_url(specs[0]), genesis_hash=announced)
        assert client.status().genesis_hash == announced
        admins = {m: client.account(load(dirs[m] / "admin.json")) for m in FOUNDERS}

        # Real-name customers, registered by the bank's registrar; one transfers.
        bank_ca = pki.root("Bank A CA", "ed25519")
        customers = {n: generate(n, "intl") for n in ("alice", "bob")}
        made = {n: pki.leaf(bank_ca, n.title(), public_key=key.public_key)
                for n, key in customers.items()}
        wait_until_valid(client, list(made.values()))
        for n in customers:
            record = {"name": n.title(), "id_number": f"1101011990010100{len(n)}"}
            admins["bank"].register_account(
                made[n],
                commitment=commitment.commit(client.suite, record, commitment.new_salt()),
                kyc=2)
        admins["bank"].issue("BOND", asset_class="security", name="Bond", quantity=100,
                             to=customers["alice"].address)
        alice = client.account(customers["alice"])
        sale = alice.transfer("BOND", to=customers["bob"].address, quantity=40)
        assert sale.ok
        held = client.verified_holding("BOND", customers["bob"].address)
        assert held.held == 40 and len(held.signers) >= 3

        # 5. A fifth institution: its own keys and CA, a registrar certificate for its
        # admin key, admitted and made a validator by the committee's vote.
        member, name, body = NEWCOMER
        fifth_ca = pki.root(f"{name} CA", "ed25519")
        tally("net", "keygen", "--member", member, "--name", name,
              "--credit-code", credit_code(body), "--ca", str(fifth_ca.cert),
              "--dir", str(dirs[member]), "--port", str(base_port + 40))
        newcomer = Institution.read(dirs[member] / PUBLIC)
        registrar_pem = tmp_path / "fifth-registrar.pem"
        registrar_pem.write_bytes(pki.leaf(fifth_ca, f"{name} registrar",
                                           public_key=newcomer.admin_key))
        tally("net", "certify", str(registrar_pem), "--dir", str(dirs[member]))
        newcomer = Institution.read(dirs[member] / PUBLIC)
        for other in founders:
            assert not [s for s in secrets_of(other) if s in text_of(dirs[member])]
        # A founder's seat holder proposes with the command; the others vote by SDK.
        out = tally("net", "propose-join", str(dirs[member] / PUBLIC), "--key",
                    str(dirs["bank"] / "admin.json"), "--url", api_url(specs[0]))
        proposals = [line.split("proposal ")[1].strip() for line in out.splitlines()
                     if " proposal " in line]
        assert len(proposals) == 2, out
        for proposal in proposals:
            for voter in ("broker", "custody"):
                assert admins[voter].vote(proposal, "for").ok
        assert client.account_info(newcomer.admin_address).roles == ["registrar"]

        # Its node joins: the chain's genesis, the founders as peers; it syncs, then votes.
        joined = tally("net", "join", str(genesis_path), "--dir", str(dirs[member]),
                       *[arg for p in publics for arg in ("--peers", p)], "--timeout", "60")
        newcomer_net = dirs[member]
        assert "caught up" in joined and "member: active" in joined, joined
        spec = load_localnet(dirs[member])[0]
        consensus = base64.b64encode(newcomer.validator.consensus_key).decode()
        with CometRPC(specs[1].rpc_url) as rpc:
            wait_until(lambda: consensus in {v["pub_key"]["value"]
                                             for v in rpc.validators()["validators"]},
                       30, "CometBFT to add the fifth validator")
        fifth = TallyClient(api_url(spec))

        def signed_by_fifth() -> bool:
            height = fifth.status().height - 1
            return height > 0 and f"— {member} " in fifth.checkpoint(height)

        wait_until(signed_by_fifth, 30, "a checkpoint cosigned by the fifth validator")
        # The newcomer's registrar acts: it registers its own customer.
        carol = generate("carol", "intl")
        fifth_admin = fifth.account(load(dirs[member] / "admin.json"))
        carol_pem = pki.leaf(fifth_ca, "Carol", public_key=carol.public_key)
        wait_until_valid(fifth, [carol_pem])
        assert fifth_admin.register_account(
            carol_pem,
            commitment=commitment.commit(client.suite, {"name": "Carol"},
                                         commitment.new_salt()), kyc=1).ok

        # 6. A sixth institution joins as an observer: admitted as a member, its node
        # follows the chain and serves it, and CometBFT does not count it as a validator.
        member6, name6, body6 = OBSERVER
        sixth_ca = pki.root(f"{name6} CA", "ed25519")
        tally("net", "keygen", "--member", member6, "--name", name6,
              "--credit-code", credit_code(body6), "--ca", str(sixth_ca.cert),
              "--dir", str(dirs[member6]), "--port", str(base_port + 50))
        sixth = Institution.read(dirs[member6] / PUBLIC)
        pem6 = tmp_path / "sixth-registrar.pem"
        pem6.write_bytes(pki.leaf(sixth_ca, f"{name6} registrar", public_key=sixth.admin_key))
        tally("net", "certify", str(pem6), "--dir", str(dirs[member6]))
        out = tally("net", "propose-join", str(dirs[member6] / PUBLIC), "--observer",
                    "--key", str(dirs["bank"] / "admin.json"), "--url", api_url(specs[0]))
        (admission,) = [line.split("proposal ")[1].strip() for line in out.splitlines()
                        if " proposal " in line]
        for voter in ("broker", "custody"):
            assert admins[voter].vote(admission, "for").ok
        observer_dir = dirs[member6]
        joined6 = tally("net", "join", str(genesis_path), "--dir", str(observer_dir),
                        *[arg for p in publics for arg in ("--peers", p)], "--timeout", "60")
        assert "member: active" in joined6 and "following without voting" in joined6, joined6
        observer = TallyClient(api_url(load_localnet(observer_dir)[0]))
        assert serves_the_chain(observer, client, customers["bob"].address)
    finally:
        if newcomer_net is not None:
            net_down(newcomer_net)
        if observer_dir is not None:
            net_down(observer_dir)
        net.stop()


def test_a_founder_refuses_a_genesis_that_altered_its_material(tmp_path: Path) -> None:
    """check-genesis fails (exit 1, saying what) when the coordinator's genesis changed a
    founder's member record, keys or seat; genesis refuses two founders sharing a key."""
    from tally.genesis import Genesis
    from tally.net.ceremony import CeremonyError, assemble_genesis, check_genesis, keygen

    pki = OpensslPki(tmp_path / "pki")
    made = [keygen(tmp_path / m, member_id=m, name=name, credit_code=credit_code(body),
                   ca_pems=[pki.root(f"{name} CA", "ed25519").pem], roles=tuple(roles))
            for m, (name, body, roles) in list(FOUNDERS.items())[:2]]
    genesis = assemble_genesis("ceremony-net", "intl", made)
    assert len(check_genesis(genesis, tmp_path / "bank")) == 3
    intruder = generate("intruder", "intl")
    doc = genesis.to_doc()
    alterations = {
        "member name": lambda d: d["members"][0].update(name="Bank Z"),
        "validator key": lambda d: d["validators"][0].update(public_key=intruder.public_key.hex()),
        "admin key": lambda d: d["accounts"][0].update(public_key=intruder.public_key.hex()),
        "seat": lambda d: d.update(committee={intruder.address: 1}),
        "roles": lambda d: d["roles"].update({made[0].admin_address: ["admin"]}),
    }
    for what, alter in alterations.items():
        changed = json.loads(json.dumps(doc))
        alter(changed)
        with pytest.raises(CeremonyError):
            check_genesis(Genesis.from_doc(changed), tmp_path / "bank")
        path = tmp_path / f"altered-{what.replace(' ', '-')}.json"
        path.write_text(json.dumps(changed))
        result = CliRunner().invoke(app, ["net", "check-genesis", str(path), "--dir",
                                          str(tmp_path / "bank")])
        assert result.exit_code == 1 and "error" in result.output, what
    twin = Institution.parse(json.loads(json.dumps(made[1].doc)) | {
        "validator": made[0].doc["validator"]})
    with pytest.raises(CeremonyError, match="share"):
        assemble_genesis("ceremony-net", "intl", [made[0], twin])
