"""The commitment to a person's or company's identity data: what the chain holds instead
of the data itself.

A member keeps its customer's record (name, ID type and number, as the member's KYC
process collected them) and a random 32-byte salt; the chain holds only::

    commitment = H(canonical_cbor({"v": 1, "record": record, "salt": salt}))

with ``H`` the chain's suite hash (SHA-256 for ``intl``, SM3 for ``gm``) and canonical
CBOR as RFC 8949 §4.2.1 defines it (deterministic encoding: shortest forms, map keys
sorted bytewise). The record's values are text. The salt makes a guessable record (a
name and a birth date) unrecoverable from the commitment; disclosing record and salt to
a court or regulator lets it recompute the commitment offline and compare it with the one
the chain's ``account.register`` event carries (``tally account disclose`` writes the
disclosure file, ``tally account check-disclosure`` checks one).
"""

from __future__ import annotations

import secrets
from typing import Any

from tally import codec
from tally.crypto import Suite

SALT_BYTES = 32
MAX_RECORD_FIELDS = 32


def new_salt() -> bytes:
    return secrets.token_bytes(SALT_BYTES)


def check_record(record: Any) -> dict[str, str]:
    """A record is a map of up to 32 text fields of up to 256 characters each."""
    if not isinstance(record, dict) or not 0 < len(record) <= MAX_RECORD_FIELDS:
        raise ValueError(f"an identity record is a map of 1 to {MAX_RECORD_FIELDS} fields")
    for key, value in record.items():
        if not isinstance(key, str) or not isinstance(value, str) or len(key) > 64 \
                or len(value) > 256:
            raise ValueError("identity record fields are text (names ≤ 64, values ≤ 256)")
    return dict(record)


def commit(suite: Suite, record: dict[str, str], salt: bytes) -> bytes:
    if len(salt) != SALT_BYTES:
        raise ValueError(f"the salt is {SALT_BYTES} bytes")
    return suite.hash(codec.encode({"v": 1, "record": check_record(record), "salt": salt}))


def disclosure(suite: Suite, record: dict[str, str], salt: bytes) -> dict[str, Any]:
    """What a member hands a court: the record, the salt, and the commitment they make."""
    return {"suite": suite.name, "record": record, "salt": salt.hex(),
            "commitment": commit(suite, record, salt).hex()}


def check_disclosure(suite: Suite, doc: Any, commitment: bytes) -> dict[str, str]:
    """The disclosed record, if it and its salt make ``commitment``; ValueError if not."""
    if not isinstance(doc, dict) or not {"record", "salt"} <= set(doc):
        raise ValueError("a disclosure has a record and a salt")
    try:
        salt = bytes.fromhex(doc["salt"])
    except (TypeError, ValueError):
        raise ValueError("the salt must be hex") from None
    if commit(suite, doc["record"], salt) != commitment:
        raise ValueError("the record and salt do not make this commitment")
    return dict(doc["record"])
