"""X.509 certificate chains of members' CAs, verified as pure, deterministic functions.

A member (an institution) registers its CA certificate on chain; it issues X.509
certificates (RFC 5280) to its customers, staff and nodes, and an account may act only
once a certificate from its member's CA binds the account's public key. Validators
verify those chains inside block execution, so everything here is a pure function of
its arguments:

* time is the block time ``at_ms`` (integer milliseconds), never a clock;
* the trust anchors, the intermediates, and the revoked ``(issuer key, serial)`` pairs
  are arguments, never files, a network fetch, CRL or OCSP;
* whatever the order of ``roots`` or ``revoked``, the answer is the same: candidate
  roots are tried in fingerprint order, and checks run in one fixed order (below), the
  first failure being the one reported;
* a refusal is always a :class:`CertificateError` with a stable ``reason``, never
  another exception, whatever the bytes (the tests flip random bytes to show it).

What is accepted, per suite (anything else is refused with ``reason="algorithm"``):

* ``intl``: Ed25519 (RFC 8410; verified under ZIP 215 like every Ed25519 signature on
  a Tally chain, decision 0013) and ECDSA P-256 with SHA-256 (RFC 5758);
* ``gm``: SM2 with SM3 only (GM/T 0015-2012; key ``id-ecPublicKey`` on curve
  1.2.156.10197.1.301, signature 1.2.156.10197.1.501), verified with the default
  distinguishing ID ``"1234567812345678"`` (GM/T 0009-2012, also fixed by RFC 8998).
  OpenSSL 3.0 signs with an *empty* ID unless told ``-sigopt
  distid:1234567812345678``; such a certificate is refused (``bad_signature``) with a
  message that says so.

The checks, in order, for the path ``leaf, intermediates..., root``:

1. length: at most :data:`MAX_CHAIN_LENGTH` certificates, root and leaf included;
2. algorithms: every key and signature allowed by the suite, each signature of the
   kind its issuer's key makes;
3. names: each certificate's issuer is the next one's subject (exact DER bytes, a
   strict form of RFC 5280 §7.1 name matching);
4. the intermediates are CAs (basicConstraints ``CA:TRUE``, keyUsage ``keyCertSign``,
   ``pathLenConstraint`` respected, RFC 5280 §4.2.1.3, §4.2.1.9) and no certificate
   carries a critical extension this module does not enforce (§4.2);
5. the leaf fits its ``usage``, and binds ``public_key`` when one is given;
6. every certificate is valid at ``at_ms``: ``notBefore <= at_ms <= notAfter``;
7. the root: among ``roots`` named as the top certificate's issuer, in fingerprint
   order, the first whose key verifies its signature; it must be a valid CA too;
8. every other signature, leaf first;
9. revocation: no ``(issuer key fingerprint, serial)`` of the path is in ``revoked``.

Revocation names the issuer by its *key* (the suite's hash of its SubjectPublicKeyInfo),
not by its certificate's hash: an ECDSA signature has two valid forms (``s`` and
``n - s``), so anyone can re-encode an intermediate CA certificate under a new
certificate hash, but not under a new key.

Parsing is a small strict DER walk (X.690 DER; here) for everything a verdict depends
on: the signed bytes, the signature, the algorithm identifiers, the public key (which
``cryptography`` cannot load for SM2), the serial, the names as bytes, basicConstraints,
keyUsage and the critical flags. ``cryptography`` parses the whole certificate as a
second gate and supplies the two validity times and the RFC 4514 names shown to people.
So a newer ``cryptography`` that grows stricter about some extension cannot change an
answer; one that refuses a certificate outright would (``malformed``), which makes an
upgrade of ``cryptography`` a change every validator makes together (decision 0027).
"""

from __future__ import annotations

import binascii
import hashlib
import warnings
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import NamedTuple

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from tally.crypto import get_suite, sm2
from tally.crypto.sm3 import sm3
from tally.errors import Code, TallyError

__all__ = [
    "MAX_CERTIFICATE_SIZE",
    "MAX_CHAIN_LENGTH",
    "USAGES",
    "Certificate",
    "CertificateError",
    "VerifiedChain",
    "check_root",
    "fingerprint",
    "key_fingerprint",
    "key_matches",
    "parse_certificate",
    "pem",
    "public_key_pem",
    "verify_chain",
]

#: Input larger than this (PEM or DER) is refused before any parsing. Real
#: certificates are 0.5-2 KiB.
MAX_CERTIFICATE_SIZE = 16 * 1024
#: The most certificates in a path, root and leaf included (so two intermediates).
MAX_CHAIN_LENGTH = 4
#: What a leaf may be verified for: an account's or a node's signing key, or a CA.
USAGES = ("account", "node", "ca")


class CertificateError(TallyError, ValueError):
    """A certificate or chain that is refused. ``reason`` is one of the constants below,
    stable for clients and tests; the message says which certificate and why."""

    code = Code.INVALID_PAYLOAD

    MALFORMED = "malformed"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    REVOKED = "revoked"
    UNKNOWN_CA = "unknown_ca"
    BAD_SIGNATURE = "bad_signature"
    KEY_MISMATCH = "key_mismatch"
    ALGORITHM = "algorithm"
    KEY_USAGE = "key_usage"
    NOT_A_CA = "not_a_ca"
    CHAIN_TOO_LONG = "chain_too_long"
    CRITICAL_EXTENSION = "critical_extension"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.message = message
        self.reason = reason

    def to_dict(self) -> dict[str, str]:
        return super().to_dict() | {"reason": self.reason}


# --- algorithms --------------------------------------------------------------------------

# OID contents octets (X.690 §8.19), as they appear in DER.
_OID_ED25519 = bytes.fromhex("2b6570")  # 1.3.101.112, RFC 8410
_OID_EC_PUBLIC_KEY = bytes.fromhex("2a8648ce3d0201")  # 1.2.840.10045.2.1, RFC 5480
_OID_P256 = bytes.fromhex("2a8648ce3d030107")  # 1.2.840.10045.3.1.7 prime256v1
_OID_SM2_CURVE = bytes.fromhex("2a811ccf5501822d")  # 1.2.156.10197.1.301
_OID_ECDSA_SHA256 = bytes.fromhex("2a8648ce3d040302")  # 1.2.840.10045.4.3.2, RFC 5758
_OID_SM2_SM3 = bytes.fromhex("2a811ccf55018375")  # 1.2.156.10197.1.501, GM/T 0006

ED25519 = "ed25519"
ECDSA_P256 = "ecdsa-p256"
SM2 = "sm2"

#: Key algorithms each suite accepts anywhere in a path.
_SUITE_KEYS: dict[str, tuple[str, ...]] = {"intl": (ED25519, ECDSA_P256), "gm": (SM2,)}
#: The key algorithm of an account on each suite (what :func:`key_matches` compares).
_ACCOUNT_KEY = {"intl": ED25519, "gm": SM2}
#: Signature algorithm name -> the key algorithm that makes it.
_SIGNER_KEY = {"ed25519": ED25519, "ecdsa-p256-sha256": ECDSA_P256, "sm2-sm3": SM2}

_NULL = b"\x05\x00"


# --- a strict DER walk -------------------------------------------------------------------


class _Malformed(Exception):
    pass


def _tlv(data: bytes, at: int, end: int) -> tuple[int, int, int]:
    """(tag, contents start, contents end) of the DER element at ``at``: one-byte tags,
    definite minimal lengths (X.690 §10.1), contents within ``end``."""
    if at + 2 > end:
        raise _Malformed("truncated element")
    tag, first = data[at], data[at + 1]
    if tag & 0x1F == 0x1F:
        raise _Malformed("multi-byte tag")
    at += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 3 or at + count > end:
            raise _Malformed("bad length")
        length = int.from_bytes(data[at : at + count], "big")
        if length < 0x80 or data[at] == 0:
            raise _Malformed("non-minimal length")
        at += count
    if at + length > end:
        raise _Malformed("element runs past its container")
    return tag, at, at + length


def _expect(data: bytes, at: int, end: int, tag: int) -> tuple[int, int]:
    found, start, stop = _tlv(data, at, end)
    if found != tag:
        raise _Malformed(f"expected tag 0x{tag:02x}, found 0x{found:02x}")
    return start, stop


def _algorithm(data: bytes, start: int, end: int) -> tuple[bytes, bytes]:
    """(OID contents, parameters TLV or b"") of an AlgorithmIdentifier's contents."""
    oid_start, oid_end = _expect(data, start, end, 0x06)
    return data[oid_start:oid_end], data[oid_end:end]


def _bit_string(data: bytes, start: int, end: int) -> bytes:
    """A BIT STRING's bytes; DER allows no unused bits in a signature or key."""
    if start >= end or data[start] != 0:
        raise _Malformed("a signature or key BIT STRING must have no unused bits")
    return data[start + 1 : end]


def _check_name(data: bytes, start: int, end: int) -> None:
    """A Name's contents: SETs of (OID, value) SEQUENCEs, nothing else. Names are
    compared as bytes; this keeps what is compared well-formed."""
    at = start
    while at < end:
        set_start, at = _expect(data, at, end, 0x31)
        if set_start == at:
            raise _Malformed("an empty RelativeDistinguishedName")
        inner = set_start
        while inner < at:
            pair_start, inner = _expect(data, inner, at, 0x30)
            _, oid_end = _expect(data, pair_start, inner, 0x06)
            if _tlv(data, oid_end, inner)[2] != inner:
                raise _Malformed("an attribute is an OID and one value")


def _dotted(oid: bytes) -> str:
    """An OID's dotted form, for messages and unknown algorithm names."""
    arcs: list[int] = []
    value = 0
    for byte in oid:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if not arcs:
        return "?"
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in [first, arcs[0] - 40 * first, *arcs[1:]])


def _signature_algorithm(oid: bytes, params: bytes) -> str:
    if oid == _OID_ED25519 and params == b"":
        return "ed25519"
    if oid == _OID_ECDSA_SHA256 and params == b"":
        return "ecdsa-p256-sha256"
    if oid == _OID_SM2_SM3 and params in (b"", _NULL):
        return "sm2-sm3"
    return _dotted(oid)


def _key(oid: bytes, params: bytes, bits: bytes) -> tuple[str, bytes]:
    """(key algorithm, raw public key) of a SubjectPublicKeyInfo. Tally's encodings:
    Ed25519 the 32-byte key, P-256 and SM2 the 65-byte uncompressed point."""
    if oid == _OID_ED25519 and params == b"":
        if len(bits) != 32:
            raise _Malformed("an Ed25519 key is 32 bytes")
        return ED25519, bits
    if oid == _OID_EC_PUBLIC_KEY and params in (b"\x06\x08" + _OID_P256, b"\x06\x08" + _OID_SM2_CURVE):
        if len(bits) != 65 or bits[0] != 0x04:
            raise _Malformed("an EC key must be an uncompressed 65-byte point")
        if params.endswith(_OID_P256):
            return ECDSA_P256, bits
        if not sm2.is_public_key_encoding(bits):
            raise _Malformed("SM2 key coordinates out of range")
        return SM2, bits
    if oid == _OID_EC_PUBLIC_KEY and params[:1] == b"\x06":
        return f"{_dotted(oid)}/{_dotted(params[2:])}", bits
    return _dotted(oid), bits


# --- certificates ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Certificate:
    """One parsed certificate: what verification needs, read once. Immutable, so one
    parse may be shared (see :func:`parse_certificate`'s cache)."""

    #: The certificate's DER, exactly as signed and as fingerprinted.
    der: bytes
    #: The DER of tbsCertificate: the bytes the issuer signed.
    tbs: bytes
    #: The signature value (DER ``ECDSA-Sig-Value`` for ECDSA and SM2, 64 bytes for Ed25519).
    signature: bytes
    #: ``"ed25519"``, ``"ecdsa-p256-sha256"``, ``"sm2-sm3"``, or the dotted OID of another.
    signature_algorithm: str
    #: ``"ed25519"``, ``"ecdsa-p256"``, ``"sm2"``, or the dotted OID(s) of another.
    key_algorithm: str
    #: The public key in Tally's raw encoding (see :func:`_key`).
    public_key: bytes
    #: The SubjectPublicKeyInfo DER (what :func:`key_fingerprint` hashes).
    spki: bytes
    serial: int
    #: Issuer and subject Name DER, compared byte for byte when chaining.
    issuer_der: bytes
    subject_der: bytes
    not_before_ms: int
    not_after_ms: int
    #: basicConstraints: CA flag and pathLenConstraint (None: absent or unlimited).
    is_ca: bool
    path_length: int | None
    #: keyUsage bits that are set, sorted; None when the extension is absent.
    key_usage: tuple[str, ...] | None
    #: Dotted OIDs of critical extensions this module does not enforce, sorted.
    unhandled_critical: tuple[str, ...]
    _x509: x509.Certificate = field(compare=False, repr=False)

    @property
    def subject(self) -> str:
        """The subject in RFC 4514 form, for people. Made on demand (``cryptography``
        builds a Name in about as long as the rest of a parse takes) and never raising:
        a name it cannot render is shown as ``#`` and its DER in hex."""
        return _rfc4514(self._x509, self.subject_der, subject=True)

    @property
    def issuer(self) -> str:
        """The issuer in RFC 4514 form (like :attr:`subject`)."""
        return _rfc4514(self._x509, self.issuer_der, subject=False)


def _rfc4514(cert: x509.Certificate, der: bytes, *, subject: bool) -> str:
    try:
        with warnings.catch_warnings():  # cryptography warns of odd attribute lengths
            warnings.simplefilter("ignore")
            return (cert.subject if subject else cert.issuer).rfc4514_string()
    except Exception:  # a name cryptography does not decode; it was compared as bytes
        return "#" + der.hex()


def _malformed(message: str) -> CertificateError:
    return CertificateError(CertificateError.MALFORMED, message)


def _der_of(data: bytes) -> bytes:
    """The DER of exactly one certificate, given as DER or as one PEM block."""
    if data[:1] == b"\x30":
        return data
    text = data.strip()
    begin, end = b"-----BEGIN CERTIFICATE-----", b"-----END CERTIFICATE-----"
    if not (text.startswith(begin) and text.endswith(end)):
        raise _malformed("expected DER or exactly one PEM CERTIFICATE block")
    body = text[len(begin) : len(text) - len(end)]
    if b"-----" in body:
        raise _malformed("expected exactly one PEM CERTIFICATE block")
    try:
        return binascii.a2b_base64(b"".join(body.split()), strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise _malformed(f"PEM body is not base64: {exc}") from None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


def _milliseconds(moment: datetime) -> int:
    return (moment - _EPOCH) // _MILLISECOND


def parse_certificate(data: bytes | bytearray | memoryview) -> Certificate:
    """Parse one certificate, DER or PEM. Anything else, or more than
    :data:`MAX_CERTIFICATE_SIZE` bytes, is a :class:`CertificateError` ``malformed``."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise _malformed("a certificate is bytes")
    if len(data) > MAX_CERTIFICATE_SIZE:
        raise _malformed(f"{len(data)} bytes; a certificate is at most {MAX_CERTIFICATE_SIZE}")
    return _parse_der(_der_of(bytes(data)))


@lru_cache(maxsize=1024)
def _parse_der(der: bytes) -> Certificate:
    # Members' CA certificates come back from state for every registration: a parse is
    # pure, so it is kept (Certificate is immutable). Refusals are not cached.
    try:
        fields = _walk(der)
    except _Malformed as exc:
        raise _malformed(f"not a DER certificate: {exc}") from None
    try:
        return _complete(der, fields)
    except CertificateError:
        raise
    except Exception as exc:  # cryptography's parser refuses with several exception types
        raise _malformed(f"not a valid X.509 certificate: {exc}") from None


def _serial(contents: bytes) -> int:
    """A serial number: a positive INTEGER of at most 20 octets, minimally encoded
    (RFC 5280 §4.1.2.2, X.690 §8.3.2)."""
    if not 1 <= len(contents) <= 20:
        raise _Malformed("a serial number has 1 to 20 octets")
    if len(contents) > 1 and contents[0] == 0 and not contents[1] & 0x80:
        raise _Malformed("a serial number is minimally encoded")
    value = int.from_bytes(contents, "big", signed=True)
    if value <= 0:
        raise _Malformed("a serial number is positive")
    return value


def _walk(der: bytes) -> _Fields:
    end = len(der)
    cert_start, cert_end = _expect(der, 0, end, 0x30)
    if cert_end != end:
        raise _Malformed("bytes after the certificate")
    tbs_at = cert_start
    tbs_start, tbs_end = _expect(der, tbs_at, cert_end, 0x30)
    tbs = der[tbs_at:tbs_end]
    outer_start, outer_end = _expect(der, tbs_end, cert_end, 0x30)
    outer = der[outer_start:outer_end]
    sig_start, sig_end = _expect(der, outer_end, cert_end, 0x03)
    if sig_end != cert_end:
        raise _Malformed("bytes after the signature")
    signature = _bit_string(der, sig_start, sig_end)
    # tbsCertificate: [0] version, serial, signature, issuer, validity, subject, spki, ...
    at = tbs_start
    tag, _, stop = _tlv(der, at, tbs_end)
    if tag == 0xA0:
        at = stop
    serial_start, at = _expect(der, at, tbs_end, 0x02)
    serial = _serial(der[serial_start:at])
    inner_start, inner_end = _expect(der, at, tbs_end, 0x30)
    if der[inner_start:inner_end] != outer:
        raise _Malformed("the signed and the outer signature algorithms differ")
    signature_algorithm = _signature_algorithm(*_algorithm(der, inner_start, inner_end))
    issuer_at = inner_end
    issuer_start, issuer_end = _expect(der, issuer_at, tbs_end, 0x30)
    _check_name(der, issuer_start, issuer_end)
    _, validity_end = _expect(der, issuer_end, tbs_end, 0x30)
    subject_at = validity_end
    subject_start, subject_end = _expect(der, subject_at, tbs_end, 0x30)
    _check_name(der, subject_start, subject_end)
    spki_start, spki_end = _expect(der, subject_end, tbs_end, 0x30)
    alg_start, alg_end = _expect(der, spki_start, spki_end, 0x30)
    key_oid, key_params = _algorithm(der, alg_start, alg_end)
    bits_start, bits_end = _expect(der, alg_end, spki_end, 0x03)
    if bits_end != spki_end:
        raise _Malformed("bytes after the public key")
    key_algorithm, public_key = _key(key_oid, key_params, _bit_string(der, bits_start, bits_end))
    at = spki_end
    for optional in (0x81, 0x82):  # issuerUniqueID, subjectUniqueID: read past them
        if at < tbs_end and der[at] == optional:
            at = _tlv(der, at, tbs_end)[2]
    extensions = _Extensions(False, None, None, ())
    if at < tbs_end:
        outer_start, outer_end = _expect(der, at, tbs_end, 0xA3)
        list_start, list_end = _expect(der, outer_start, outer_end, 0x30)
        if list_end != outer_end or outer_end != tbs_end:
            raise _Malformed("bytes after the extensions")
        extensions = _extensions(der, list_start, list_end)
    return _Fields(tbs, signature, signature_algorithm, key_algorithm, public_key,
                   der[subject_end:spki_end], der[issuer_at:issuer_end],
                   der[subject_at:subject_end], serial, extensions)


class _Extensions(NamedTuple):
    is_ca: bool
    path_length: int | None
    key_usage: tuple[str, ...] | None
    unhandled_critical: tuple[str, ...]


class _Fields(NamedTuple):
    tbs: bytes
    signature: bytes
    signature_algorithm: str
    key_algorithm: str
    public_key: bytes
    spki: bytes
    issuer_der: bytes
    subject_der: bytes
    serial: int
    extensions: _Extensions


_OID_BASIC_CONSTRAINTS = bytes.fromhex("551d13")  # 2.5.29.19
_OID_KEY_USAGE = bytes.fromhex("551d0f")  # 2.5.29.15
#: keyUsage's named bits, in bit order (RFC 5280 §4.2.1.3).
_KEY_USAGE_BITS = ("digital_signature", "content_commitment", "key_encipherment",
                   "data_encipherment", "key_agreement", "key_cert_sign", "crl_sign",
                   "encipher_only", "decipher_only")


def _extensions(der: bytes, start: int, end: int) -> _Extensions:
    """The two extensions Tally enforces, read here, and the OIDs of other critical
    ones. Non-critical extensions Tally does not use are not decoded at all."""
    seen: set[bytes] = set()
    is_ca, path_length, key_usage = False, None, None
    unhandled: list[str] = []
    at = start
    while at < end:
        ext_start, at = _expect(der, at, end, 0x30)
        oid_start, oid_end = _expect(der, ext_start, at, 0x06)
        oid = der[oid_start:oid_end]
        if oid in seen:
            raise _Malformed(f"extension {_dotted(oid)} appears twice")
        seen.add(oid)
        critical = False
        inner = oid_end
        if inner < at and der[inner] == 0x01:
            bool_start, inner = _expect(der, inner, at, 0x01)
            if der[bool_start:inner] != b"\xff":  # DER: TRUE is 0xff, FALSE is left out
                raise _Malformed("critical is encoded TRUE or not at all")
            critical = True
        value_start, value_end = _expect(der, inner, at, 0x04)
        if value_end != at:
            raise _Malformed("bytes after an extension's value")
        if oid == _OID_BASIC_CONSTRAINTS:
            is_ca, path_length = _basic_constraints(der, value_start, value_end)
        elif oid == _OID_KEY_USAGE:
            key_usage = _key_usage(der, value_start, value_end)
        elif critical:
            unhandled.append(_dotted(oid))
    return _Extensions(is_ca, path_length, key_usage, tuple(sorted(unhandled)))


def _basic_constraints(der: bytes, start: int, end: int) -> tuple[bool, int | None]:
    seq_start, seq_end = _expect(der, start, end, 0x30)
    if seq_end != end:
        raise _Malformed("bytes after basicConstraints")
    at, is_ca, path_length = seq_start, False, None
    if at < seq_end and der[at] == 0x01:
        bool_start, at = _expect(der, at, seq_end, 0x01)
        if der[bool_start:at] != b"\xff":
            raise _Malformed("basicConstraints cA is encoded TRUE or not at all")
        is_ca = True
    if at < seq_end:
        int_start, at = _expect(der, at, seq_end, 0x02)
        contents = der[int_start:at]
        if not 1 <= len(contents) <= 2 or contents[0] & 0x80 or (
                len(contents) == 2 and contents[0] == 0 and not contents[1] & 0x80):
            raise _Malformed("pathLenConstraint is a small non-negative INTEGER")
        path_length = int.from_bytes(contents, "big")
    if at != seq_end:
        raise _Malformed("bytes after pathLenConstraint")
    return is_ca, path_length


def _key_usage(der: bytes, start: int, end: int) -> tuple[str, ...]:
    bits_start, bits_end = _expect(der, start, end, 0x03)
    if bits_end != end or bits_start == bits_end:
        raise _Malformed("keyUsage is one BIT STRING")
    unused, data = der[bits_start], der[bits_start + 1 : bits_end]
    if unused > 7 or (unused and not data) or (data and data[-1] & ((1 << unused) - 1)):
        raise _Malformed("keyUsage has bad unused bits")
    value = int.from_bytes(data, "big") >> unused if data else 0
    width = 8 * len(data) - unused
    return tuple(sorted(name for bit, name in enumerate(_KEY_USAGE_BITS)
                        if bit < width and value >> (width - 1 - bit) & 1))


def _complete(der: bytes, fields: _Fields) -> Certificate:
    cert = x509.load_der_x509_certificate(der)
    extensions = fields.extensions
    return Certificate(
        der=der, tbs=fields.tbs, signature=fields.signature,
        signature_algorithm=fields.signature_algorithm, key_algorithm=fields.key_algorithm,
        public_key=fields.public_key, spki=fields.spki, serial=fields.serial,
        issuer_der=fields.issuer_der, subject_der=fields.subject_der,
        not_before_ms=_milliseconds(cert.not_valid_before_utc),
        not_after_ms=_milliseconds(cert.not_valid_after_utc),
        is_ca=extensions.is_ca, path_length=extensions.path_length,
        key_usage=extensions.key_usage, unhandled_critical=extensions.unhandled_critical,
        _x509=cert,
    )


@lru_cache(maxsize=4096)
def _digest(data: bytes, suite_name: str) -> str:
    if suite_name == "gm":
        return sm3(data).hex()
    if suite_name == "intl":
        return hashlib.sha256(data).hexdigest()
    raise ValueError(f"unknown crypto suite {suite_name!r}")


def fingerprint(cert: Certificate, suite_name: str) -> str:
    """Hex of the suite's hash (SHA-256, SM3) of the certificate's DER."""
    return _digest(cert.der, suite_name)


def key_fingerprint(cert: Certificate, suite_name: str) -> str:
    """Hex of the suite's hash of the certificate's SubjectPublicKeyInfo DER: the name
    of an issuer in ``revoked`` (see the module docstring for why not the certificate's)."""
    return _digest(cert.spki, suite_name)


def key_matches(cert: Certificate, public_key: bytes, suite_name: str) -> bool:
    """Whether ``cert`` binds the account key ``public_key`` (the suite's raw encoding:
    an Ed25519 key on ``intl``, an SM2 point on ``gm``)."""
    if suite_name not in _ACCOUNT_KEY:
        raise ValueError(f"unknown crypto suite {suite_name!r}")
    return cert.key_algorithm == _ACCOUNT_KEY[suite_name] and cert.public_key == bytes(public_key)


# --- PEM -------------------------------------------------------------------------------

#: SEQUENCE { SEQUENCE { id-ecPublicKey, sm2 (1.2.156.10197.1.301) }, BIT STRING (66) }:
#: what precedes an SM2 point in its SubjectPublicKeyInfo (cryptography has no SM2).
_SM2_SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a811ccf5501822d034200")
#: A suite's account key algorithm, as openssl names it.
SUITE_KEY_ALGORITHM = {"intl": "ed25519", "gm": "sm2"}


def _pem_block(label: str, der: bytes) -> bytes:
    body = binascii.b2a_base64(der, newline=False).decode()
    lines = "\n".join(body[i:i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN {label}-----\n{lines}\n-----END {label}-----\n".encode()


def pem(der: bytes) -> str:
    """A certificate's DER as one PEM ``CERTIFICATE`` block."""
    return _pem_block("CERTIFICATE", bytes(der)).decode()


def public_key_pem(algorithm: str, raw: bytes) -> bytes:
    """A raw public key (Tally's encoding: 32 bytes of Ed25519, a 65-byte uncompressed
    SM2 or P-256 point) as a PEM SubjectPublicKeyInfo, as ``openssl x509 -force_pubkey``
    reads it (``algorithm``: ed25519, sm2 or p256; :data:`SUITE_KEY_ALGORITHM` names a
    suite's). An SM2 key is id-ecPublicKey with the curve OID 1.2.156.10197.1.301."""
    if algorithm == "ed25519":
        key: ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey = (
            ed25519.Ed25519PublicKey.from_public_bytes(bytes(raw)))
    elif algorithm == "p256":
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), bytes(raw))
    elif algorithm == "sm2":
        if len(raw) != 65 or raw[0] != 0x04:
            raise ValueError("an SM2 public key is a 65-byte uncompressed point")
        return _pem_block("PUBLIC KEY", _SM2_SPKI_PREFIX + bytes(raw))
    else:
        raise ValueError(f"no raw encoding for {algorithm}")
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


# --- signatures --------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _p256_key(point: bytes) -> ec.EllipticCurvePublicKey | None:
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        return None


def _signature_valid(key_algorithm: str, public_key: bytes, message: bytes,
                     signature: bytes) -> bool:
    if key_algorithm == ED25519:
        return get_suite("intl").verify(public_key, message, signature)
    if key_algorithm == ECDSA_P256:
        key = _p256_key(public_key)
        if key is None:
            return False
        try:
            key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True
    if key_algorithm == SM2:
        try:
            rs = sm2.der_to_rs(signature)
        except ValueError:
            return False
        return sm2.verify(public_key, message, rs)
    return False


@lru_cache(maxsize=1024)
def _ca_link_valid(key_algorithm: str, public_key: bytes, tbs: bytes, signature: bytes) -> bool:
    # A CA certificate is verified under the same issuer again and again (every leaf
    # it issues): pure, so cached. Leaves are not cached, so they cannot evict CAs.
    return _signature_valid(key_algorithm, public_key, tbs, signature)


def _signed_by(cert: Certificate, issuer: Certificate) -> bool:
    verify = _ca_link_valid if cert.is_ca else _signature_valid
    return verify(issuer.key_algorithm, issuer.public_key, cert.tbs, cert.signature)


def _bad_signature(cert: Certificate, issuer: Certificate) -> CertificateError:
    message = f"{cert.subject!r} is not signed by the key of {issuer.subject!r}"
    if issuer.key_algorithm == SM2:
        try:
            rs = sm2.der_to_rs(cert.signature)
        except ValueError:
            rs = b""
        if rs and sm2.verify(issuer.public_key, cert.tbs, rs, b""):
            message += (" with the default SM2 ID 1234567812345678 (GM/T 0009); it was signed"
                        " with an empty ID, as OpenSSL 3.0 does unless given -sigopt"
                        " distid:1234567812345678")
    return CertificateError(CertificateError.BAD_SIGNATURE, message)


# --- chains ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VerifiedChain:
    """What a verified chain proves, in canonical form."""

    #: leaf first, root last.
    path: tuple[Certificate, ...]
    #: The leaf's subject (DER, canonical; and RFC 4514 for people), serial and key
    #: (Tally's raw encoding).
    subject_der: bytes
    serial: int
    key_algorithm: str
    public_key: bytes
    #: Suite-hash fingerprints: of the leaf's issuer key (its revocation name) and of
    #: the root certificate (the member CA as registered).
    issuer_key_fingerprint: str
    root_fingerprint: str

    @property
    def subject(self) -> str:
        return self.path[0].subject


def _refuse(reason: str, message: str) -> CertificateError:
    return CertificateError(reason, message)


def _check_algorithms(cert: Certificate, suite_name: str) -> None:
    allowed = _SUITE_KEYS[suite_name]
    if cert.key_algorithm not in allowed:
        raise _refuse(CertificateError.ALGORITHM,
                      f"{cert.subject!r} has a {cert.key_algorithm} key; the {suite_name} "
                      f"suite accepts {', '.join(allowed)}")
    signer = _SIGNER_KEY.get(cert.signature_algorithm)
    if signer not in allowed:
        raise _refuse(CertificateError.ALGORITHM,
                      f"{cert.subject!r} is signed with {cert.signature_algorithm}, which the "
                      f"{suite_name} suite does not accept")


def _check_signer_kind(cert: Certificate, issuer: Certificate) -> bool:
    return _SIGNER_KEY.get(cert.signature_algorithm) == issuer.key_algorithm


def _check_extensions(cert: Certificate) -> None:
    if cert.unhandled_critical:
        raise _refuse(CertificateError.CRITICAL_EXTENSION,
                      f"{cert.subject!r} has critical extensions Tally does not enforce: "
                      f"{', '.join(cert.unhandled_critical)}")


def _check_issuer(ca: Certificate, below: int) -> None:
    """``ca`` may sign certificates, with ``below`` intermediate CAs under it."""
    if not ca.is_ca:
        raise _refuse(CertificateError.NOT_A_CA,
                      f"{ca.subject!r} issues certificates but is not a CA (basicConstraints)")
    if ca.key_usage is None or "key_cert_sign" not in ca.key_usage:
        raise _refuse(CertificateError.KEY_USAGE,
                      f"{ca.subject!r} issues certificates without keyUsage keyCertSign")
    if ca.path_length is not None and below > ca.path_length:
        raise _refuse(CertificateError.CHAIN_TOO_LONG,
                      f"{ca.subject!r} allows {ca.path_length} intermediate CA(s) below it "
                      f"(pathLenConstraint); this path has {below}")


def _check_leaf(leaf: Certificate, usage: str) -> None:
    if usage == "ca":
        _check_issuer(leaf, 0)
        return
    if leaf.is_ca:
        raise _refuse(CertificateError.KEY_USAGE,
                      f"{leaf.subject!r} is a CA certificate, not an {usage}'s")
    if leaf.key_usage is None or "digital_signature" not in leaf.key_usage:
        raise _refuse(CertificateError.KEY_USAGE,
                      f"{leaf.subject!r} lacks keyUsage digitalSignature, which an {usage} needs")


def _check_time(cert: Certificate, at_ms: int) -> None:
    if at_ms < cert.not_before_ms:
        raise _refuse(CertificateError.NOT_YET_VALID,
                      f"{cert.subject!r} is valid from {cert.not_before_ms} ms, after {at_ms}")
    if at_ms > cert.not_after_ms:
        raise _refuse(CertificateError.EXPIRED,
                      f"{cert.subject!r} expired at {cert.not_after_ms} ms, before {at_ms}")


def _check_arguments(suite_name: str, at_ms: int, usage: str) -> None:
    if suite_name not in _SUITE_KEYS:
        raise ValueError(f"unknown crypto suite {suite_name!r}")
    if usage not in USAGES:
        raise ValueError(f"unknown usage {usage!r}; one of {', '.join(USAGES)}")
    if not isinstance(at_ms, int) or isinstance(at_ms, bool):
        raise ValueError("at_ms is the block time in integer milliseconds")


def verify_chain(
    leaf: Certificate,
    intermediates: Sequence[Certificate],
    roots: Collection[Certificate],
    *,
    at_ms: int,
    suite_name: str,
    usage: str = "account",
    revoked: Collection[tuple[str, int]] = (),
    public_key: bytes | None = None,
) -> VerifiedChain:
    """Verify ``leaf`` up to one of ``roots`` through ``intermediates`` (in order, the
    leaf's issuer first; a trailing copy of the root is ignored).

    ``roots`` are trust anchors: their own signatures are not checked, their validity,
    CA flag, keyUsage and pathLenConstraint are. ``revoked`` holds
    ``(key_fingerprint(issuer), serial)`` pairs. ``public_key``, when given, must be the
    key the leaf binds (``key_mismatch`` otherwise). The checks and their order are the
    module docstring's; the first failure raises :class:`CertificateError`.
    Programming errors (an unknown suite or usage, a non-integer time) raise
    ``ValueError``.
    """
    _check_arguments(suite_name, at_ms, usage)
    chain = list(intermediates)
    if chain and any(chain[-1].der == root.der for root in roots):
        chain.pop()
    # 1. length
    if len(chain) + 2 > MAX_CHAIN_LENGTH:
        raise _refuse(CertificateError.CHAIN_TOO_LONG,
                      f"{len(chain) + 2} certificates; a path has at most {MAX_CHAIN_LENGTH}")
    presented = [leaf, *chain]
    links = list(zip(presented, presented[1:], strict=False))
    # 2. algorithms
    for cert in presented:
        _check_algorithms(cert, suite_name)
    for cert, issuer in links:
        if not _check_signer_kind(cert, issuer):
            raise _refuse(CertificateError.ALGORITHM,
                          f"{cert.subject!r} is signed with {cert.signature_algorithm}, which "
                          f"the {issuer.key_algorithm} key of its issuer does not make")
    # 3. names
    for cert, issuer in links:
        if cert.issuer_der != issuer.subject_der:
            raise _refuse(CertificateError.UNKNOWN_CA,
                          f"{cert.subject!r} is issued by {cert.issuer!r}, but the next "
                          f"certificate is {issuer.subject!r}")
    # 4. intermediates are CAs; no unenforced critical extension
    for cert in presented:
        _check_extensions(cert)
    for below, ca in enumerate(chain):
        _check_issuer(ca, below)
    # 5. the leaf's usage and key
    _check_leaf(leaf, usage)
    if public_key is not None and not (leaf.public_key == bytes(public_key)
                                       and leaf.key_algorithm == _ACCOUNT_KEY[suite_name]):
        raise _refuse(CertificateError.KEY_MISMATCH,
                      f"{leaf.subject!r} binds another key than the account's")
    # 6. validity
    for cert in presented:
        _check_time(cert, at_ms)
    # 7. the root
    top = presented[-1]
    root = _choose_root(top, roots, suite_name)
    _check_algorithms(root, suite_name)
    _check_extensions(root)
    _check_issuer(root, len(chain))
    _check_time(root, at_ms)
    path = (*presented, root)
    # 8. every other signature, leaf first
    for cert, issuer in links:
        if not _signed_by(cert, issuer):
            raise _bad_signature(cert, issuer)
    # 9. revocation
    if revoked:
        for cert, issuer in zip(path, path[1:], strict=False):
            if (key_fingerprint(issuer, suite_name), cert.serial) in revoked:
                raise _refuse(CertificateError.REVOKED,
                              f"{cert.subject!r} (serial {cert.serial}) is revoked by "
                              f"{issuer.subject!r}")
    return VerifiedChain(
        path=path, subject_der=leaf.subject_der, serial=leaf.serial,
        key_algorithm=leaf.key_algorithm, public_key=leaf.public_key,
        issuer_key_fingerprint=key_fingerprint(path[1], suite_name),
        root_fingerprint=fingerprint(root, suite_name),
    )


def _choose_root(top: Certificate, roots: Collection[Certificate],
                 suite_name: str) -> Certificate:
    named = sorted((r for r in roots if r.subject_der == top.issuer_der),
                   key=lambda r: fingerprint(r, suite_name))
    if not named:
        raise _refuse(CertificateError.UNKNOWN_CA,
                      f"{top.subject!r} is issued by {top.issuer!r}, which is no registered CA")
    fitting = [r for r in named if _check_signer_kind(top, r)
               and r.key_algorithm in _SUITE_KEYS[suite_name]]
    for root in fitting:
        if _signed_by(top, root):
            return root
    if not fitting:
        raise _refuse(CertificateError.ALGORITHM,
                      f"no registered CA named {top.issuer!r} has a key that makes "
                      f"{top.signature_algorithm} signatures")
    raise _bad_signature(top, fitting[0])


def check_root(cert: Certificate, *, at_ms: int, suite_name: str) -> None:
    """Whether ``cert`` may be registered as a member's root CA: allowed algorithms,
    a CA with keyCertSign, valid at ``at_ms``, no unenforced critical extension, and
    self-signed (its own key verifies its signature). Raises :class:`CertificateError`."""
    _check_arguments(suite_name, at_ms, "ca")
    _check_algorithms(cert, suite_name)
    if not _check_signer_kind(cert, cert) or cert.issuer_der != cert.subject_der:
        raise _refuse(CertificateError.NOT_A_CA,
                      f"{cert.subject!r} is not self-signed (issued by {cert.issuer!r})")
    _check_extensions(cert)
    _check_issuer(cert, 0)
    _check_time(cert, at_ms)
    if not _signed_by(cert, cert):
        raise _bad_signature(cert, cert)
