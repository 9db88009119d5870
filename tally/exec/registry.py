"""The registry: who is who on a chain of protocol version 4 — read-only.

Members (institutions), their accounts, the roles those accounts hold and the seats of
the committee, as the identity, committee and policy modules store them. Everything
that asks "who is this account" reads it here, so the answer is the same for the
executor, the policies, contracts' host functions and the API.

State::

    member/<id>        {id, name, credit_code, cas: [ca fingerprint hex], status, height}
                       status: active | suspended | expelled
    ca/<fingerprint>   {member, der}: a member's CA certificate (fingerprint = SHA-256
                       of the DER, hex)
    account/<address>  {member, key, cert, serial, commitment, kyc, status, height}
                       status: active | frozen | closed
    role/<address>     sorted role names (the roles module's key): a role is held within
                       the account's member, so ``issuer`` of one bank is not another's
    roles              sorted names of the roles defined on the chain
    seats              {address: weight}: the committee (version 4)
    identity           {"required": bool}: whether only registered accounts may send
                       transactions (true on a chain whose genesis names members)

Invariants: an account belongs to exactly one member for its life; a closed account is
never active again; weights are positive whole numbers.
"""

from __future__ import annotations

from typing import Any

from tally.exec.state import StateReader

SEATS_KEY = b"seats"
IDENTITY_KEY = b"identity"
ROLES_DEFINED_KEY = b"roles"

#: The roles every version-4 chain starts with (the committee may define more).
BASE_ROLES = ("admin", "issuer", "custodian", "regulator", "registrar")


def member_key(member_id: str) -> bytes:
    return b"member/" + member_id.encode()


def ca_key(fingerprint: str) -> bytes:
    return b"ca/" + fingerprint.encode()


def account_key(address: str) -> bytes:
    return b"account/" + address.encode()


def role_key(address: str) -> bytes:
    return b"role/" + address.encode()


def member(state: StateReader, member_id: str) -> dict[str, Any] | None:
    return state.get(member_key(member_id))


def account(state: StateReader, address: str) -> dict[str, Any] | None:
    return state.get(account_key(address))


def identity_required(state: StateReader) -> bool:
    record = state.get(IDENTITY_KEY)
    return bool(record and record.get("required"))


def seats(state: StateReader) -> dict[str, int]:
    return state.get(SEATS_KEY) or {}


def defined_roles(state: StateReader) -> list[str]:
    return state.get(ROLES_DEFINED_KEY) or list(BASE_ROLES)


class Subject:
    """An account as policies see it. Its roles are read when a policy asks for them
    (most transactions' policies do not: one state read fewer on the hot path)."""

    __slots__ = ("_roles", "_state", "active", "address", "member", "registered", "why_not")

    def __init__(self, state: StateReader, address: str, member: str | None,
                 registered: bool, active: bool, why_not: str = "") -> None:
        self._state, self._roles = state, None
        self.address, self.member, self.registered = address, member, registered
        #: May act at all: registered (where the chain requires it), not frozen, closed,
        #: rotated or revoked, and its member neither suspended nor expelled.
        self.active, self.why_not = active, why_not

    @property
    def roles(self) -> tuple[str, ...]:
        if self._roles is None:
            self._roles = tuple(self._state.get(role_key(self.address)) or ())
        return self._roles

    @classmethod
    def of(cls, state: StateReader, address: str) -> Subject:
        record = account(state, address)
        if record is None:
            if identity_required(state):
                return cls(state, address, None, False, False,
                           f"account {address} is not registered")
            return cls(state, address, None, False, True)
        member_id = record["member"]
        if record["status"] != "active":
            return cls(state, address, member_id, True, False,
                       f"account {address} is {record['status']}")
        owner = member(state, member_id)
        if owner is None or owner["status"] != "active":
            status = "gone" if owner is None else owner["status"]
            return cls(state, address, member_id, True, False,
                       f"member {member_id} of account {address} is {status}")
        return cls(state, address, member_id, True, True)


def seat_is_active(state: StateReader, address: str) -> bool:
    return Subject.of(state, address).active
