"""SM2 interoperability: Tally's signatures verify elsewhere, and others' verify in Tally.

Two independent implementations, both directions each:

* ``gmssl`` (pure Python, its own curve arithmetic and Z computation);
* the OpenSSL 3 command line, driven exactly as docs/crypto.md tells users to.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from gmssl import sm2 as gmssl_sm2

from tally.crypto import get_suite, sm2
from tally.crypto.gm import Sm2PrivateKey

DEFAULT_ID = "1234567812345678"
MESSAGES = [b"", b"abc", b"transfer 10 to bob\n", bytes(range(256)) * 3]


def _gmssl(key: Sm2PrivateKey) -> gmssl_sm2.CryptSM2:
    crypt = gmssl_sm2.CryptSM2(private_key=key.to_bytes().hex(), public_key="")
    # Set directly: gmssl's constructor strips a "04" prefix with str.lstrip, which
    # also eats leading '0'/'4' digits of x.
    crypt.public_key = key.public_key[1:].hex()
    return crypt


@pytest.fixture(scope="module")
def keys() -> list[Sm2PrivateKey]:
    gm = get_suite("gm")
    return [gm.generate_private_key(), gm.generate_private_key()]


# --- gmssl -----------------------------------------------------------------------------


def test_gmssl_matches_the_standard_example() -> None:
    # The reference must itself be right for the checks below to mean anything.
    d = "3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8"
    key = get_suite("gm").load_private_key(bytes.fromhex(d))
    k = "59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21"
    crypt = _gmssl(key)
    e = bytes.fromhex(crypt._sm3_z(b"message digest"))
    assert crypt.sign(e, k).upper() == (
        "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3"
        "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA"
    )


def test_tally_signatures_verify_in_gmssl(keys: list[Sm2PrivateKey]) -> None:
    for key in keys:
        crypt = _gmssl(key)
        for message in MESSAGES:
            signature = key.sign(message)
            assert crypt.verify_with_sm3(signature.hex(), message)
            assert not crypt.verify_with_sm3(signature.hex(), message + b"!")


def test_gmssl_signatures_verify_in_tally(keys: list[Sm2PrivateKey]) -> None:
    gm = get_suite("gm")
    for key in keys:
        crypt = _gmssl(key)
        for message in MESSAGES:
            signature = bytes.fromhex(crypt.sign_with_sm3(message))
            assert gm.verify(key.public_key, message, signature)
            assert not gm.verify(key.public_key, message + b"!", signature)


# --- the openssl command line ----------------------------------------------------------

OPENSSL = shutil.which("openssl")


def _openssl(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    assert OPENSSL is not None
    return subprocess.run([OPENSSL, *map(str, args)], capture_output=True, check=check, timeout=30)


def _unavailable(reason: str) -> None:
    """Skip, unless TALLY_REQUIRE_OPENSSL is set (as `make test` does): then fail."""
    if os.environ.get("TALLY_REQUIRE_OPENSSL"):
        pytest.fail(f"TALLY_REQUIRE_OPENSSL is set but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def openssl_cli() -> str:
    if OPENSSL is None:
        _unavailable("no openssl command on PATH")
    version = _openssl("version").stdout.decode()
    if not version.startswith("OpenSSL 3."):
        _unavailable(f"needs the OpenSSL 3 command line for SM2 IDs, found {version!r}")
    assert OPENSSL is not None
    return OPENSSL


# The fixed DER prefix of an SM2 SubjectPublicKeyInfo: id-ecPublicKey, curve SM2
# (1.2.156.10197.1.301), then the BIT STRING holding the 65-byte point (docs/crypto.md).
SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a811ccf5501822d034200")


def _write_public_pem(public_key: bytes, folder: Path) -> Path:
    (folder / "pub.der").write_bytes(SPKI_PREFIX + public_key)
    _openssl(
        "pkey", "-pubin", "-inform", "DER", "-in", folder / "pub.der", "-out", folder / "pub.pem"
    )
    return folder / "pub.pem"


def _write_private_pem(key: Sm2PrivateKey, folder: Path) -> Path:
    # SEC1 ECPrivateKey { version 1, privateKey d, [0] curve SM2 }; openssl derives the
    # public point itself, so agreeing on it below checks Tally's derivation too.
    oid = bytes.fromhex("06082a811ccf5501822d")
    body = bytes.fromhex("020101") + b"\x04\x20" + key.to_bytes() + b"\xa0\x0a" + oid
    (folder / "key.der").write_bytes(b"\x30" + bytes([len(body)]) + body)
    _openssl("pkey", "-inform", "DER", "-in", folder / "key.der", "-out", folder / "key.pem")
    return folder / "key.pem"


def _der_signature_with_openssl(signature: bytes, folder: Path) -> Path:
    # The docs' recipe: let openssl itself turn r || s into DER.
    (folder / "sig.cnf").write_text(
        "asn1=SEQUENCE:sig\n[sig]\n"
        f"r=INTEGER:0x{signature[:32].hex()}\ns=INTEGER:0x{signature[32:].hex()}\n"
    )
    _openssl("asn1parse", "-genconf", folder / "sig.cnf", "-out", folder / "sig.der", "-noout")
    return folder / "sig.der"


def test_tally_signatures_verify_with_openssl(
    openssl_cli: str, keys: list[Sm2PrivateKey], tmp_path: Path
) -> None:
    key = keys[0]
    public_pem = _write_public_pem(key.public_key, tmp_path)
    for message in MESSAGES[1:3]:
        (tmp_path / "msg").write_bytes(message)
        signature_der = _der_signature_with_openssl(key.sign(message), tmp_path)
        pkeyutl = _openssl(
            "pkeyutl", "-verify", "-pubin", "-inkey", public_pem, "-rawin",
            "-in", tmp_path / "msg", "-sigfile", signature_der,
            "-digest", "sm3", "-pkeyopt", f"distid:{DEFAULT_ID}",
        )  # fmt: skip
        assert b"Signature Verified Successfully" in pkeyutl.stdout
        dgst = _openssl(
            "dgst", "-sm3", "-verify", public_pem, "-sigopt", f"distid:{DEFAULT_ID}",
            "-signature", signature_der, tmp_path / "msg",
        )  # fmt: skip
        assert b"Verified OK" in dgst.stdout
        wrong_id = _openssl(
            "dgst", "-sm3", "-verify", public_pem, "-sigopt", "distid:1234567812345679",
            "-signature", signature_der, tmp_path / "msg", check=False,
        )  # fmt: skip
        assert wrong_id.returncode != 0


def test_openssl_signatures_verify_in_tally(
    openssl_cli: str, keys: list[Sm2PrivateKey], tmp_path: Path
) -> None:
    gm = get_suite("gm")
    key = keys[1]
    private_pem = _write_private_pem(key, tmp_path)
    spki = _openssl("pkey", "-in", private_pem, "-pubout", "-outform", "DER").stdout
    assert spki == SPKI_PREFIX + key.public_key
    for message in MESSAGES[1:3]:
        (tmp_path / "msg").write_bytes(message)
        _openssl(
            "dgst", "-sm3", "-sign", private_pem, "-sigopt", f"distid:{DEFAULT_ID}",
            "-out", tmp_path / "dgst.sig", tmp_path / "msg",
        )  # fmt: skip
        _openssl(
            "pkeyutl", "-sign", "-inkey", private_pem, "-rawin", "-in", tmp_path / "msg",
            "-digest", "sm3", "-pkeyopt", f"distid:{DEFAULT_ID}", "-out", tmp_path / "pkey.sig",
        )  # fmt: skip
        for name in ("dgst.sig", "pkey.sig"):
            signature = sm2.der_to_rs((tmp_path / name).read_bytes())
            assert gm.verify(key.public_key, message, signature)
            assert not gm.verify(key.public_key, message + b"!", signature)


def test_openssl_generated_key_loads_in_tally(openssl_cli: str, tmp_path: Path) -> None:
    _openssl("genpkey", "-algorithm", "SM2", "-out", tmp_path / "key.pem")
    sec1 = _openssl("pkey", "-in", tmp_path / "key.pem", "-traditional", "-outform", "DER").stdout
    spki = _openssl("pkey", "-in", tmp_path / "key.pem", "-pubout", "-outform", "DER").stdout
    # SEC1: 30 len 02 01 01 04 20 <d: 32 bytes> ...; SPKI: fixed prefix then the point.
    assert sec1[2:7] == bytes.fromhex("0201010420")
    assert spki[: len(SPKI_PREFIX)] == SPKI_PREFIX
    key = get_suite("gm").load_private_key(sec1[7:39])
    assert key.public_key == spki[len(SPKI_PREFIX) :]
