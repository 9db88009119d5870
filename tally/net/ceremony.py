"""The founding ceremony of a consortium, and a later institution joining it (decision 0029).

No party ever holds another's private keys. Each institution, on its own machine:

1. ``keygen``: makes its node's CometBFT keys (node key, consensus key), its Tally
   validator key (signs checkpoints) and its admin account key, all private and kept in
   its directory (mode 0600), and writes ``public.json``: its member record (id, name,
   credit code, CA certificates), its validator's name and public keys, its node id and
   p2p address, its admin account's public key and identity commitment. Nothing private.
2. A coordinator (anyone) runs ``assemble_genesis`` over the public files: a
   protocol-version-4 genesis with every founder a member, its admin a registered
   account (roles admin and registrar, and any extra roles it asked for), a committee
   seat of weight 1 and a validator of power 1. It prints the genesis hash.
3. Every founder runs ``check_genesis`` on its own directory: its own public material
   is in the genesis unchanged; the founders compare the hash it prints over a channel
   of their own (a call, a signed letter).
4. ``configure`` writes the node's CometBFT genesis (derived from the Tally genesis
   alone, so every founder derives the same bytes) and config (the others' nodes as
   persistent peers), and a one-node ``localnet.json``, so ``tally net up --dir DIR``
   (or the two commands it runs) starts the node.

A later institution runs ``keygen`` likewise, has its CA certify its admin key
(``certify`` adds that registrar certificate to its public file), and a seat holder
proposes ``member.admit`` (with the registrar certificate) and, for a validator,
``validator.set`` (``propose_join``); once the committee voted, the newcomer's node,
configured with the chain's genesis and peers, syncs and (as a validator) votes.

Directory of one institution::

    DIR/public.json          what it shares (the only file that leaves the machine)
    DIR/admin.json           its admin account's key (0600)
    DIR/admin.pub.pem        that key as a PEM public key, for its CA to certify
    DIR/identity.json        the admin's identity record and salt (0600): what makes
                             the commitment, for disclosure to a court
    DIR/node/config/         CometBFT: node_key.json, priv_validator_key.json (0600),
                             config.toml, genesis.json (written by configure)
    DIR/node/app/            the Tally node's home: validator.json (0600), genesis.json
    DIR/local.json           ports on this machine
    DIR/localnet.json        written by configure: the node, for tally net up/down/status
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tally import keys
from tally.crypto import get_suite
from tally.genesis import Genesis, Validator
from tally.identity import certs, commitment
from tally.identity.credit_code import check_credit_code
from tally.net.cometbft.config import init_node, read_node_keys, update_config
from tally.net.cometbft.localnet import MANIFEST, NodeSpec, localnet_config
from tally.protocol.versions import IDENTITY, LATEST_VERSION

PUBLIC = "public.json"
FORMAT = "tally-institution/1"
BASE_ROLES = ("admin", "registrar")
EXTRA_ROLES = ("issuer", "custodian", "regulator")
DEFAULT_PORT = 26656
POWER = 1
SEAT_WEIGHT = 1
ADMIN_KYC = 3
_MEMBER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: Files a public.json must never contain a trace of (checked by the tests).
PRIVATE_FILES = ("admin.json", "identity.json", "node/config/node_key.json",
                 "node/config/priv_validator_key.json", "node/app/validator.json")


class CeremonyError(ValueError):
    """A public file, genesis or directory that does not fit; the message says how."""


@dataclass(frozen=True)
class Institution:
    """One institution's public file, read and checked."""

    doc: dict[str, Any]

    @property
    def member_id(self) -> str:
        return self.doc["member"]["id"]

    @property
    def suite_name(self) -> str:
        return self.doc["suite"]

    @property
    def validator(self) -> Validator:
        v = self.doc["validator"]
        return Validator(v["name"], bytes.fromhex(v["public_key"]), POWER,
                         bytes.fromhex(v["consensus_key"]))

    @property
    def admin_key(self) -> bytes:
        return bytes.fromhex(self.doc["admin"]["public_key"])

    @property
    def admin_address(self) -> str:
        return get_suite(self.suite_name).address(self.admin_key)

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(sorted(self.doc["admin"]["roles"]))

    @property
    def p2p_address(self) -> str:
        node = self.doc["node"]
        return f"{node['id']}@{node['host']}:{node['p2p_port']}"

    @property
    def api_url(self) -> str:
        node = self.doc["node"]
        return f"http://{node['host']}:{node['api_port']}"

    @property
    def registrar_certificate(self) -> bytes | None:
        pem = self.doc.get("registrar_certificate")
        return pem.encode() if pem else None

    def account_doc(self) -> dict[str, Any]:
        admin = self.doc["admin"]
        return {"member": self.member_id, "public_key": admin["public_key"],
                "commitment": admin["commitment"], "kyc": admin["kyc"]}

    @classmethod
    def read(cls, path: Path) -> Institution:
        try:
            doc = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise CeremonyError(f"cannot read {path}: {exc}") from None
        return cls.parse(doc, str(path))

    @classmethod
    def parse(cls, doc: Any, where: str = "public file") -> Institution:
        try:
            if doc["format"] != FORMAT:
                raise CeremonyError(f"{where}: format {doc['format']!r}, expected {FORMAT}")
            get_suite(doc["suite"])
            member = doc["member"]
            if set(member) != {"id", "name", "credit_code", "cas"}:
                raise CeremonyError(f"{where}: a member has id, name, credit_code, cas")
            check_credit_code(member["credit_code"])
            inst = cls(doc)
            inst.validator  # noqa: B018 - parses the keys
            inst.admin_address  # noqa: B018
            for role in inst.roles:
                if role not in BASE_ROLES + EXTRA_ROLES:
                    raise CeremonyError(f"{where}: unknown role {role!r}")
            bytes.fromhex(doc["admin"]["commitment"])
            int(doc["node"]["p2p_port"])
            return inst
        except CeremonyError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise CeremonyError(f"{where} is malformed: {exc!r}") from None


# --- keygen -------------------------------------------------------------------------------

def public_key_pem(suite_name: str, raw: bytes) -> str:
    """An account key as a PEM SubjectPublicKeyInfo, which ``openssl x509 -force_pubkey``
    takes to certify it."""
    return certs.public_key_pem(certs.SUITE_KEY_ALGORITHM[suite_name], raw).decode()


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def keygen(directory: Path, *, member_id: str, name: str, credit_code: str,
           ca_pems: list[bytes], suite_name: str = "intl", host: str = "127.0.0.1",
           port: int = DEFAULT_PORT, roles: tuple[str, ...] = (),
           admin_record: dict[str, str] | None = None,
           binary: str | os.PathLike[str] | None = None) -> Institution:
    """Make one institution's keys in ``directory`` and write its ``public.json``.

    ``ca_pems``: the member's root CA certificates (its customers' certificates chain to
    them). ``roles``: roles for its admin account besides admin and registrar (e.g.
    ``regulator``). ``port``: the node's p2p port on ``host``; RPC, ABCI and the API take
    the next three. ``admin_record``: the admin's identity data behind its commitment
    (by default the member's name and credit code).
    """
    directory = Path(directory)
    if (directory / PUBLIC).exists():
        raise FileExistsError(f"{directory} already holds an institution's keys")
    if not _MEMBER_RE.match(member_id):
        raise CeremonyError(f"member id {member_id!r}: 1-64 letters, digits, '.', '_', '-'")
    credit_code = check_credit_code(credit_code)
    suite = get_suite(suite_name)
    for role in roles:
        if role not in EXTRA_ROLES:
            raise CeremonyError(f"role {role!r}: one of {', '.join(EXTRA_ROLES)}")
    if not ca_pems:
        raise CeremonyError("a member needs at least one CA certificate (--ca)")
    now_ms = time.time_ns() // 1_000_000
    cas = []
    for pem in ca_pems:
        try:
            certs.check_root(certs.parse_certificate(pem), at_ms=now_ms, suite_name=suite.name)
        except certs.CertificateError as exc:
            raise CeremonyError(f"CA certificate refused: {exc}") from None
        cas.append(pem.decode())
    directory.mkdir(parents=True, exist_ok=True)
    home = directory / "node"
    node_keys = init_node(home, member_id, binary=binary)
    (home / "app").mkdir(exist_ok=True)
    validator = keys.generate(member_id, suite.name)
    keys.save(home / "app" / "validator.json", validator)
    admin = keys.generate(f"{member_id}-admin", suite.name)
    keys.save(directory / "admin.json", admin)
    record = admin_record or {"name": f"{name} (administrator)", "credit_code": credit_code}
    salt = commitment.new_salt()
    _write_private(directory / "identity.json", json.dumps(
        commitment.disclosure(suite, record, salt), indent=2) + "\n")
    (directory / "admin.pub.pem").write_text(public_key_pem(suite.name, admin.public_key))
    local = {"host": host, "p2p_port": port, "rpc_port": port + 1, "abci_port": port + 2,
             "api_port": port + 3}
    (directory / "local.json").write_text(json.dumps(local, indent=2) + "\n")
    doc = {
        "format": FORMAT,
        "suite": suite.name,
        "member": {"id": member_id, "name": name, "credit_code": credit_code, "cas": cas},
        "validator": {"name": member_id, "public_key": validator.public_key.hex(),
                      "consensus_key": base64.b64decode(node_keys.validator_pubkey).hex()},
        "node": {"id": node_keys.node_id, "host": host, "p2p_port": port,
                 "api_port": port + 3},
        "admin": {"public_key": admin.public_key.hex(), "address": admin.address,
                  "commitment": commitment.commit(suite, record, salt).hex(),
                  "kyc": ADMIN_KYC, "roles": sorted({*BASE_ROLES, *roles})},
    }
    (directory / PUBLIC).write_text(json.dumps(doc, indent=2) + "\n")
    return Institution.parse(doc)


def certify(directory: Path, certificate: bytes) -> Institution:
    """Add the registrar certificate the member's CA issued for its admin key to
    ``public.json`` (a later member brings it with its admission), once it is checked:
    it binds the admin key and chains to one of the member's CAs today."""
    directory = Path(directory)
    inst = Institution.read(directory / PUBLIC)
    roots = [certs.parse_certificate(pem.encode()) for pem in inst.doc["member"]["cas"]]
    try:
        certs.verify_chain(certs.parse_certificate(certificate), [], roots,
                           at_ms=time.time_ns() // 1_000_000, suite_name=inst.suite_name,
                           public_key=inst.admin_key)
    except certs.CertificateError as exc:
        raise CeremonyError(f"the registrar certificate is refused: {exc}") from None
    doc = dict(inst.doc, registrar_certificate=certificate.decode())
    (directory / PUBLIC).write_text(json.dumps(doc, indent=2) + "\n")
    return Institution.parse(doc)


# --- genesis --------------------------------------------------------------------------------

def assemble_genesis(chain_id: str, suite_name: str, institutions: list[Institution], *,
                     time_ms: int | None = None) -> Genesis:
    """The version-4 genesis of the founders, from their public files only."""
    if not institutions:
        raise CeremonyError("no founders: give their public files")
    suite = get_suite(suite_name)
    seen: dict[str, set[Any]] = {"member": set(), "validator": set(), "key": set(),
                                 "node": set()}
    for inst in institutions:
        if inst.suite_name != suite.name:
            raise CeremonyError(f"{inst.member_id} made its keys for suite "
                                f"{inst.suite_name}, not {suite.name}")
        v = inst.validator
        for kind, value in (("member", inst.member_id), ("validator", v.name),
                            ("key", v.consensus_key), ("key", v.public_key),
                            ("key", inst.admin_key), ("node", inst.doc["node"]["id"])):
            if value in seen[kind]:
                raise CeremonyError(f"two founders share a {kind}: {value!r}")
            seen[kind].add(value)
    ordered = sorted(institutions, key=lambda i: i.member_id)
    genesis = Genesis(
        chain_id=chain_id, suite_name=suite.name,
        time_ms=time_ms if time_ms is not None else time.time_ns() // 1_000_000,
        validators=tuple(sorted((i.validator for i in ordered), key=lambda v: v.name)),
        roles={i.admin_address: i.roles for i in ordered},
        protocol_version=LATEST_VERSION,
        members=tuple(dict(i.doc["member"]) for i in ordered),
        accounts=tuple(i.account_doc() for i in ordered),
        committee={i.admin_address: SEAT_WEIGHT for i in ordered},
    )
    assert genesis.protocol_version >= IDENTITY
    # What every node will check when it loads it (credit codes, CAs at genesis time).
    return Genesis.from_doc(genesis.to_doc())


def check_genesis(genesis: Genesis, directory: Path) -> list[str]:
    """What a founder checks before its node runs ``genesis``: its member record, its
    admin account (key, commitment, roles, seat) and its validator (keys, power) are in
    it exactly as its own ``public.json`` says. The facts checked; CeremonyError on the
    first difference."""
    inst = Institution.read(Path(directory) / PUBLIC)
    facts = []
    if genesis.suite_name != inst.suite_name:
        raise CeremonyError(f"genesis suite {genesis.suite_name}, our keys are "
                            f"{inst.suite_name}")
    if genesis.protocol_version < IDENTITY:
        raise CeremonyError("genesis is not protocol version 4 or later: it has no members")
    members = [m for m in genesis.members if m["id"] == inst.member_id]
    if members != [inst.doc["member"]]:
        raise CeremonyError(f"member {inst.member_id} is missing or altered in genesis")
    facts.append(f"member {inst.member_id} ({inst.doc['member']['name']}, credit code "
                 f"{inst.doc['member']['credit_code']}, {len(inst.doc['member']['cas'])} CA)")
    if inst.account_doc() not in [dict(a) for a in genesis.accounts]:
        raise CeremonyError("our admin account is missing or altered in genesis")
    if genesis.roles.get(inst.admin_address) != inst.roles:
        raise CeremonyError(f"our admin's roles in genesis are "
                            f"{genesis.roles.get(inst.admin_address)}, not {inst.roles}")
    if genesis.committee.get(inst.admin_address) != SEAT_WEIGHT:
        raise CeremonyError("our admin holds no committee seat of weight 1 in genesis")
    facts.append(f"admin {inst.admin_address}: roles {', '.join(inst.roles)}, one seat")
    ours = inst.validator
    if ours not in genesis.validators:
        raise CeremonyError(f"validator {ours.name} is missing or altered in genesis")
    keys_used = [v for v in genesis.validators if v.name != ours.name and
                 (v.consensus_key == ours.consensus_key or v.public_key == ours.public_key)]
    if keys_used:
        raise CeremonyError("another validator in genesis uses our keys")
    facts.append(f"validator {ours.name}: power {ours.power} of "
                 f"{sum(v.power for v in genesis.validators)}")
    return facts


# --- configure ------------------------------------------------------------------------------

def _rfc3339(time_ms: int) -> str:
    moment = datetime.fromtimestamp(time_ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{time_ms % 1000:03d}Z"


def cometbft_genesis(genesis: Genesis) -> dict[str, Any]:
    """CometBFT's genesis, derived from the Tally genesis alone (the same bytes on every
    node): chain id, genesis time, validators (consensus keys and powers), vote
    extensions from height 1, CometBFT 0.38's default consensus parameters."""
    return {
        "genesis_time": _rfc3339(genesis.time_ms),
        "chain_id": genesis.chain_id,
        "initial_height": "1",
        "consensus_params": {
            "block": {"max_bytes": "22020096", "max_gas": "-1"},
            "evidence": {"max_age_num_blocks": "100000",
                         "max_age_duration": "172800000000000", "max_bytes": "1048576"},
            "validator": {"pub_key_types": ["ed25519"]},
            "version": {"app": "0"},
            "abci": {"vote_extensions_enable_height": "1"},
        },
        "validators": [
            {"address": hashlib.sha256(v.consensus_key).digest()[:20].hex().upper(),
             "pub_key": {"type": "tendermint/PubKeyEd25519",
                         "value": base64.b64encode(v.consensus_key).decode()},
             "power": str(v.power), "name": v.name}
            for v in genesis.validators
        ],
        "app_hash": "",
    }


def node_spec(directory: Path, chain_id: str) -> NodeSpec:
    """This institution's node, as tally.net.cometbft's runner describes a node."""
    directory = Path(directory).resolve()
    inst = Institution.read(directory / PUBLIC)
    local = json.loads((directory / "local.json").read_text())
    home = directory / "node"
    node = read_node_keys(home)
    return NodeSpec(index=0, moniker=inst.member_id, home=str(home), node_id=node.node_id,
                    validator_address=node.validator_address,
                    validator_pubkey=node.validator_pubkey, p2p_port=local["p2p_port"],
                    rpc_port=local["rpc_port"],
                    proxy_app=f"tcp://127.0.0.1:{local['abci_port']}", chain_id=chain_id,
                    app_dir=str(home / "app"), host=local["host"])


def configure(directory: Path, genesis: Genesis, peers: list[Institution], *,
              timeout_commit: str = "300ms", timeout_propose: str | None = None,
              log_level: str = "error") -> NodeSpec:
    """Write this institution's node configuration for ``genesis``: the Tally genesis in
    the node's home, CometBFT's genesis derived from it, config.toml with ``peers`` (the
    other institutions' public files; our own is skipped) as persistent peers, and a
    one-node ``localnet.json`` so ``tally net up --dir DIR`` starts it. Refuses a genesis
    whose validators hold our node's consensus key under another name."""
    directory = Path(directory).resolve()
    inst = Institution.read(directory / PUBLIC)
    if genesis.suite_name != inst.suite_name:
        raise CeremonyError(f"genesis suite {genesis.suite_name}, our keys are "
                            f"{inst.suite_name}")
    spec = node_spec(directory, genesis.chain_id)
    ours = inst.validator
    for v in genesis.validators:
        if v.consensus_key == ours.consensus_key and v != ours:
            raise CeremonyError(f"genesis validator {v.name} holds our consensus key")
    others = [p for p in peers if p.doc["node"]["id"] != spec.node_id]
    peer_specs = [NodeSpec(index=i + 1, moniker=p.member_id, home="", node_id=p.doc["node"]["id"],
                           validator_address="", validator_pubkey="",
                           p2p_port=int(p.doc["node"]["p2p_port"]), rpc_port=0, proxy_app="",
                           chain_id=genesis.chain_id, host=p.doc["node"]["host"])
                  for i, p in enumerate(others)]
    on_one_machine = spec.on_loopback
    genesis.write(Path(spec.app_dir) / "genesis.json")
    (Path(spec.home) / "config" / "genesis.json").write_text(
        json.dumps(cometbft_genesis(genesis), indent=2))
    propose = timeout_propose or ("400ms" if on_one_machine else "1s")
    update_config(spec.home, localnet_config(spec, peer_specs, timeout_commit=timeout_commit,
                                             timeout_propose=propose, log_level=log_level))
    manifest = [{**asdict(spec), "home": os.path.relpath(spec.home, directory),
                 "app_dir": os.path.relpath(spec.app_dir, directory)}]
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return spec


# --- joining --------------------------------------------------------------------------------

def admission(inst: Institution) -> dict[str, Any]:
    """The ``member.admit`` arguments for a newcomer: its record, CAs and (if it brought
    one) its registrar certificate."""
    member = inst.doc["member"]
    args: dict[str, Any] = {"id": member["id"], "name": member["name"],
                            "credit_code": member["credit_code"],
                            "cas": [pem.encode() for pem in member["cas"]]}
    certificate = inst.registrar_certificate
    if certificate is not None:
        args["registrars"] = [certificate]
        args["commitments"] = [bytes.fromhex(inst.doc["admin"]["commitment"])]
    return args


def validator_change(inst: Institution, power: int = POWER) -> dict[str, Any]:
    """The ``validator.set`` arguments that make the newcomer's node a validator."""
    v = inst.validator
    return {"name": v.name, "power": power, "public_key": v.public_key,
            "consensus_key": v.consensus_key}


def wait_until_valid(client: Any, certificates: list[bytes], timeout: float = 30.0) -> None:
    """Wait until the chain's block time reaches every certificate's notBefore. The chain
    checks a certificate at the block's time, which trails the wall clock by up to a
    block: one made this very second may not be valid yet."""
    start = max(certs.parse_certificate(c).not_before_ms for c in certificates)
    deadline = time.monotonic() + timeout
    while client.block("latest").header.time < start:
        if time.monotonic() > deadline:
            raise TimeoutError("the chain's time did not reach the certificates' notBefore")
        time.sleep(0.2)


def propose_join(account: Any, inst: Institution, *, observer: bool = False) -> list[str]:
    """A seat holder's ``account`` (tally.sdk Account) proposes the newcomer's admission
    and, unless it joins as an observer (a full node that does not vote), its validator;
    the proposal ids, which the other seats vote on."""
    if inst.registrar_certificate is not None:
        wait_until_valid(account.client, [inst.registrar_certificate])
    proposals = [account.propose("member.admit", **admission(inst)).tx]
    if not observer:
        proposals.append(account.propose("validator.set", **validator_change(inst)).tx)
    return proposals


@dataclass(frozen=True)
class JoinState:
    """Where a joining institution's node stands, as its own node and CometBFT see it."""

    height: int
    caught_up: bool
    member: str  # the member's status on chain, or "not admitted"
    validator: bool  # CometBFT counts this node's key among the validators


def join(directory: Path, genesis: Genesis, peers: list[Institution], *,
         timeout: float = 120.0) -> JoinState:
    """The newcomer's side of joining (``tally net join``): configure the node for
    ``genesis`` and ``peers``, start it, and wait until it has caught up with the chain;
    then report whether the committee has admitted the member and made the node a
    validator. The committee's votes happen elsewhere (``propose-join`` by a seat holder,
    ``gov.vote`` by the others); run ``join`` again, or ``tally net status --dir``, to
    see them take effect. The node follows the chain either way: a node that is not a
    validator is an observer (full) node."""
    from tally.net.cometbft.rpc import CometRPC
    from tally.net.local import api_url, net_up

    spec = configure(directory, genesis, peers)
    net_up(Path(directory), timeout=timeout)
    inst = Institution.read(Path(directory) / PUBLIC)
    deadline = time.monotonic() + timeout
    with CometRPC(spec.rpc_url) as rpc:
        while True:
            sync = rpc.status()["sync_info"]
            if not sync["catching_up"] or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        keys = {v["pub_key"]["value"] for v in rpc.validators()["validators"]}
    with httpx.Client(base_url=api_url(spec), timeout=10) as api:
        answer = api.get(f"/v1/members/{inst.member_id}")
        member = answer.json()["status"] if answer.status_code == 200 else "not admitted"
    return JoinState(int(sync["latest_block_height"]), not sync["catching_up"], member,
                     spec.validator_pubkey in keys)

