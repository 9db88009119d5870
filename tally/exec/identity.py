"""Identity (protocol version 4): members, their CAs, real-name accounts and their life.

Institutions are *members*: a name, a unified social credit code (GB 32100-2015, its
check character verified), one or more CA certificates, and a status. Founding members
are in genesis; the committee admits, suspends, reinstates and expels members and adds
or removes their CAs (committee actions ``member.*``).

An account acts only once *registered* (where the chain requires it, see
:mod:`tally.exec.registry`): a registrar of a member sends ``account.register`` with an
X.509 certificate issued by one of that member's CAs to the account's public key. The
chain verifies the certificate chain against the block's time, its key usage and the
revocations the member recorded (tally.identity.certs), and records who the account is
without recording personal data: the person's or company's name and ID number stay with
the member, the chain holds a salted commitment (SHA-256 or SM3 of a canonical record
and a salt, docs/identity.md) and the KYC level the member attests. The member can later
disclose the record and salt to a court or regulator, who recomputes the commitment
offline (``tally account disclose``).

An account's life: ``account.freeze`` / ``account.unfreeze`` by a registrar of its
member or a regulator, ``account.close`` by its member (final), and ``cert.revoke``: the
member revokes a certificate it issued, and the account bound to it stops acting.
Each is an event of the custody log, so evidence proves who an account was at a height.

State: see :mod:`tally.exec.registry` for ``member/``, ``ca/``, ``account/``, plus::

    serial/<issuer fingerprint>/<serial>   the account a certificate registered
    revoked/<issuer fingerprint>/<serial>  {height, reason}: revoked certificates
"""

from __future__ import annotations

from typing import Any

from tally.errors import Code, ExecutionFailed
from tally.exec import custody, policy
from tally.exec import payload as p
from tally.exec.context import Event, TxContext
from tally.exec.contracts import contract_key
from tally.exec.module import Action, Module
from tally.exec.operation import Operation
from tally.exec.registry import (
    BASE_ROLES,
    IDENTITY_KEY,
    ROLES_DEFINED_KEY,
    SEATS_KEY,
    Subject,
    account,
    account_key,
    ca_key,
    defined_roles,
    member,
    member_key,
    role_key,
)
from tally.exec.state import StateAccess, StateReader
from tally.genesis import Genesis
from tally.identity import certs
from tally.identity.credit_code import CreditCodeError, check_credit_code

MAX_CAS = 8
MAX_CERT_BYTES = certs.MAX_CERTIFICATE_SIZE
MAX_KYC = 5
MAX_ROTATED_ASSETS = 64


def issuer_key(fingerprint: str) -> bytes:
    return b"issuerkey/" + fingerprint.encode()


def serial_key(issuer: str, serial: int) -> bytes:
    return f"serial/{issuer}/{serial:x}".encode()


def revoked_key(issuer: str, serial: int) -> bytes:
    return f"revoked/{issuer}/{serial:x}".encode()


# --- payload checks ---------------------------------------------------------------------

def _cert_bytes(name: str, value: Any) -> bytes:
    if isinstance(value, str):
        value = value.encode()
    if not isinstance(value, bytes) or not 0 < len(value) <= MAX_CERT_BYTES:
        raise p.invalid(f"{name} must be a PEM or DER certificate of at most "
                        f"{MAX_CERT_BYTES} bytes")
    return value


def _cert_list(limit: int) -> p.Check:
    def check(name: str, value: Any) -> list[bytes]:
        if not isinstance(value, list) or len(value) > limit:
            raise p.invalid(f"{name} must be a list of at most {limit} certificates")
        return [_cert_bytes(name, v) for v in value]
    return check


def _credit_code(name: str, value: Any) -> str:
    try:
        return check_credit_code(value)
    except CreditCodeError as exc:
        raise p.invalid(f"{name}: {exc}") from None


def _fingerprint(name: str, value: Any) -> str:
    if not isinstance(value, str) or len(value) != 64 or \
            any(c not in "0123456789abcdef" for c in value):
        raise p.invalid(f"{name} must be a key fingerprint: the suite hash (SHA-256 or SM3) "
                        "as 64 hex digits")
    return value


def _bad_cert(exc: certs.CertificateError) -> ExecutionFailed:
    return ExecutionFailed(f"certificate refused ({exc.reason}): {exc.message}",
                           Code.BAD_CERTIFICATE)


# --- reading ----------------------------------------------------------------------------

def member_cas(state: StateReader, member_id: str) -> list[certs.Certificate]:
    record = member(state, member_id)
    if record is None:
        return []
    return [certs.parse_certificate(_stored_ca(state, fp)["der"]) for fp in record["cas"]]


def _stored_ca(state: StateReader, fingerprint: str) -> dict[str, Any]:
    ca = state.get(ca_key(fingerprint))
    assert ca is not None, f"member CA {fingerprint} is missing from state"
    return ca


def _active_member(state: StateReader, member_id: str) -> dict[str, Any]:
    record = member(state, member_id)
    if record is None:
        raise ExecutionFailed(f"no member {member_id!r}", Code.NOT_FOUND)
    if record["status"] != "active":
        raise ExecutionFailed(f"member {member_id} is {record['status']}",
                              Code.INVALID_PAYLOAD)
    return record


def _is_revoked(state: StateReader, issuer: str, serial: int) -> bool:
    return state.get(revoked_key(issuer, serial)) is not None


def verify_account_certificate(state: StateReader, suite_name: str, member_id: str,
                               cert: bytes, chain: list[bytes], at_ms: int
                               ) -> certs.VerifiedChain:
    """The certificate of an account, verified to a CA of ``member_id`` at ``at_ms``, none
    of its path revoked (revocations are named by issuer key and serial, decision 0027)."""
    try:
        verified = certs.verify_chain(
            certs.parse_certificate(cert), [certs.parse_certificate(c) for c in chain],
            member_cas(state, member_id), at_ms=at_ms, suite_name=suite_name, usage="account")
    except certs.CertificateError as exc:
        raise _bad_cert(exc) from None
    for issued, issuer in zip(verified.path, verified.path[1:], strict=False):
        if _is_revoked(state, certs.key_fingerprint(issuer, suite_name), issued.serial):
            raise ExecutionFailed(f"certificate refused (revoked): {issued.subject!r} "
                                  f"(serial {issued.serial}) is revoked", Code.BAD_CERTIFICATE)
    return verified


def _record_issuers(state: StateAccess, suite_name: str, member_id: str,
                    verified: certs.VerifiedChain) -> None:
    """Remember which member each issuing key of the path belongs to, so that only that
    member may revoke what the key issued."""
    for issuer in verified.path[1:]:
        state.put(issuer_key(certs.key_fingerprint(issuer, suite_name)), member_id)


def _ca_records(state: StateReader, suite_name: str, cas: list[bytes], at_ms: int
                ) -> list[tuple[str, bytes]]:
    """(fingerprint, DER) of each CA certificate, checked to be a usable CA now."""
    out: list[tuple[str, bytes]] = []
    for raw in cas:
        try:
            ca = certs.parse_certificate(raw)
            certs.check_root(ca, at_ms=at_ms, suite_name=suite_name)
        except certs.CertificateError as exc:
            raise _bad_cert(exc) from None
        fingerprint = certs.fingerprint(ca, suite_name)
        if state.get(ca_key(fingerprint)) is not None or fingerprint in (fp for fp, _ in out):
            raise ExecutionFailed(f"CA certificate {fingerprint} is already registered",
                                  Code.ALREADY_EXISTS)
        out.append((fingerprint, ca.der))
    return out


# --- account operations -------------------------------------------------------------------

def _parse_register(payload: dict[str, Any]) -> dict[str, Any]:
    return p.parse(payload, {"certificate": _cert_bytes, "commitment": p.digest,
                             "kyc": p.whole(0, MAX_KYC)},
                   {"chain": _cert_list(3)})


def _sender_member(ctx: TxContext) -> str:
    who = Subject.of(ctx.state, ctx.sender)
    if who.member is None:
        raise ExecutionFailed(f"account {ctx.sender} belongs to no member",
                              Code.UNAUTHORISED)
    return who.member


def _register(ctx: TxContext, args: dict[str, Any]) -> None:
    member_id = _sender_member(ctx)
    _active_member(ctx.state, member_id)
    verified = verify_account_certificate(ctx.state, ctx.suite.name, member_id,
                                          args["certificate"], args.get("chain", []),
                                          ctx.time_ms)
    address = ctx.suite.address(verified.public_key)
    if account(ctx.state, address) is not None:
        raise ExecutionFailed(f"account {address} is already registered", Code.ALREADY_EXISTS)
    ctx.state.put(account_key(address), {
        "member": member_id, "key": verified.public_key.hex(),
        "issuer": verified.issuer_key_fingerprint, "serial": verified.serial,
        "commitment": args["commitment"].hex(), "kyc": args["kyc"], "status": "active",
        "height": ctx.height})
    _record_issuers(ctx.state, ctx.suite.name, member_id, verified)
    ctx.state.put(serial_key(verified.issuer_key_fingerprint, verified.serial), address)
    ctx.emit(Event("account.register", sender=ctx.sender, to=address, details={
        "member": member_id, "commitment": args["commitment"].hex(), "kyc": args["kyc"]}
        | _certificate_details(verified)))


def _certificate_details(verified: certs.VerifiedChain) -> dict[str, Any]:
    """What an event records of a verified certificate: the certificate and its path as
    verified (DER, hex; the root is the member's registered CA), its issuer key
    fingerprint and serial (its name for revocation). Not its subject in words: the
    certificate holds it, and rendering names cost a sixth of a registration."""
    return {"certificate": verified.path[0].der.hex(),
            "path": [c.der.hex() for c in verified.path[1:]],
            "issuer": verified.issuer_key_fingerprint, "serial": verified.serial}


def _parse_account_change(payload: dict[str, Any]) -> dict[str, Any]:
    return p.parse(payload, {"account": p.address}, {"reason": p.text(500)})


def _account_of_my_member(ctx: TxContext, address: str, *, regulator_may: bool
                          ) -> dict[str, Any]:
    record = account(ctx.state, address)
    if record is None:
        raise ExecutionFailed(f"account {address} is not registered", Code.NOT_FOUND)
    me = Subject.of(ctx.state, ctx.sender)
    if me.member != record["member"] and not (regulator_may and "regulator" in me.roles):
        raise ExecutionFailed(f"account {address} belongs to member {record['member']}",
                              Code.UNAUTHORISED)
    return record


def _set_status(ctx: TxContext, args: dict[str, Any], kind: str, frm: tuple[str, ...],
                to: str, *, regulator_may: bool) -> None:
    record = _account_of_my_member(ctx, args["account"], regulator_may=regulator_may)
    if record["status"] not in frm:
        raise ExecutionFailed(f"account {args['account']} is {record['status']}",
                              Code.INVALID_PAYLOAD)
    new = {**record, "status": to}
    if to != "active":
        policy.with_change(ctx.state, account_key(args["account"]), new,
                           policy.check_not_locked_out)
    ctx.state.put(account_key(args["account"]), new)
    ctx.emit(Event(kind, sender=ctx.sender, to=args["account"],
                   details={"member": record["member"], "reason": args.get("reason", "")}))


def _freeze(ctx: TxContext, args: dict[str, Any]) -> None:
    _set_status(ctx, args, "account.freeze", ("active",), "frozen", regulator_may=True)


def _unfreeze(ctx: TxContext, args: dict[str, Any]) -> None:
    _set_status(ctx, args, "account.unfreeze", ("frozen",), "active", regulator_may=True)


def _close(ctx: TxContext, args: dict[str, Any]) -> None:
    _set_status(ctx, args, "account.close", ("active", "frozen"), "closed",
                regulator_may=False)


# --- key rotation and recovery -------------------------------------------------------------

def _parse_rotate(payload: dict[str, Any]) -> dict[str, Any]:
    return p.parse(payload, {"certificate": _cert_bytes},
                   {"chain": _cert_list(3), "assets": _asset_list})


def _parse_recover(payload: dict[str, Any]) -> dict[str, Any]:
    return p.parse(payload, {"account": p.address, "certificate": _cert_bytes,
                             "reason": p.text(500)},
                   {"chain": _cert_list(3), "assets": _asset_list})


def _asset_list(name: str, value: Any) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_ROTATED_ASSETS:
        raise p.invalid(f"{name} must list at most {MAX_ROTATED_ASSETS} assets")
    return sorted({p.identifier(name, a) for a in value})


def _succeed(ctx: TxContext, old: str, args: dict[str, Any], kind: str) -> str:
    """Register the successor of account ``old`` (same member, commitment and KYC level,
    a new key by a new certificate of the member's CA), move the free units of the listed
    assets to it, and retire ``old``: it is ``rotated`` and names its successor. Acts
    signed with the old key before stay evidence of the old account (its registration
    event names its certificate)."""
    record = account(ctx.state, old)
    assert record is not None
    verified = verify_account_certificate(ctx.state, ctx.suite.name, record["member"],
                                          args["certificate"], args.get("chain", []),
                                          ctx.time_ms)
    new = ctx.suite.address(verified.public_key)
    if account(ctx.state, new) is not None:
        raise ExecutionFailed(f"account {new} is already registered", Code.ALREADY_EXISTS)
    _move_holdings(ctx, old, new, args.get("assets", []), kind)
    ctx.state.put(account_key(new), {
        **record, "key": verified.public_key.hex(), "issuer": verified.issuer_key_fingerprint,
        "serial": verified.serial, "status": "active", "height": ctx.height,
        "predecessor": old})
    _record_issuers(ctx.state, ctx.suite.name, record["member"], verified)
    ctx.state.put(serial_key(verified.issuer_key_fingerprint, verified.serial), new)
    ctx.state.put(account_key(old), {**record, "status": "rotated", "successor": new})
    _carry_roles_and_seat(ctx.state, old, new)
    ctx.emit(Event(kind, sender=ctx.sender, to=new, details={
        "account": old, "member": record["member"], "reason": args.get("reason", "")}
        | _certificate_details(verified)))
    return new


def _move_holdings(ctx: TxContext, old: str, new: str, assets: list[str], kind: str
                   ) -> None:
    """All units of ``assets`` pass from ``old`` to ``new``; pledged or frozen units refuse
    the move (their pledge and freeze records name ``old``)."""
    for asset in assets:
        holding = custody.get_holding(ctx.state, asset, old)
        if holding["p"] or holding["f"]:
            raise ExecutionFailed(f"{old} has pledged or frozen units of {asset}: release "
                                  "them before the key changes", Code.INVALID_PAYLOAD)
        if holding["q"]:
            custody.move_units(ctx.state, asset, old, new, holding["q"])
            ctx.emit(Event("custody.transfer", asset, old, new, holding["q"],
                           details={"reason": kind}))


def _carry_roles_and_seat(state: StateAccess, old: str, new: str) -> None:
    roles = state.get(role_key(old))
    if roles:
        state.put(role_key(new), roles)
        state.delete(role_key(old))
    seats = state.get(SEATS_KEY) or {}
    if old in seats:
        moved = {**{a: w for a, w in seats.items() if a != old}, new: seats[old]}
        state.put(SEATS_KEY, {a: moved[a] for a in sorted(moved)})


def _rotate(ctx: TxContext, args: dict[str, Any]) -> None:
    """The account itself (signed by its current key) moves to a new key."""
    if account(ctx.state, ctx.sender) is None:
        raise ExecutionFailed(f"account {ctx.sender} is not registered", Code.NOT_FOUND)
    _succeed(ctx, ctx.sender, args, "account.rotate")


def _recover(ctx: TxContext, args: dict[str, Any]) -> None:
    """A registrar of the account's member moves it to a new key when the holder lost
    the old one; the ``account.recover`` event tells the committee and the regulator."""
    record = _account_of_my_member(ctx, args["account"], regulator_may=False)
    if record["status"] not in ("active", "frozen"):
        raise ExecutionFailed(f"account {args['account']} is {record['status']}",
                              Code.INVALID_PAYLOAD)
    _succeed(ctx, args["account"], args, "account.recover")


def _parse_revoke(payload: dict[str, Any]) -> dict[str, Any]:
    return p.parse(payload, {"issuer": _fingerprint, "serial": p.whole(0, 2**160)},
                   {"reason": p.text(500)})


def _revoke_cert(ctx: TxContext, args: dict[str, Any]) -> None:
    """The member that owns the issuing CA records a revocation; the account the
    certificate registered (if any) stops acting."""
    issuer, serial = args["issuer"], args["serial"]
    owner = ctx.state.get(issuer_key(issuer))
    if owner is None:
        raise ExecutionFailed(f"no CA key {issuer} is known", Code.NOT_FOUND)
    if owner != _sender_member(ctx):
        raise ExecutionFailed(f"CA key {issuer} belongs to member {owner}", Code.UNAUTHORISED)
    if _is_revoked(ctx.state, issuer, serial):
        raise ExecutionFailed("that certificate is already revoked", Code.ALREADY_EXISTS)
    ctx.state.put(revoked_key(issuer, serial), {"height": ctx.height,
                                                "reason": args.get("reason", "")})
    address = ctx.state.get(serial_key(issuer, serial))
    if address is not None:
        record = account(ctx.state, address)
        if record is not None and record["status"] != "closed":
            new = {**record, "status": "revoked"}
            policy.with_change(ctx.state, account_key(address), new,
                               policy.check_not_locked_out)
            ctx.state.put(account_key(address), new)
    ctx.emit(Event("cert.revoke", sender=ctx.sender, to=address,
                   details={"issuer": issuer, "serial": serial,
                            "reason": args.get("reason", "")}))


# --- committee actions: members -------------------------------------------------------------

def _parse_admit(args: dict[str, Any]) -> dict[str, Any]:
    parsed = p.parse(args, {"id": p.identifier, "name": p.text(200),
                            "credit_code": _credit_code, "cas": _cert_list(MAX_CAS)},
                     {"registrars": _cert_list(4), "commitments": _digest_list(4)})
    if len(parsed.get("commitments", [])) not in (0, len(parsed.get("registrars", []))):
        raise p.invalid("commitments, when given, name one per registrar certificate")
    if not parsed["cas"]:
        raise p.invalid("a member needs at least one CA certificate")
    return parsed


def _digest_list(limit: int) -> p.Check:
    def check(name: str, value: Any) -> list[bytes]:
        if not isinstance(value, list) or len(value) > limit:
            raise p.invalid(f"{name} must be a list of at most {limit} 32-byte hashes")
        return [p.digest(name, v) for v in value]
    return check


def _check_admit(ctx: TxContext, args: dict[str, Any]) -> None:
    if member(ctx.state, args["id"]) is not None:
        raise ExecutionFailed(f"member {args['id']} exists", Code.ALREADY_EXISTS)
    cas = _ca_records(ctx.state, ctx.suite.name, args["cas"], ctx.time_ms)
    roots = [certs.parse_certificate(der) for _, der in cas]
    for cert in args.get("registrars", []):
        _first_registrar(ctx, roots, cert)


def _first_registrar(ctx: TxContext, roots: list[certs.Certificate], cert: bytes
                     ) -> tuple[str, certs.VerifiedChain]:
    """A registrar certificate a new member brings with its admission (its first
    accounts: nobody of the member could register them before it was one)."""
    try:
        verified = certs.verify_chain(certs.parse_certificate(cert), [], roots,
                                      at_ms=ctx.time_ms, suite_name=ctx.suite.name)
    except certs.CertificateError as exc:
        raise _bad_cert(exc) from None
    address = ctx.suite.address(verified.public_key)
    if account(ctx.state, address) is not None:
        raise ExecutionFailed(f"account {address} is already registered", Code.ALREADY_EXISTS)
    return address, verified


def _apply_admit(ctx: TxContext, args: dict[str, Any], proposal: dict[str, Any],
                 proposal_id: str) -> None:
    cas = _ca_records(ctx.state, ctx.suite.name, args["cas"], ctx.time_ms)
    write_member(ctx.state, ctx.suite.name, args["id"], args["name"], args["credit_code"],
                 cas, ctx.height)
    ctx.emit(Event("member.admit", sender=ctx.sender, details={
        "member": args["id"], "name": args["name"], "credit_code": args["credit_code"],
        "cas": [der.hex() for _, der in cas], "proposal": proposal_id}))
    roots = [certs.parse_certificate(der) for _, der in cas]
    registrars = args.get("registrars", [])
    commitments = args.get("commitments") or [bytes(32)] * len(registrars)
    for cert, committed in zip(registrars, commitments, strict=True):
        address, verified = _first_registrar(ctx, roots, cert)
        ctx.state.put(account_key(address), {
            "member": args["id"], "key": verified.public_key.hex(),
            "issuer": verified.issuer_key_fingerprint, "serial": verified.serial,
            "commitment": committed.hex(), "kyc": 0, "status": "active",
            "height": ctx.height})
        ctx.state.put(serial_key(verified.issuer_key_fingerprint, verified.serial), address)
        ctx.state.put(role_key(address), ["registrar"])
        ctx.emit(Event("account.register", sender=ctx.sender, to=address, details={
            "member": args["id"], "commitment": committed.hex(), "kyc": 0,
            "roles": ["registrar"],
            "proposal": proposal_id} | _certificate_details(verified)))


def write_member(state: StateAccess, suite_name: str, member_id: str, name: str,
                 credit_code: str, cas: list[tuple[str, bytes]], height: int) -> None:
    for fingerprint, der in cas:
        state.put(ca_key(fingerprint), {"member": member_id, "der": der})
        state.put(issuer_key(certs.key_fingerprint(certs.parse_certificate(der), suite_name)),
                  member_id)
    state.put(member_key(member_id), {
        "id": member_id, "name": name, "credit_code": credit_code,
        "cas": [fp for fp, _ in cas], "status": "active", "height": height})


def _parse_member_ref(args: dict[str, Any]) -> dict[str, Any]:
    return p.parse(args, {"id": p.identifier}, {"reason": p.text(500)})


_STATUS_MOVES = {"member.suspend": (("active",), "suspended"),
                 "member.reinstate": (("suspended",), "active"),
                 "member.expel": (("active", "suspended"), "expelled")}


def _member_status_action(name: str) -> Action:
    allowed, to = _STATUS_MOVES[name]

    def new_record(ctx: TxContext, args: dict[str, Any]) -> dict[str, Any]:
        record = member(ctx.state, args["id"])
        if record is None:
            raise ExecutionFailed(f"no member {args['id']!r}", Code.NOT_FOUND)
        if record["status"] not in allowed:
            raise ExecutionFailed(f"member {args['id']} is {record['status']}",
                                  Code.INVALID_PAYLOAD)
        return {**record, "status": to}

    def check(ctx: TxContext, args: dict[str, Any]) -> None:
        policy.with_change(ctx.state, member_key(args["id"]), new_record(ctx, args),
                           policy.check_not_locked_out)

    def apply(ctx: TxContext, args: dict[str, Any], proposal: dict[str, Any],
              proposal_id: str) -> None:
        ctx.state.put(member_key(args["id"]), new_record(ctx, args))
        ctx.emit(Event(name, sender=ctx.sender, details={
            "member": args["id"], "reason": args.get("reason", ""), "proposal": proposal_id}))

    return Action(name, _parse_member_ref, check, apply, f"a member becomes {to}")


def _parse_ca_add(args: dict[str, Any]) -> dict[str, Any]:
    return p.parse(args, {"id": p.identifier, "ca": _cert_bytes})


def _check_ca_add(ctx: TxContext, args: dict[str, Any]) -> None:
    record = _active_member(ctx.state, args["id"])
    if len(record["cas"]) >= MAX_CAS:
        raise ExecutionFailed(f"a member holds at most {MAX_CAS} CA certificates",
                              Code.INVALID_PAYLOAD)
    _ca_records(ctx.state, ctx.suite.name, [args["ca"]], ctx.time_ms)


def _apply_ca_add(ctx: TxContext, args: dict[str, Any], proposal: dict[str, Any],
                  proposal_id: str) -> None:
    ((fingerprint, der),) = _ca_records(ctx.state, ctx.suite.name, [args["ca"]], ctx.time_ms)
    record = _active_member(ctx.state, args["id"])
    ctx.state.put(ca_key(fingerprint), {"member": args["id"], "der": der})
    ctx.state.put(issuer_key(certs.key_fingerprint(certs.parse_certificate(der),
                                                   ctx.suite.name)), args["id"])
    ctx.state.put(member_key(args["id"]), {**record, "cas": [*record["cas"], fingerprint]})
    ctx.emit(Event("member.ca_add", sender=ctx.sender, details={
        "member": args["id"], "ca": der.hex(), "proposal": proposal_id}))


def _parse_ca_remove(args: dict[str, Any]) -> dict[str, Any]:
    return p.parse(args, {"id": p.identifier, "fingerprint": _fingerprint})


def _check_ca_remove(ctx: TxContext, args: dict[str, Any]) -> None:
    record = member(ctx.state, args["id"])
    if record is None or args["fingerprint"] not in record["cas"]:
        raise ExecutionFailed(f"member {args['id']} has no CA {args['fingerprint']}",
                              Code.NOT_FOUND)


def _apply_ca_remove(ctx: TxContext, args: dict[str, Any], proposal: dict[str, Any],
                     proposal_id: str) -> None:
    record = member(ctx.state, args["id"])
    assert record is not None
    ctx.state.put(member_key(args["id"]),
                  {**record, "cas": [fp for fp in record["cas"] if fp != args["fingerprint"]]})
    ctx.emit(Event("member.ca_remove", sender=ctx.sender, details={
        "member": args["id"], "fingerprint": args["fingerprint"], "proposal": proposal_id}))


# --- committee actions: roles and the registration rule ------------------------------------

def _parse_role(args: dict[str, Any]) -> dict[str, Any]:
    """``account``, or ``contract``: a deployed contract's custody account, which has no
    key and is never registered (a token contract needs ``issuer`` to issue its units)."""
    parsed = p.parse(args, {"role": p.identifier},
                     {"account": p.address, "contract": p.identifier})
    if ("account" in parsed) == ("contract" in parsed):
        raise p.invalid("name either account or contract")
    return parsed


def _role_holder(ctx: TxContext, args: dict[str, Any]) -> str:
    if "contract" not in args:
        return args["account"]
    if ctx.state.get(contract_key(args["contract"])) is None:
        raise ExecutionFailed(f"no contract {args['contract']!r}", Code.NOT_FOUND)
    return custody.contract_address(args["contract"])


def _check_role_grant(ctx: TxContext, args: dict[str, Any]) -> None:
    if args["role"] not in defined_roles(ctx.state):
        raise ExecutionFailed(f"no role {args['role']!r} is defined", Code.NOT_FOUND)
    holder = _role_holder(ctx, args)
    who = Subject.of(ctx.state, holder)
    if "account" in args and not who.active:
        raise ExecutionFailed(f"a role needs an active account: {who.why_not}",
                              Code.INVALID_PAYLOAD)
    if args["role"] in who.roles:
        raise ExecutionFailed(f"{holder} already holds {args['role']}", Code.ALREADY_EXISTS)


def _apply_role_grant(ctx: TxContext, args: dict[str, Any], proposal: dict[str, Any],
                      proposal_id: str) -> None:
    holder = _role_holder(ctx, args)
    held = ctx.state.get(role_key(holder)) or []
    ctx.state.put(role_key(holder), sorted([*held, args["role"]]))
    ctx.emit(Event("role.grant", to=holder, details={
        "role": args["role"], "member": Subject.of(ctx.state, holder).member or "",
        "proposal": proposal_id} | ({"contract": args["contract"]} if "contract" in args
                                    else {})))


def _check_role_revoke(ctx: TxContext, args: dict[str, Any]) -> None:
    holder = _role_holder(ctx, args)
    if args["role"] not in (ctx.state.get(role_key(holder)) or []):
        raise ExecutionFailed(f"{holder} does not hold {args['role']}", Code.NOT_FOUND)


def _apply_role_revoke(ctx: TxContext, args: dict[str, Any], proposal: dict[str, Any],
                       proposal_id: str) -> None:
    holder = _role_holder(ctx, args)
    remaining = [r for r in ctx.state.get(role_key(holder)) or [] if r != args["role"]]
    if remaining:
        ctx.state.put(role_key(holder), remaining)
    else:
        ctx.state.delete(role_key(holder))
    ctx.emit(Event("role.revoke", sender=holder, details={
        "role": args["role"], "proposal": proposal_id}))


def _parse_role_define(args: dict[str, Any]) -> dict[str, Any]:
    return p.parse(args, {"role": p.identifier})


def _check_role_define(ctx: TxContext, args: dict[str, Any]) -> None:
    if args["role"] in defined_roles(ctx.state):
        raise ExecutionFailed(f"role {args['role']} is defined", Code.ALREADY_EXISTS)
    if len(defined_roles(ctx.state)) >= 64:
        raise ExecutionFailed("a chain defines at most 64 roles", Code.INVALID_PAYLOAD)


def _apply_role_define(ctx: TxContext, args: dict[str, Any], proposal: dict[str, Any],
                       proposal_id: str) -> None:
    ctx.state.put(ROLES_DEFINED_KEY, sorted([*defined_roles(ctx.state), args["role"]]))
    ctx.emit(Event("role.define", details={"role": args["role"], "proposal": proposal_id}))


def _parse_require(args: dict[str, Any]) -> dict[str, Any]:
    return p.parse(args, {"required": p.one_of("yes", "no")})


def _check_require(ctx: TxContext, args: dict[str, Any]) -> None:
    policy.with_change(ctx.state, IDENTITY_KEY, {"required": args["required"] == "yes"},
                       policy.check_not_locked_out)


def _apply_require(ctx: TxContext, args: dict[str, Any], proposal: dict[str, Any],
                   proposal_id: str) -> None:
    ctx.state.put(IDENTITY_KEY, {"required": args["required"] == "yes"})
    ctx.emit(Event("identity.require", details={"required": args["required"],
                                                "proposal": proposal_id}))


ACTIONS = (
    Action("member.admit", _parse_admit, _check_admit, _apply_admit,
           "admit an institution as a member, with its CA certificates"),
    *(_member_status_action(name) for name in _STATUS_MOVES),
    Action("member.ca_add", _parse_ca_add, _check_ca_add, _apply_ca_add,
           "add a CA certificate to a member"),
    Action("member.ca_remove", _parse_ca_remove, _check_ca_remove, _apply_ca_remove,
           "remove a CA certificate from a member (its accounts stay registered)"),
    Action("role.grant", _parse_role, _check_role_grant, _apply_role_grant,
           "give an account a role, within its member"),
    Action("role.revoke", _parse_role, _check_role_revoke, _apply_role_revoke,
           "take a role away"),
    Action("role.define", _parse_role_define, _check_role_define, _apply_role_define,
           "define a new role name"),
    Action("identity.require", _parse_require, _check_require, _apply_require,
           "require (or stop requiring) registration of every sender"),
)


# --- genesis ----------------------------------------------------------------------------

def genesis_writes(genesis: Genesis) -> dict[bytes, Any]:
    """Founding members, their accounts, the roles defined and the committee's seats."""
    writes: dict[bytes, Any] = {ROLES_DEFINED_KEY: list(BASE_ROLES)}
    suite = genesis.suite
    for doc in genesis.members:
        fingerprints = []
        for pem in doc["cas"]:
            ca = certs.parse_certificate(pem.encode())
            fingerprints.append(certs.fingerprint(ca, suite.name))
            writes[ca_key(fingerprints[-1])] = {"member": doc["id"], "der": ca.der}
            writes[issuer_key(certs.key_fingerprint(ca, suite.name))] = doc["id"]
        writes[member_key(doc["id"])] = {
            "id": doc["id"], "name": doc["name"],
            "credit_code": check_credit_code(doc["credit_code"]), "cas": fingerprints,
            "status": "active", "height": 0}
    for doc in genesis.accounts:
        key = bytes.fromhex(doc["public_key"])
        writes[account_key(suite.address(key))] = {
            "member": doc["member"], "key": doc["public_key"], "issuer": "", "serial": 0,
            "commitment": doc.get("commitment", "00" * 32), "kyc": doc.get("kyc", 0),
            "status": "active", "height": 0}
    committee = dict(genesis.committee) or {
        account: 1 for account, roles in genesis.roles.items() if "admin" in roles}
    writes[SEATS_KEY] = {a: committee[a] for a in sorted(committee)}
    writes[IDENTITY_KEY] = {"required": bool(genesis.members)}
    return writes


MODULE = Module(
    "identity",
    operations=(
        Operation("account.register", _parse_register, _register,
                  "a registrar registers a real-name account by its certificate"),
        Operation("account.freeze", _parse_account_change, _freeze,
                  "a registrar of the account's member, or a regulator, freezes it"),
        Operation("account.unfreeze", _parse_account_change, _unfreeze,
                  "a frozen account acts again"),
        Operation("account.close", _parse_account_change, _close,
                  "the account's member closes it for good"),
        Operation("account.rotate", _parse_rotate, _rotate,
                  "an account moves to a new key (same identity), signed by its old key"),
        Operation("account.recover", _parse_recover, _recover,
                  "a registrar moves an account whose key was lost to a new key"),
        Operation("cert.revoke", _parse_revoke, _revoke_cert,
                  "a member revokes a certificate its CA issued"),
    ),
    actions=ACTIONS,
    genesis=genesis_writes,
)
