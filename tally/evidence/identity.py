"""Evidence of identity: what a verified bundle of a registration proves about who an
account is.

A bundle whose event is ``account.register``, ``account.rotate`` or ``account.recover``
(protocol version 4) proves, once the standalone verifier accepted it (inclusion,
quorum, genesis), that the chain recorded the event's details: the member, the
commitment to the person's data, the KYC level, and the account's certificate with the
path to the member's CA as the chain verified it. :func:`identity_facts` checks that
path again, offline, at the event's block time (tally.identity.certs: every signature,
validity, key usage, the algorithm the suite allows), checks that the certificate binds
the key of the registered address, and says whether the root is a CA that the bundle's
genesis names for that member (founding members); for a member admitted later, the CA is
in the ``member.admit`` event, proven by its own bundle.

Revocations recorded later do not undo what the bundle proves: it proves the registration
as of its height. A court asks for a later ``cert.revoke`` event when that matters.
"""

from __future__ import annotations

import base64
from typing import Any

from tally import codec
from tally.crypto import get_suite
from tally.evidence.verify import EvidenceError
from tally.identity import certs

REGISTRATIONS = ("account.register", "account.rotate", "account.recover")


def identity_facts(bundle: dict[str, Any], event: dict[str, Any]) -> list[str]:
    """Facts in words about a verified registration bundle (``event``: the verdict's
    event); [] for another event. Raises EvidenceError (reason ``identity``) when the
    recorded certificate path does not verify."""
    if event.get("type") not in REGISTRATIONS:
        return []
    genesis = codec.decode(base64.b64decode(bundle["genesis"]))
    suite = get_suite(genesis["suite"])
    details = event["details"]
    try:
        leaf = certs.parse_certificate(bytes.fromhex(details["certificate"]))
        path = [certs.parse_certificate(bytes.fromhex(c)) for c in details["path"]]
        root = path[-1]
        verified = certs.verify_chain(leaf, path[:-1], [root], at_ms=event["time"],
                                      suite_name=suite.name, usage="account")
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise EvidenceError("identity", f"the recorded certificate path does not verify: "
                                        f"{exc}") from None
    if suite.address(verified.public_key) != event["to"]:
        raise EvidenceError("identity", "the recorded certificate binds another key than the "
                                        "registered account's")
    member = details["member"]
    founders = {m["id"]: m["cas"] for m in genesis.get("members", [])}
    root_pem_ders = {certs.parse_certificate(pem.encode()).der
                     for pem in founders.get(member, [])}
    anchor = (f"a CA that genesis names for member {member}" if root.der in root_pem_ders
              else f"the CA recorded for member {member} (prove it with the member.admit "
                   "event's bundle)")
    return [f"Account {event['to']} was registered for member {member} with commitment "
            f"{details['commitment']} and KYC level {details['kyc']}.",
            f"Its certificate (serial {verified.serial}, subject {verified.subject}) "
            f"verifies at the event's block time through {len(path) - 1} intermediate(s) "
            f"to {anchor}, and binds the account's key."]
