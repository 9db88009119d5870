"""tally-verify: check a Tally evidence bundle (tally-evidence/v1) offline.

The normative text is Tally's docs/evidence-spec.md; this module follows it section by
section and imports nothing of Tally, so it can be read (and published) on its own.
Dependencies: ``cryptography`` (Ed25519), ``cbor2`` (decoding; canonical form is
checked by re-encoding) and OpenSSL 3's libcrypto (SM3 through hashlib, SM2 through
ctypes). A valid bundle proves, in order:

1. the genesis document hashes to the genesis hash (pinned by the caller, ideally);
2. every validator-set change since genesis is a logged ``validator.update`` event,
   proven in a checkpoint signed by the set then in office;
3. validators holding more than 2/3 of the voting power of the set after block h - 2
   signed the event's checkpoint (block h), whose ``validators`` line hashes the set
   after h and whose ``genesis`` line (protocol version 3 on) names this genesis;
4. the event's leaf is in the log (RFC 9162 inclusion), its details and transaction
   are the ones the leaf names, and the transaction's signature is valid;
5. optionally, a later checkpoint's log still contains it (RFC 9162 consistency).

Every refusal raises :class:`EvidenceError` with a stable ``reason``; nothing a bundle
carries is left unchecked (unknown fields are refused, not ignored).
"""

from __future__ import annotations

import base64
import binascii
import ctypes
import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

FORMAT = "tally-evidence/v1"
TX_SIGNING_DOMAIN = b"tally/tx/v1\x00"
#: From this protocol version on, every checkpoint names its genesis (a "genesis" line).
BOUND_TO_GENESIS = 3
#: An update made in block h takes effect at h + 2: block h is signed by the set after h - 2.
VALIDATOR_UPDATE_DELAY = 2
MAX_DEPTH = 8  # deepest bundle nesting is 4 (an update's inclusion proof)
MAX_U63 = (1 << 63) - 1
MAX_NOTE_BYTES, MAX_SIGNATURES = 1 << 20, 100
BUNDLE_FIELDS = frozenset({"format", "chain_id", "suite", "genesis", "genesis_hash", "event",
                           "inclusion", "checkpoint", "transaction", "validator_updates"})
OPTIONAL_FIELDS = frozenset({"consistency", "log"})
LEAF_FIELDS = frozenset(
    {"height", "tx", "index", "type", "asset", "from", "to", "quantity", "data", "details", "time"})
COMMERCIAL_LEAF_FIELDS = frozenset({"tx", "data", "name", "time", "index", "height", "contract"})


class EvidenceError(Exception):
    """The bundle does not prove what it claims. ``reason`` is a stable code:
    format, genesis, checkpoint, validators, inclusion, leaf, details, transaction,
    consistency."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason, self.message = reason, message


@dataclass
class Verdict:
    """What the bundle proves, in words a person can read back."""

    event: dict[str, Any]
    facts: list[str] = field(default_factory=list)
    signers: list[str] = field(default_factory=list)
    genesis_pinned: bool = False


# -- suites: intl = Ed25519 + SHA-256, gm = SM2 (default ID) + SM3 ----------------------


@dataclass(frozen=True)
class Suite:
    name: str
    hash: Callable[[bytes], bytes]
    verify: Callable[[bytes, bytes, bytes], bool]  # (public key, message, signature)
    note_type: bytes  # signature-type bytes of note key IDs (decision 0101)
    cosignature_type: bytes  # ... of cosignature key IDs (decision 0202)
    hash_size: int = 32

    def address(self, public_key: bytes) -> str:
        return self.hash(public_key)[:20].hex()


@lru_cache(maxsize=1024)
def _ed25519_key(public_key: bytes) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(public_key)


def _ed25519(public_key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        _ed25519_key(bytes(public_key)).verify(bytes(signature), bytes(message))
        return True
    except (InvalidSignature, ValueError, TypeError):
        return False


_SM2_N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
_SM2_P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
#: SubjectPublicKeyInfo prefix: id-ecPublicKey, curve SM2 (1.2.156.10197.1.301), BIT STRING.
_SM2_SPKI = bytes.fromhex("3059301306072a8648ce3d020106082a811ccf5501822d034200")
_V, _P = ctypes.c_void_p, ctypes.c_char_p


@lru_cache(maxsize=1)
def _libcrypto() -> ctypes.CDLL:
    for name in ("libcrypto.so.3", "libcrypto.3.dylib", "libcrypto-3-x64.dll"):
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError:
            continue
    else:
        raise EvidenceError("genesis", "the gm suite needs OpenSSL 3's libcrypto")
    for fn, res, args in (
            ("d2i_PUBKEY", _V, [_V, ctypes.POINTER(_P), ctypes.c_long]),
            ("EVP_PKEY_free", None, [_V]), ("EVP_MD_CTX_new", _V, []),
            ("EVP_MD_CTX_free", None, [_V]), ("ERR_clear_error", None, []),
            ("EVP_DigestVerifyInit_ex", ctypes.c_int, [_V, ctypes.POINTER(_V), _P, _V, _P, _V, _V]),
            ("EVP_PKEY_CTX_set1_id", ctypes.c_int, [_V, _P, ctypes.c_int]),
            ("EVP_DigestVerify", ctypes.c_int, [_V, _P, ctypes.c_size_t, _P, ctypes.c_size_t])):
        getattr(lib, fn).restype, getattr(lib, fn).argtypes = res, args
    return lib


class _Sm2Key:
    """An SM2 public key decoded (and checked on the curve) by libcrypto, freed with us."""

    def __init__(self, point: bytes) -> None:
        self.lib, der = _libcrypto(), _SM2_SPKI + point
        self.pointer = self.lib.d2i_PUBKEY(None, ctypes.byref(_P(der)), len(der))

    def __del__(self) -> None:
        if getattr(self, "pointer", None):
            self.lib.EVP_PKEY_free(self.pointer)


_sm2_key = lru_cache(maxsize=1024)(_Sm2Key)


def _der_int(value: int) -> bytes:
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")
    return b"\x02" + bytes([len(body)]) + body


def _sm2(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """SM2 with SM3 and the default ID "1234567812345678" (GB/T 32918.2); the public
    key is the 65-byte uncompressed point, the signature r || s (32 bytes each)."""
    if len(signature) != 64 or len(public_key) != 65 or public_key[0] != 4:
        return False
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    x, y = int.from_bytes(public_key[1:33], "big"), int.from_bytes(public_key[33:], "big")
    if not (0 < r < _SM2_N and 0 < s < _SM2_N and x < _SM2_P and y < _SM2_P):
        return False
    key, lib = _sm2_key(bytes(public_key)), _libcrypto()
    if not key.pointer:
        lib.ERR_clear_error()
        return False
    der = _der_int(r) + _der_int(s)
    der = b"\x30" + bytes([len(der)]) + der
    ctx, pkey_ctx = lib.EVP_MD_CTX_new(), _V()
    try:
        ok = (lib.EVP_DigestVerifyInit_ex(ctx, ctypes.byref(pkey_ctx), b"SM3", None, None,
                                          key.pointer, None) == 1
              and lib.EVP_PKEY_CTX_set1_id(pkey_ctx, b"1234567812345678", 16) == 1
              and lib.EVP_DigestVerify(ctx, der, len(der), message, len(message)) == 1)
        if not ok:
            lib.ERR_clear_error()
        return ok
    finally:
        lib.EVP_MD_CTX_free(ctx)


SUITES = {
    "intl": Suite("intl", lambda d: hashlib.sha256(d).digest(), _ed25519, b"\x01", b"\x04"),
    "gm": Suite("gm", lambda d: hashlib.new("sm3", d).digest(), _sm2, b"\xffsm2-sm3\x00",
                b"\xfftally-cosignature/v1/sm2-sm3\x00"),
}


def suite(name: Any) -> Suite:
    if name not in SUITES:
        raise EvidenceError("genesis", f"unknown crypto suite {name!r}")
    return SUITES[name]


# -- strict decoding: JSON, base64, CBOR -------------------------------------------------

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[\[\]{}]")


def parse_bundle(data: str | bytes) -> dict[str, Any]:
    """A bundle's JSON in its one accepted form: UTF-8 without a byte-order mark, no
    duplicate keys, integers only (no ``58.0``, ``1e3``, ``NaN``), nesting at most
    ``MAX_DEPTH``. Whitespace and key order carry no meaning."""
    if isinstance(data, bytes):
        if data[:3] == b"\xef\xbb\xbf" or data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            raise EvidenceError("format", "the bundle starts with a byte-order mark")
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise EvidenceError("format", "the bundle is not UTF-8") from None
    if data[:1] == "\ufeff":
        raise EvidenceError("format", "the bundle starts with a byte-order mark")
    depth = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub("", data)):
        depth += 1 if bracket in "[{" else -1
        if depth > MAX_DEPTH:
            raise EvidenceError("format", f"the bundle nests deeper than {MAX_DEPTH} levels")
    try:
        value = json.loads(data, object_pairs_hook=_object, parse_float=_no_float,
                           parse_constant=_no_float)
    except EvidenceError:
        raise
    except (ValueError, RecursionError) as exc:
        raise EvidenceError("format", f"the bundle is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise EvidenceError("format", "the bundle is not a JSON object")
    return value


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len({key for key, _ in pairs}) != len(pairs):
        raise EvidenceError("format", "a key appears twice in one object")
    return dict(pairs)


def _no_float(text: str) -> Any:
    raise EvidenceError("format", f"{text} is not an integer: a bundle's numbers are integers")


def _int(value: Any, what: str) -> int:
    if type(value) is not int or value < 0:
        raise EvidenceError("format", f"{what} must be a whole number")
    return value


def _fields(value: Any, names: set[str], what: str) -> None:
    if not isinstance(value, dict) or set(value) != names:
        raise EvidenceError("format", f"{what} must have exactly the fields "
                                      f"{', '.join(sorted(names))}")


def _b64(text: Any, what: str, reason: str = "format") -> bytes:
    """Padded standard base64 in its one canonical spelling (RFC 4648 §4)."""
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise EvidenceError(reason, f"{what} is not base64") from None
    if base64.b64encode(data).decode() != text:
        raise EvidenceError(reason, f"{what} is not in canonical base64")
    return data


def _cbor(data: bytes, what: str) -> Any:
    """Deterministic CBOR (RFC 8949 §4.2.1): it must re-encode to the same bytes."""
    try:
        value = cbor2.loads(data)
    except Exception:
        raise EvidenceError("format", f"{what} is not CBOR") from None
    if cbor2.dumps(value, canonical=True) != data:
        raise EvidenceError("format", f"{what} is not canonical CBOR")
    return value


def jsonable(value: Any) -> Any:
    """Decoded CBOR as JSON: bytes become hex."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


# -- RFC 9162 Merkle proofs ---------------------------------------------------------------


def _hashes(items: Any, h: Suite, reason: str) -> list[bytes]:
    if not isinstance(items, list):
        raise EvidenceError("format", "a proof must be a list")
    out = [_b64(p, "proof hash") for p in items]
    if any(len(p) != h.hash_size for p in out):
        raise EvidenceError(reason, "a proof hash has the wrong length")
    return out


def verify_inclusion(h: Callable[[bytes], bytes], index: int, size: int, leaf: bytes,
                     proof: list[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2 for the leaf bytes ``leaf`` (hashed here as H(0x00 || leaf))."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, h(b"\x00" + leaf)
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = h(b"\x01" + p + r)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = h(b"\x01" + r + p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(h: Callable[[bytes], bytes], size1: int, size2: int,
                       proof: list[bytes], root1: bytes, root2: bytes) -> bool:
    """RFC 9162 §2.1.4.2, for 0 < size1 <= size2 (equal sizes: empty proof, equal roots)."""
    if not 0 < size1 <= size2 or (size1 == size2) != (not proof):
        return False
    if size1 == size2:
        return root1 == root2
    path = [root1, *proof] if size1 & (size1 - 1) == 0 else proof
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = h(b"\x01" + c + fr), h(b"\x01" + c + sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = h(b"\x01" + sr + c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == root1 and sr == root2


# -- C2SP signed notes, checkpoints and cosignatures ---------------------------------------

_DECIMAL = re.compile(r"(?:0|[1-9][0-9]{0,18})\Z")
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\ud800-\udfff]")  # and lone surrogates


@dataclass(frozen=True)
class Checkpoint:
    """c2sp.org/tlog-checkpoint: origin, tree size, root, then extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def extension(self, name: str) -> str:
        """The value of the one ``<name> <value>`` line (``checkpoint`` error otherwise)."""
        values = [e[len(name) + 1:] for e in self.extensions if e.startswith(name + " ")]
        if len(values) != 1:
            raise EvidenceError("checkpoint", f"the checkpoint has no single '{name}' line")
        return values[0]

    def number(self, name: str) -> int:
        text = self.extension(name)
        if not _DECIMAL.match(text):
            raise EvidenceError("checkpoint", f"'{name}' is not a number")
        return int(text)


def parse_checkpoint(body: str, hash_size: int = 32) -> Checkpoint:
    """A checkpoint text (ending in a newline) in the one form that re-encodes to itself."""
    if not isinstance(body, str) or not body.endswith("\n") or _CONTROL.search(body):
        raise EvidenceError("checkpoint", "a checkpoint is text lines ending in a newline")
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise EvidenceError("checkpoint", "a checkpoint has origin, size and root lines")
    origin, size, root, *extensions = lines
    if not origin or not _DECIMAL.match(size) or int(size) > MAX_U63 or "" in extensions:
        raise EvidenceError("checkpoint", "malformed origin, size or extension line")
    root_bytes = _b64(root, "root hash", "checkpoint")
    if len(root_bytes) != hash_size:
        raise EvidenceError("checkpoint", "the root hash has the wrong length")
    return Checkpoint(origin, int(size), root_bytes, tuple(extensions))


def key_id(name: str, signature_type: bytes, public_key: bytes) -> bytes:
    """c2sp.org/signed-note: SHA-256(name || 0x0A || type || public key)[:4], every suite."""
    return hashlib.sha256(name.encode() + b"\n" + signature_type + public_key).digest()[:4]


def open_note(note: Any, keys: dict[str, bytes], s: Suite) -> tuple[Checkpoint, list[str]]:
    """The checkpoint of a signed note and the names of the known keys that signed it,
    as a note signature or a cosignature/v1. Unknown signatures are ignored; a known
    key's bad signature, or no known signature at all, refuses the note."""
    if not isinstance(note, str) or len(note.encode("utf-8", "replace")) > MAX_NOTE_BYTES \
            or _CONTROL.search(note) or "\n\n" not in note or not note.endswith("\n"):
        raise EvidenceError("checkpoint", "not a signed note")
    split = note.rfind("\n\n")
    body, lines = note[:split + 1], note[split + 2:-1].split("\n")
    checkpoint = parse_checkpoint(body, s.hash_size)
    known: dict[tuple[str, bytes], tuple[str, bytes, bool]] = {}
    for name, public_key in keys.items():
        known[name, key_id(name, s.note_type, public_key)] = (name, public_key, False)
        known[name, key_id(name, s.cosignature_type, public_key)] = (name, public_key, True)
    if len(lines) > MAX_SIGNATURES:
        raise EvidenceError("checkpoint", "the note has too many signatures")
    signed: list[str] = []
    for line in lines:
        parts = line[2:].split(" ") if line.startswith("\u2014 ") else []
        if len(parts) != 2 or not parts[0] or "+" in parts[0]:
            raise EvidenceError("checkpoint", f"not a signature line: {line[:80]!r}")
        raw = _b64(parts[1], "signature", "checkpoint")
        if len(raw) < 5:
            raise EvidenceError("checkpoint", "a signature is shorter than a key ID")
        key = known.get((parts[0], raw[:4]))
        if key is None:
            continue
        name, public_key, cosignature = key
        message, signature = body.encode(), raw[4:]
        if cosignature:
            time = int.from_bytes(raw[4:12], "big")
            message = f"cosignature/v1\ntime {time}\n{body}".encode()
            signature = raw[12:] if len(raw) > 12 and time <= MAX_U63 else b""
        if not s.verify(public_key, message, signature):
            raise EvidenceError("checkpoint", f"bad_signature: invalid signature by known key {name}")
        if name not in signed:
            signed.append(name)
    if not signed:
        raise EvidenceError("checkpoint", "no_quorum: no validator signed the checkpoint")
    return checkpoint, signed


# -- validator sets ------------------------------------------------------------------------


def binds_genesis(genesis: dict[str, Any]) -> bool:
    """Whether every checkpoint of a chain with this genesis document names its genesis."""
    version = genesis.get("protocol_version", 1)
    return type(version) is int and version >= BOUND_TO_GENESIS


def genesis_validator_docs(genesis: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"name": v["name"], "public_key": v["public_key"],
             "consensus_key": v.get("consensus_key", ""), "power": int(v["power"])}
            for v in genesis["validators"]]


class ValidatorHistory:
    """The validator set at every height: genesis plus proven ``validator.update`` events.

    Each checkpoint is checked twice: signed by a quorum of the set that voted on its
    block, and naming (``validators`` line) the set every update up to it gives, so no
    update may be left out."""

    def __init__(self, genesis_docs: list[dict[str, Any]], suite: Suite, chain_id: str,
                 genesis_hash: bytes | None = None, bound: bool = False) -> None:
        self.genesis_docs = sorted(genesis_docs, key=lambda v: v["name"])
        self.suite, self.origin = suite, f"tally/{chain_id}/custody"
        self.updates: list[tuple[int, dict[str, Any]]] = []  # (height, details), log order
        self.genesis_hash, self.bound = genesis_hash, bound
        self.unbound = False  # set once a checkpoint is accepted without a genesis line

    def set_after(self, height: int) -> list[dict[str, Any]]:
        docs = {v["name"]: v for v in self.genesis_docs}
        for update_height, d in self.updates:
            if update_height > height:
                continue
            if d["power"] == 0:
                docs.pop(d["name"], None)
            else:
                docs[d["name"]] = {"name": d["name"], "public_key": d["public_key"],
                                   "consensus_key": d["consensus_key"], "power": d["power"]}
        return [docs[n] for n in sorted(docs)]

    def check(self, note: Any) -> tuple[Checkpoint, list[str]]:
        """The checkpoint of a quorum-signed note of this chain, and its signers."""
        if not isinstance(note, str):
            raise EvidenceError("format", "a checkpoint note is text")
        height = parse_checkpoint(note.split("\n\n", 1)[0] + "\n").number("height")
        voters = self.set_after(height - VALIDATOR_UPDATE_DELAY)
        powers = {v["name"]: int(v["power"]) for v in voters}
        if not voters or min(powers.values()) <= 0:
            raise EvidenceError("checkpoint", "the validator set has no positive power")
        checkpoint, signers = open_note(
            note, {v["name"]: bytes.fromhex(v["public_key"]) for v in voters}, self.suite)
        power, total = sum(powers[n] for n in signers), sum(powers.values())
        if power * 3 <= total * 2:
            raise EvidenceError("checkpoint", f"no_quorum: signers hold {power} of {total} voting power; "
                                              "need more than 2/3")
        if checkpoint.origin != self.origin:
            raise EvidenceError("checkpoint", f"origin {checkpoint.origin!r} is not "
                                              f"{self.origin!r}")
        self.check_genesis(checkpoint)
        expected = self.suite.hash(cbor2.dumps(self.set_after(height), canonical=True))
        if _b64(checkpoint.extension("validators"), "validators") != expected:
            raise EvidenceError("validators", f"the validator set at height {height} differs "
                                              "from the one the bundle's updates give")
        return checkpoint, signers

    def check_genesis(self, checkpoint: Checkpoint) -> None:
        """Protocol version 3 on, a checkpoint names its genesis, so a copy of the chain
        (same chain id, a reused key) cannot pass its checkpoints off as this chain's."""
        if not any(e.startswith("genesis ") for e in checkpoint.extensions):
            if self.bound:
                raise EvidenceError("genesis", "the checkpoint does not name its genesis, "
                                               "which every checkpoint of this chain does")
            self.unbound = True
        elif self.genesis_hash is None or \
                _b64(checkpoint.extension("genesis"), "genesis") != self.genesis_hash:
            raise EvidenceError("genesis", "the checkpoint was made on a chain with another "
                                           "genesis")

    def prove(self, updates: Any) -> None:
        """Learn a bundle's ``validator_updates``: all first, then each one's proof. A
        checkpoint's signing set depends only on updates two blocks older, so the
        checks are well founded in any order."""
        if not isinstance(updates, list):
            raise EvidenceError("format", "validator_updates must be a list")
        parsed, last, s = [], -1, self.suite
        for item in updates:
            _fields(item, {"index", "leaf", "details", "inclusion", "checkpoint"},
                    "validator update")
            _fields(item["inclusion"], {"tree_size", "proof"}, "validator update inclusion")
            index, leaf = item["index"], _b64(item["leaf"], "validator update leaf")
            if type(index) is not int or index <= last:
                raise EvidenceError("validators", "validator updates must be in log order")
            last, fields = index, _cbor(leaf, "validator update leaf")
            details = _b64(item["details"], "validator update details")
            if not isinstance(fields, dict) or fields.get("type") != "validator.update" or \
                    fields.get("details") != s.hash(details):
                raise EvidenceError("validators", f"entry {index} is not a validator update")
            self.updates.append((fields["height"], _cbor(details, "update details")))
            parsed.append((index, leaf, item))
        for index, leaf, item in parsed:
            checkpoint, _ = self.check(item["checkpoint"])
            if _int(item["inclusion"]["tree_size"], "update tree_size") != checkpoint.size:
                raise EvidenceError("validators", "update proof and checkpoint sizes differ")
            proof = _hashes(item["inclusion"]["proof"], s, "validators")
            if not verify_inclusion(s.hash, index, checkpoint.size, leaf, proof,
                                    checkpoint.root):
                raise EvidenceError("validators", f"update {index} is not in the log")


def validator_history(updates: Any, genesis: dict[str, Any], s: Suite, chain_id: str,
                      genesis_hash: bytes) -> ValidatorHistory:
    """The validator sets of a genesis document and the updates a bundle proves."""
    history = ValidatorHistory(genesis_validator_docs(genesis), s, chain_id, genesis_hash,
                               binds_genesis(genesis))
    history.prove(updates)
    return history


# -- the bundle ----------------------------------------------------------------------------


def verify_bundle(bundle: dict[str, Any] | str | bytes, *, genesis_hash: str | None = None
                  ) -> Verdict:
    """Check a bundle completely: a :class:`Verdict`, or :class:`EvidenceError`. Text and
    bytes are parsed strictly (:func:`parse_bundle`); a dict is held to the same types."""
    if isinstance(bundle, (str, bytes)):
        bundle = parse_bundle(bundle)
    if not isinstance(bundle, dict) or bundle.get("format") != FORMAT:
        raise EvidenceError("format", f"not a {FORMAT} bundle")
    if not BUNDLE_FIELDS <= set(bundle) <= BUNDLE_FIELDS | OPTIONAL_FIELDS:
        raise EvidenceError("format", "unexpected or missing fields: "
                            + ", ".join(sorted(set(bundle) ^ BUNDLE_FIELDS - OPTIONAL_FIELDS)))
    try:
        return _verify(bundle, genesis_hash)
    except (KeyError, TypeError, IndexError, AttributeError, ValueError) as exc:
        raise EvidenceError("format", f"missing or mistyped field: {exc!r}") from None


def _verify(bundle: dict[str, Any], pinned: str | None) -> Verdict:
    # 1. The trust anchor: genesis and its validators.
    genesis_bytes = _b64(bundle["genesis"], "genesis")
    genesis = _cbor(genesis_bytes, "genesis")
    s = suite(genesis.get("suite"))
    actual = s.hash(genesis_bytes).hex()
    if bundle["suite"] != s.name:
        raise EvidenceError("genesis", "the bundle's suite differs from its genesis suite")
    if bundle["genesis_hash"] != actual:
        raise EvidenceError("genesis", "the genesis document does not hash to genesis_hash")
    if pinned is not None and pinned.lower() != actual:
        raise EvidenceError("genesis", f"genesis hash {actual} is not the pinned {pinned.lower()}")
    chain_id = genesis["chain_id"]
    if bundle["chain_id"] != chain_id:
        raise EvidenceError("genesis", "the bundle's chain id differs from its genesis")

    # 2. The validator sets since genesis; the event's checkpoint, signed by its set.
    history = validator_history(bundle["validator_updates"], genesis, s, chain_id,
                                bytes.fromhex(actual))
    checkpoint, signers = history.check(bundle["checkpoint"])

    # 3. The event is in its log: the custody log, or the commercial log it names.
    log = bundle.get("log", "custody")
    if log not in ("custody", "commercial"):
        raise EvidenceError("format", "log must be 'custody' or 'commercial'")
    commercial = log == "commercial"
    size, root = _tree(checkpoint, commercial)
    event, inclusion = bundle["event"], bundle["inclusion"]
    _fields(event, {"index", "leaf", "details"}, "event")
    index, leaf = _int(event["index"], "event index"), _b64(event["leaf"], "event leaf")
    _fields(inclusion, {"tree_size", "proof"}, "inclusion")
    if _int(inclusion["tree_size"], "inclusion tree_size") != size:
        raise EvidenceError("inclusion", "the proof is for another tree size than the checkpoint")
    if not verify_inclusion(s.hash, index, size, leaf, _hashes(inclusion["proof"], s,
                                                               "inclusion"), root):
        raise EvidenceError("inclusion", f"entry {index} is not in the log at size {size}")

    # 4. What the leaf says, its details, and the transaction behind it.
    fields, details = _cbor(leaf, "event leaf"), {}
    if commercial:
        if not isinstance(fields, dict) or set(fields) != COMMERCIAL_LEAF_FIELDS or \
                event["details"] is not None:
            raise EvidenceError("leaf", "the leaf is not a Tally contract event")
    elif not isinstance(fields, dict) or set(fields) != LEAF_FIELDS:
        raise EvidenceError("leaf", "the leaf is not a Tally event")
    elif fields["details"] is not None:
        if event["details"] is None:
            raise EvidenceError("details", "the leaf commits to details the bundle lacks")
        details_bytes = _b64(event["details"], "details")
        if s.hash(details_bytes) != fields["details"]:
            raise EvidenceError("details", "the details do not hash to the leaf's details hash")
        details = _cbor(details_bytes, "details")
    elif event["details"] is not None:
        raise EvidenceError("details", "the bundle carries details the leaf does not name")
    signer = None
    if bundle["transaction"] is not None:
        signer = _transaction(_b64(bundle["transaction"], "transaction"), fields["tx"],
                              chain_id, s)

    who = f"signed by {', '.join(signers)}"
    if commercial:
        facts = [_describe_contract_event(fields, index, signer),
                 f"It is entry {index} of the commercial log, whose root at size {size} is "
                 f"named by the custody checkpoint of height {checkpoint.number('height')} {who}."]
    else:
        facts = [_describe(fields, details, index, signer),
                 f"It is entry {index} of log {checkpoint.origin!r}, included in the checkpoint "
                 f"of size {checkpoint.size} {who}."]
    if history.unbound:
        facts.append("The checkpoint does not name its genesis (protocol version 1 or 2): it "
                     "proves the event on a chain of this genesis's validators, not that no "
                     "copy of the chain reusing a validator's key made it.")
    if signer is None:
        facts.append(f"The bundle does not carry transaction {fields['tx'].hex()}, so it "
                     "does not show who requested the event.")
    if history.updates:
        facts.append(f"The validator set changed {len(history.updates)} time(s) since genesis; "
                     "each change was checked against the set before it.")

    # 5. Optionally: the log grew without rewriting that checkpoint.
    if "consistency" in bundle:
        _fields(bundle["consistency"], {"checkpoint", "proof"}, "consistency")
        later, later_signers = history.check(bundle["consistency"]["checkpoint"])
        later_size, later_root = _tree(later, commercial)
        proof = _hashes(bundle["consistency"]["proof"], s, "consistency")
        if not verify_consistency(s.hash, size, later_size, proof, root, later_root):
            raise EvidenceError("consistency", f"the log at size {later_size} does not extend "
                                               f"the log at size {size}")
        facts.append(f"The log at the later checkpoint of size {later_size} (signed by "
                     f"{', '.join(later_signers)}) still contains it unchanged.")
    if pinned is None:
        facts.append(f"The genesis hash {actual} was not pinned: compare it with the "
                     "consortium's published value.")
    described = jsonable(fields) | {"details": jsonable(details)}
    if commercial:
        described["data"] = jsonable(_cbor(fields["data"], "contract event data"))
    return Verdict(described, facts, signers, pinned is not None)


def _tree(checkpoint: Checkpoint, commercial: bool) -> tuple[int, bytes]:
    """The (size, root) of the custody log, or of the commercial log as the custody
    checkpoint's ``commercial <size> <base64 root>`` line names it."""
    if not commercial:
        return checkpoint.size, checkpoint.root
    parts = checkpoint.extension("commercial").split(" ")
    if len(parts) != 2 or not _DECIMAL.match(parts[0]):
        raise EvidenceError("checkpoint", "malformed 'commercial' line")
    return int(parts[0]), _b64(parts[1], "commercial root")


def _transaction(raw: bytes, tx_id: bytes, chain_id: str, s: Suite) -> str:
    """The signer address of the transaction ``[body, signature]`` the leaf names."""
    envelope = _cbor(raw, "transaction")
    if not (isinstance(envelope, list) and len(envelope) == 2):
        raise EvidenceError("transaction", "not a Tally transaction")
    body_bytes, signature = envelope
    if s.hash(body_bytes) != tx_id:
        raise EvidenceError("transaction", "the transaction is not the one the event names")
    body = _cbor(body_bytes, "transaction body")
    if body.get("chain") != chain_id:
        raise EvidenceError("transaction", "the transaction is for another chain")
    if not s.verify(body["signer"], TX_SIGNING_DOMAIN + body_bytes, signature):
        raise EvidenceError("transaction", "the transaction's signature does not verify")
    return s.address(body["signer"])


def _when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _requested(f: dict[str, Any], signer: str | None) -> str:
    return f" Requested by transaction {f['tx'].hex()} signed by account {signer}." \
        if signer else ""


def _describe(f: dict[str, Any], details: dict[str, Any], index: int, signer: str | None
              ) -> str:
    parts = [f"Event {index} ({f['type']}) at height {f['height']}, {_when(f['time'])}:"]
    if f["quantity"]:
        parts.append(f"{f['quantity']} units of {f['asset']}")
    elif f["asset"]:
        parts.append(f"asset {f['asset']}")
    parts += [f"from {f['from']}"] if f["from"] else []
    parts += [f"to {f['to']}"] if f["to"] else []
    parts += [f"document hash {f['data'].hex()}"] if f["data"] is not None else []
    parts += ["details " + json.dumps(jsonable(details), sort_keys=True)] if details else []
    return " ".join(parts) + "." + _requested(f, signer)


def _describe_contract_event(f: dict[str, Any], index: int, signer: str | None) -> str:
    data = json.dumps(jsonable(_cbor(f["data"], "contract event data")), sort_keys=True)
    return (f"Contract event {index}: contract {f['contract']!r} emitted {f['name']!r} "
            f"{data} at height {f['height']}, {_when(f['time'])}." + _requested(f, signer))


# -- equivocation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Misbehaviour:
    """Two validly signed checkpoints of one log that cannot both be true, and the
    validators who signed both: proof that they equivocated."""

    origin: str
    checkpoint_a: Checkpoint
    checkpoint_b: Checkpoint
    signers: tuple[str, ...]
    reason: str
    note_a: str
    note_b: str


def find_misbehaviour(genesis_bytes: bytes, note_a: str, note_b: str) -> Misbehaviour | None:
    """Same origin and size, different roots, signed by genesis validators: returns the
    proof naming those who signed both, or None. Notes of another genesis (protocol
    version 3 on) never conflict with this chain's: a copy of the chain reusing a key
    must not make an honest validator look like an equivocator."""
    genesis = _cbor(genesis_bytes, "genesis")
    s = suite(genesis.get("suite"))
    history = ValidatorHistory([], s, genesis.get("chain_id", ""), s.hash(genesis_bytes),
                               binds_genesis(genesis))
    for note in (note_a, note_b):
        history.check_genesis(parse_checkpoint(note.split("\n\n", 1)[0] + "\n", s.hash_size))
    keys = {v["name"]: bytes.fromhex(v["public_key"]) for v in genesis_validator_docs(genesis)}
    (a, signed_a), (b, signed_b) = open_note(note_a, keys, s), open_note(note_b, keys, s)
    both = tuple(n for n in signed_a if n in signed_b)
    if a.origin != b.origin or a.size != b.size or a.root == b.root or not both:
        return None
    return Misbehaviour(a.origin, a, b, both, f"two different roots for tree size {a.size}",
                        note_a, note_b)
