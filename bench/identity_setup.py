"""Shared by the identity benchmarks: a member CA and certificates for Tally keys, and a
protocol-version-4 genesis whose accounts are registered.

Certificates for ``intl`` are made in process with ``cryptography`` (Ed25519: thousands
a second, as a member's CA service would issue them); ``gm`` ones with the ``openssl``
command line (cryptography has no SM2), about ten a second, as tests/support/openssl_ca.py
makes them.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ed25519  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

from tally.identity.credit_code import check_character  # noqa: E402

#: Certificates are valid from a day before this to ten years after.
NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
GENESIS_TIME_MS = int(NOW.timestamp() * 1000)
CREDIT_BODY = "91310000100000001"


def credit_code() -> str:
    return CREDIT_BODY + check_character(CREDIT_BODY)


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Bench Bank"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common)])


def member_ca(suite_name: str, workdir: Path) -> tuple[bytes, Callable[[bytes, str], bytes]]:
    """(the CA certificate's PEM, a function making a leaf PEM for a raw public key)."""
    if suite_name == "gm":
        from tests.support.openssl_ca import OpensslPki

        pki = OpensslPki(workdir / "pki")
        ca = pki.root("Bench Bank CA", "sm2")
        return ca.pem, lambda key, name: pki.leaf(ca, name, public_key=key)
    ca_key = ed25519.Ed25519PrivateKey.generate()
    ca_cert = (x509.CertificateBuilder().subject_name(_name("Bench CA"))
               .issuer_name(_name("Bench CA")).public_key(ca_key.public_key())
               .serial_number(1).not_valid_before(NOW - dt.timedelta(days=1))
               .not_valid_after(NOW + dt.timedelta(days=3650))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                            False, False), critical=True)
               .sign(ca_key, None))
    serials = iter(range(2, 1 << 62))

    def leaf(key: bytes, name: str) -> bytes:
        cert = (x509.CertificateBuilder().subject_name(_name(name))
                .issuer_name(ca_cert.subject)
                .public_key(ed25519.Ed25519PublicKey.from_public_bytes(key))
                .serial_number(next(serials)).not_valid_before(NOW - dt.timedelta(days=1))
                .not_valid_after(NOW + dt.timedelta(days=365))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                               critical=True)
                .add_extension(x509.KeyUsage(True, False, False, False, False, False, False,
                                             False, False), critical=True)
                .sign(ca_key, None))
        return cert.public_bytes(serialization.Encoding.PEM)

    return ca_cert.public_bytes(serialization.Encoding.PEM), leaf


def identity_parts(ca_pem: bytes, staff: dict[str, list[str]], public_keys: dict[str, bytes]
                   ) -> dict[str, object]:
    """``make_genesis`` keyword arguments for one member, "bank", whose accounts are
    ``public_keys`` (address -> raw key) and whose staff roles are ``staff``."""
    return {
        "members": ({"id": "bank", "name": "Bench Bank", "credit_code": credit_code(),
                     "cas": [ca_pem.decode()]},),
        "accounts": tuple({"member": "bank", "public_key": key.hex(), "kyc": 1}
                          for key in public_keys.values()),
        "committee": {address: 1 for address, roles in staff.items() if "admin" in roles},
    }
