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

from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class Subject:
    """An account as policies see it."""

    address: str
    member: str | None
    roles: tuple[str, ...]
    registered: bool
    #: May act at all: registered (where the chain requires it), not frozen or closed,
    #: and its member neither suspended nor expelled.
    active: bool
    why_not: str = ""

    @classmethod
    def of(cls, state: StateReader, address: str) -> Subject:
        record = account(state, address)
        roles = tuple(state.get(role_key(address)) or ())
        if record is None:
            if identity_required(state):
                return cls(address, None, roles, False, False,
                           f"account {address} is not registered")
            return cls(address, None, roles, False, True)
        member_id = record["member"]
        if record["status"] != "active":
            return cls(address, member_id, roles, True, False,
                       f"account {address} is {record['status']}")
        owner = member(state, member_id)
        if owner is None or owner["status"] != "active":
            status = "gone" if owner is None else owner["status"]
            return cls(address, member_id, roles, True, False,
                       f"member {member_id} of account {address} is {status}")
        return cls(address, member_id, roles, True, True)


def seat_is_active(state: StateReader, address: str) -> bool:
    return Subject.of(state, address).active
