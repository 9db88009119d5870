"""Envelope encryption of one private payload to N recipients (decision 0030).

A payload is encrypted once, under a fresh random data key, with the suite's AEAD
(``intl``: AES-256-GCM; ``gm``: SM4-GCM). The data key is wrapped to each recipient's
*encryption* key (not its signing key):

* ``intl``: X25519. Per recipient, a fresh ephemeral X25519 key; the shared secret goes
  through HKDF-SHA256 (info binds the ephemeral and the recipient's public keys) to a
  key-encryption key that AES-256-GCM-encrypts the data key, with the recipient's key
  id as associated data. ``wrap = ephemeral public (32) || sealed key (32) || tag (16)``.
* ``gm``: SM2 public-key encryption with SM3 (GB/T 32918.4), ``C1 || C3 || C2``:
  ``wrap`` is 65 + 32 + 16 bytes (:mod:`tally.crypto.sm2_pke`).

The envelope, canonical CBOR (RFC 8949 §4.2.1)::

    {"v": 1, "suite": "intl" | "gm",
     "ct": nonce (12) || AEAD(salt (32) || payload) || tag (16),
     "kc": H("tally/envelope/v1/key" 0x00 || data key),        key commitment
     "to": [[key id, H("tally/envelope/v1/wrap" 0x00 || key id || wrap)], ...],
     "wraps": [wrap or null, ...]}                              aligned with "to"

``to`` is sorted by key id, without repeats. The AEAD's associated data is the
canonical CBOR of ``{"v", "suite", "chain", "ctx", "kc", "to"}``: the chain id and the
caller's context (for instance ``"asset.transfer/memo"``) bind the ciphertext to its
place, so it does not open anywhere else, and ``to`` binds the digest of every wrapped
key, so a change to any byte of any wrap is refused by every recipient. ``kc`` makes the
data key, hence the plaintext, the same for every recipient (GCM alone does not commit
to its key).

Erasure (:func:`erase`) replaces a recipient's wrap by null and keeps its digest, so
the envelope still verifies, still shows who was a recipient, and the others still open
it. Nobody's key is needed to erase. The ledger's commitment (:func:`commit_private`) is
never erased.

The salt of the commitment travels inside the ciphertext, so every recipient can later
disclose ``payload`` and ``salt`` to a court, which checks them against the commitment
on the chain with :func:`check_private_disclosure`.

Every refusal is an :class:`EnvelopeError` with a stable ``reason``; decoding untrusted
envelope bytes raises nothing else.
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tally import codec
from tally.crypto import SUITE_NAMES, Suite, get_suite, sm2, sm2_pke, sm4
from tally.errors import Code, TallyError

VERSION = 1
SALT_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
KEY_ID_BYTES = 32
#: Most recipients one envelope may name (parties plus regulators).
MAX_RECIPIENTS = 64
#: Largest private payload, in bytes.
MAX_PAYLOAD = 64 * 1024
#: Longest chain id and context string, in UTF-8 bytes.
MAX_CHAIN_ID = 128
MAX_CONTEXT = 256

_DATA_KEY_BYTES = {"intl": 32, "gm": sm4.KEY_SIZE}
_WRAP_BYTES = {"intl": 32 + 32 + TAG_BYTES, "gm": sm2_pke.OVERHEAD + sm4.KEY_SIZE}
_PUBLIC_KEY_BYTES = {"intl": 32, "gm": sm2.PUBLIC_KEY_SIZE}
#: No well-formed envelope is longer: the ciphertext, the recipient lists, and room for
#: the CBOR framing and the suite name.
MAX_ENVELOPE = (
    NONCE_BYTES + SALT_BYTES + MAX_PAYLOAD + TAG_BYTES + 64
    + MAX_RECIPIENTS * (2 * KEY_ID_BYTES + max(_WRAP_BYTES.values()) + 16)
)
_FIELDS = frozenset({"v", "suite", "ct", "kc", "to", "wraps"})
_KEY_LABEL = b"tally/envelope/v1/key\x00"
_WRAP_LABEL = b"tally/envelope/v1/wrap\x00"
_KEY_ID_LABEL = b"tally/encryption-key/v1\x00"
_X25519_INFO = b"tally/envelope/v1/x25519\x00"


class EnvelopeError(TallyError):
    """An envelope that cannot be made, read or opened. ``reason`` is a stable sub-code:
    ``malformed``, ``oversized``, ``unsupported_version``, ``wrong_suite``, ``bad_context``,
    ``bad_payload``, ``bad_recipient_key``, ``no_recipients``, ``too_many_recipients``,
    ``duplicate_recipient``, ``bad_salt``, ``wrap_mismatch``, ``not_a_recipient``,
    ``erased``, ``unwrap_failed``, ``key_commitment_mismatch``, ``authentication_failed``
    (the ciphertext was changed or is opened in another context: GCM cannot tell which),
    ``bad_key``, ``disclosure_mismatch``."""

    code = Code.INVALID_REQUEST

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.message = message
        self.reason = reason

    def to_dict(self) -> dict[str, str]:
        return super().to_dict() | {"reason": self.reason}


@dataclass(frozen=True)
class EnvelopeContext:
    """Where an envelope belongs: its chain and the caller's context string (such as a
    transaction kind and field name). An envelope opens only in the context it was
    sealed in."""

    chain_id: str
    label: str

    def associated_data(self, suite_name: str, kc: bytes, to: list[list[bytes]]) -> bytes:
        if not (
            isinstance(self.chain_id, str) and isinstance(self.label, str)
            and 0 < len(self.chain_id.encode(errors="replace")) <= MAX_CHAIN_ID
            and len(self.label.encode(errors="replace")) <= MAX_CONTEXT
        ):
            raise EnvelopeError(
                "bad_context",
                f"a context is a chain id of 1 to {MAX_CHAIN_ID} bytes and a label of "
                f"at most {MAX_CONTEXT}",
            )
        try:
            return codec.encode({"v": VERSION, "suite": suite_name, "chain": self.chain_id,
                                 "ctx": self.label, "kc": kc, "to": to})
        except (ValueError, UnicodeError) as exc:  # e.g. lone surrogates in the text
            raise EnvelopeError("bad_context", f"the context cannot be encoded: {exc}") from None


# --- encryption keys -------------------------------------------------------------------


def _check_suite(suite_name: Any) -> str:
    if suite_name not in SUITE_NAMES:
        raise EnvelopeError("wrong_suite", f"unknown suite {suite_name!r}")
    return str(suite_name)


def key_id(suite_name: str, public_key: bytes) -> bytes:
    """The 32-byte id naming an encryption public key in envelopes: the suite hash of a
    label and the key."""
    suite = get_suite(_check_suite(suite_name))
    return suite.hash(_KEY_ID_LABEL + bytes(public_key))


class EncryptionKey:
    """A member's or account's private *encryption* key: X25519 (``intl``) or SM2
    (``gm``), separate from its signing key. ``to_bytes`` is the 32-byte private key
    (X25519 scalar bytes, SM2 scalar big-endian); ``public_key`` is 32 bytes (X25519) or
    the 65-byte uncompressed SM2 point; ``key_id`` names it in envelopes."""

    __slots__ = ("suite_name", "public_key", "key_id", "_x25519", "_sm2")

    def __init__(self, suite_name: str, raw: bytes) -> None:
        self.suite_name = _check_suite(suite_name)
        self._x25519: X25519PrivateKey | None = None
        self._sm2: sm2_pke.DecryptionKey | None = None
        if not isinstance(raw, (bytes, bytearray)) or len(raw) != 32:
            raise EnvelopeError("bad_key", "an encryption private key is 32 bytes")
        if self.suite_name == "intl":
            self._x25519 = X25519PrivateKey.from_private_bytes(bytes(raw))
            self.public_key: bytes = self._x25519.public_key().public_bytes(
                ser.Encoding.Raw, ser.PublicFormat.Raw)
        else:
            try:
                self._sm2 = sm2_pke.DecryptionKey(bytes(raw))
            except ValueError as exc:
                raise EnvelopeError("bad_key", str(exc)) from None
            self.public_key = self._sm2.public_key
        self.key_id: bytes = key_id(self.suite_name, self.public_key)

    def to_bytes(self) -> bytes:
        if self._x25519 is not None:
            return self._x25519.private_bytes(
                ser.Encoding.Raw, ser.PrivateFormat.Raw, ser.NoEncryption())
        assert self._sm2 is not None
        return self._sm2.to_bytes()

    def __repr__(self) -> str:
        return f"EncryptionKey({self.suite_name}, key_id={self.key_id.hex()[:16]}…)"

    def _unwrap(self, kid: bytes, wrap: bytes) -> bytes:
        if self._x25519 is not None:
            ephemeral = wrap[:32]
            try:
                shared = self._x25519.exchange(X25519PublicKey.from_public_bytes(ephemeral))
                kek = _x25519_kek(shared, ephemeral, self.public_key)
                return AESGCM(kek).decrypt(bytes(NONCE_BYTES), wrap[32:], kid)
            except (ValueError, InvalidTag):
                raise EnvelopeError("unwrap_failed", "the wrapped key does not open") from None
        assert self._sm2 is not None
        try:
            return self._sm2.decrypt(wrap)
        except sm2_pke.DecryptionError:
            raise EnvelopeError("unwrap_failed", "the wrapped key does not open") from None


def generate_encryption_key(suite_name: str) -> EncryptionKey:
    """A fresh encryption key pair from the OS CSPRNG."""
    if _check_suite(suite_name) == "intl":
        return EncryptionKey("intl", os.urandom(32))
    return EncryptionKey("gm", sm2.generate_private_scalar())


def load_encryption_key(suite_name: str, raw: bytes) -> EncryptionKey:
    """Rebuild a key from :meth:`EncryptionKey.to_bytes`."""
    return EncryptionKey(suite_name, raw)


def _x25519_kek(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    hkdf = HKDF(hashes.SHA256(), 32, salt=None, info=_X25519_INFO + ephemeral + recipient)
    return hkdf.derive(shared)


def _wrap(suite_name: str, public_key: bytes, kid: bytes, data_key: bytes) -> bytes:
    try:
        if suite_name == "intl":
            ephemeral = X25519PrivateKey.generate()
            ephemeral_public = ephemeral.public_key().public_bytes(
                ser.Encoding.Raw, ser.PublicFormat.Raw)
            # cryptography refuses (ValueError) a low-order point: an all-zero secret.
            shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(public_key))
            kek = _x25519_kek(shared, ephemeral_public, public_key)
            return ephemeral_public + AESGCM(kek).encrypt(bytes(NONCE_BYTES), data_key, kid)
        return sm2_pke.encrypt(public_key, data_key)
    except ValueError as exc:
        raise EnvelopeError("bad_recipient_key", f"recipient key refused: {exc}") from None


def _wrap_digest(suite: Suite, kid: bytes, wrap: bytes) -> bytes:
    return suite.hash(_WRAP_LABEL + kid + wrap)


def _key_commitment(suite: Suite, data_key: bytes) -> bytes:
    return suite.hash(_KEY_LABEL + data_key)


# --- commitments -----------------------------------------------------------------------


def commit_private(suite: Suite, payload: bytes, salt: bytes) -> bytes:
    """What the ledger holds for a private payload: ``H(canonical_cbor({"v": 1,
    "private": payload, "salt": salt}))`` with the suite's hash, as
    :func:`tally.identity.commitment.commit` does for identity records."""
    if not isinstance(salt, bytes) or len(salt) != SALT_BYTES:
        raise EnvelopeError("bad_salt", f"the salt is {SALT_BYTES} bytes")
    if not isinstance(payload, bytes) or len(payload) > MAX_PAYLOAD:
        raise EnvelopeError("bad_payload", f"a private payload is at most {MAX_PAYLOAD} bytes")
    return suite.hash(codec.encode({"v": 1, "private": payload, "salt": salt}))


def check_private_disclosure(suite: Suite, commitment: bytes, payload: bytes,
                             salt: bytes) -> None:
    """Raise :class:`EnvelopeError` (``disclosure_mismatch``) unless ``payload`` and
    ``salt``, as a party discloses them to a court, make ``commitment``."""
    if not hmac.compare_digest(commit_private(suite, payload, salt), bytes(commitment)):
        raise EnvelopeError("disclosure_mismatch",
                            "the payload and salt do not make this commitment")


# --- sealing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SealedPrivate:
    """What the sender of a private field keeps: the envelope for the nodes, the
    commitment for the ledger, and the salt (also inside the envelope)."""

    envelope: bytes
    commitment: bytes
    salt: bytes


@dataclass(frozen=True)
class Opened:
    """An opened envelope: the payload and the salt of its commitment."""

    payload: bytes
    salt: bytes


def _aead_seal(suite_name: str, key: bytes, plaintext: bytes, ad: bytes) -> bytes:
    if suite_name == "intl":
        nonce = os.urandom(NONCE_BYTES)
        return nonce + AESGCM(key).encrypt(nonce, plaintext, ad)
    return sm4.sm4_encrypt(key, plaintext, ad)


def _aead_open(suite_name: str, key: bytes, sealed: bytes, ad: bytes) -> bytes:
    try:
        if suite_name == "intl":
            return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], ad)
        return sm4.sm4_decrypt(key, sealed, ad)
    except (InvalidTag, sm4.DecryptionError):
        raise EnvelopeError(
            "authentication_failed",
            "the ciphertext was changed, or is opened in another context",
        ) from None


def seal(suite_name: str, payload: bytes, recipients: Sequence[bytes],
         context: EnvelopeContext, *, salt: bytes | None = None) -> bytes:
    """An envelope of ``payload`` that each of ``recipients`` (encryption public keys)
    can open in ``context``. ``salt`` (32 bytes) is the commitment's, drawn fresh when
    not given; :func:`seal_private` also returns the commitment."""
    suite = get_suite(_check_suite(suite_name))
    if not isinstance(payload, (bytes, bytearray)):
        raise EnvelopeError("bad_payload", "a private payload is bytes")
    if len(payload) > MAX_PAYLOAD:
        raise EnvelopeError("oversized", f"a private payload is at most {MAX_PAYLOAD} bytes")
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    if not isinstance(salt, bytes) or len(salt) != SALT_BYTES:
        raise EnvelopeError("bad_salt", f"the salt is {SALT_BYTES} bytes")
    if isinstance(recipients, (bytes, bytearray, str)) or not recipients:
        raise EnvelopeError("no_recipients", "an envelope needs at least one recipient key")
    if len(recipients) > MAX_RECIPIENTS:
        raise EnvelopeError("too_many_recipients", f"at most {MAX_RECIPIENTS} recipients")
    if not isinstance(context, EnvelopeContext):
        raise EnvelopeError("bad_context", "expected an EnvelopeContext")
    keys: dict[bytes, bytes] = {}
    for public_key in recipients:
        if not isinstance(public_key, (bytes, bytearray)) \
                or len(public_key) != _PUBLIC_KEY_BYTES[suite_name]:
            raise EnvelopeError("bad_recipient_key",
                                f"a {suite_name} encryption public key is "
                                f"{_PUBLIC_KEY_BYTES[suite_name]} bytes")
        kid = key_id(suite_name, bytes(public_key))
        if kid in keys:
            raise EnvelopeError("duplicate_recipient", f"recipient {kid.hex()} named twice")
        keys[kid] = bytes(public_key)
    data_key = secrets.token_bytes(_DATA_KEY_BYTES[suite_name])
    to: list[list[bytes]] = []
    wraps: list[bytes | None] = []
    for kid in sorted(keys):
        wrap = _wrap(suite_name, keys[kid], kid, data_key)
        to.append([kid, _wrap_digest(suite, kid, wrap)])
        wraps.append(wrap)
    kc = _key_commitment(suite, data_key)
    ad = context.associated_data(suite_name, kc, to)
    ct = _aead_seal(suite_name, data_key, salt + bytes(payload), ad)
    return codec.encode({"v": VERSION, "suite": suite_name, "ct": ct, "kc": kc,
                         "to": to, "wraps": wraps})


def seal_private(suite_name: str, payload: bytes, recipients: Sequence[bytes],
                 context: EnvelopeContext) -> SealedPrivate:
    """:func:`seal` with a fresh salt, and the commitment the ledger records."""
    salt = secrets.token_bytes(SALT_BYTES)
    envelope = seal(suite_name, payload, recipients, context, salt=salt)
    return SealedPrivate(envelope, commit_private(get_suite(suite_name), bytes(payload), salt),
                         salt)


# --- reading ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Parsed:
    suite_name: str
    ct: bytes
    kc: bytes
    to: list[list[bytes]]
    wraps: list[bytes | None]

    def encode(self) -> bytes:
        return codec.encode({"v": VERSION, "suite": self.suite_name, "ct": self.ct,
                             "kc": self.kc, "to": self.to, "wraps": self.wraps})


def _malformed(message: str) -> EnvelopeError:
    return EnvelopeError("malformed", message)


def _parse(envelope: Any) -> _Parsed:
    """Strictly decode untrusted envelope bytes, checking every wrap against its digest.
    Raises only :class:`EnvelopeError`."""
    if not isinstance(envelope, (bytes, bytearray)):
        raise _malformed("an envelope is bytes")
    if len(envelope) > MAX_ENVELOPE:
        raise EnvelopeError("oversized", f"an envelope is at most {MAX_ENVELOPE} bytes")
    try:
        value = codec.decode_canonical(bytes(envelope), "envelope")
    except Exception as exc:  # TxRejected, or anything the decoder lets through
        raise _malformed(str(exc)) from None
    if not isinstance(value, dict) or set(value) != _FIELDS:
        raise _malformed(f"an envelope is a map of {sorted(_FIELDS)}")
    if type(value["v"]) is not int or value["v"] != VERSION:
        raise EnvelopeError("unsupported_version", f"envelope version {value['v']!r}")
    suite_name = value["suite"]
    if suite_name not in SUITE_NAMES:
        raise EnvelopeError("wrong_suite", f"unknown suite {suite_name!r}")
    ct, kc, to, wraps = value["ct"], value["kc"], value["to"], value["wraps"]
    minimum = NONCE_BYTES + SALT_BYTES + TAG_BYTES
    if type(ct) is not bytes or not minimum <= len(ct) <= minimum + MAX_PAYLOAD:
        raise _malformed("the ciphertext has an impossible length")
    if type(kc) is not bytes or len(kc) != 32:
        raise _malformed("the key commitment is 32 bytes")
    if type(to) is not list or type(wraps) is not list or len(to) != len(wraps):
        raise _malformed("recipients and wraps are two lists of one length")
    if not 0 < len(to) <= MAX_RECIPIENTS:
        raise EnvelopeError("too_many_recipients", f"1 to {MAX_RECIPIENTS} recipients")
    suite = get_suite(suite_name)
    previous = b""
    for entry, wrap in zip(to, wraps, strict=True):
        if type(entry) is not list or len(entry) != 2 \
                or not all(type(item) is bytes and len(item) == 32 for item in entry):
            raise _malformed("a recipient is [key id, wrap digest], 32 bytes each")
        kid, digest = entry
        if kid <= previous:
            raise _malformed("recipients are sorted by key id, without repeats")
        previous = kid
        if wrap is None:
            continue
        if type(wrap) is not bytes or len(wrap) != _WRAP_BYTES[suite_name]:
            raise _malformed(f"a {suite_name} wrapped key is {_WRAP_BYTES[suite_name]} bytes")
        if not hmac.compare_digest(_wrap_digest(suite, kid, wrap), digest):
            raise EnvelopeError("wrap_mismatch", f"the wrap for {kid.hex()} was changed")
    return _Parsed(suite_name, ct, kc, to, wraps)


def recipients_of(envelope: bytes) -> list[bytes]:
    """The key ids that can open ``envelope`` (erased recipients are not among them)."""
    parsed = _parse(envelope)
    return [kid for (kid, _), wrap in zip(parsed.to, parsed.wraps, strict=True)
            if wrap is not None]


def erased_recipients(envelope: bytes) -> list[bytes]:
    """The key ids whose wrapped keys were erased from ``envelope``."""
    parsed = _parse(envelope)
    return [kid for (kid, _), wrap in zip(parsed.to, parsed.wraps, strict=True)
            if wrap is None]


def erase(envelope: bytes, key_id: bytes) -> bytes:
    """``envelope`` without the wrapped key of ``key_id``: that key no longer opens it,
    every other recipient still does. The wrap's digest stays, so the envelope still
    verifies. Erasing an erased recipient changes nothing."""
    parsed = _parse(envelope)
    for index, (kid, _) in enumerate(parsed.to):
        if kid == key_id:
            parsed.wraps[index] = None
            return parsed.encode()
    raise EnvelopeError("not_a_recipient", "no such recipient in this envelope")


def open_private(suite_name: str, envelope: bytes, private_key: EncryptionKey,
                 context: EnvelopeContext) -> Opened:
    """Open ``envelope`` with ``private_key`` in ``context``: its payload and salt."""
    parsed = _parse(envelope)
    if parsed.suite_name != suite_name:
        raise EnvelopeError("wrong_suite", f"a {parsed.suite_name} envelope on a "
                                           f"{suite_name!r} chain")
    if not isinstance(private_key, EncryptionKey) or private_key.suite_name != suite_name:
        raise EnvelopeError("bad_key", f"expected a {suite_name} EncryptionKey")
    if not isinstance(context, EnvelopeContext):
        raise EnvelopeError("bad_context", "expected an EnvelopeContext")
    kid = private_key.key_id
    index = next((i for i, (entry, _) in enumerate(parsed.to) if entry == kid), None)
    if index is None:
        raise EnvelopeError("not_a_recipient", "this key is not a recipient of the envelope")
    wrap = parsed.wraps[index]
    if wrap is None:
        raise EnvelopeError("erased", "this recipient's key was erased")
    data_key = private_key._unwrap(kid, wrap)
    suite = get_suite(suite_name)
    if len(data_key) != _DATA_KEY_BYTES[suite_name] or not hmac.compare_digest(
            _key_commitment(suite, data_key), parsed.kc):
        raise EnvelopeError("key_commitment_mismatch", "the wrapped key is not the data key")
    plaintext = _aead_open(suite_name, data_key,
                           parsed.ct, context.associated_data(suite_name, parsed.kc, parsed.to))
    return Opened(plaintext[SALT_BYTES:], plaintext[:SALT_BYTES])


def open_envelope(suite_name: str, envelope: bytes, private_key: EncryptionKey,
                  context: EnvelopeContext) -> bytes:
    """The payload of ``envelope``, opened with ``private_key`` in ``context``."""
    return open_private(suite_name, envelope, private_key, context).payload
