"""tally-verify: check a Tally evidence bundle (tally-evidence/v1) offline, following the
steps of docs/evidence-spec.md in order. It imports nothing of Tally: PyNaCl (Ed25519),
``cbor2`` (canonical form checked by re-encoding) and OpenSSL 3's libcrypto (SM3 through
hashlib, SM2 through ctypes). Each check is ``_require(what must hold, reason, message)``;
a refusal is an :class:`EvidenceError` with the spec's reason. Unknown fields are refused."""

import argparse
import base64
import ctypes
import datetime as dt
import hashlib
import json
import os
import re
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import cbor2
import nacl.bindings

FORMAT = "tally-evidence/v1"
TX_SIGNING_DOMAIN = b"tally/tx/v1\x00"
BOUND_TO_GENESIS = 3  # the protocol version from which checkpoints name their genesis
VALIDATOR_UPDATE_DELAY = 2  # an update made in block h applies from block h + 2
MAX_DEPTH, MAX_U63, MAX_NOTE_BYTES, MAX_SIGNATURES = 8, (1 << 63) - 1, 1 << 20, 100
BUNDLE_FIELDS = frozenset({"format", "chain_id", "suite", "genesis", "genesis_hash", "event",
                           "inclusion", "checkpoint", "transaction", "validator_updates"})
OPTIONAL_FIELDS = frozenset({"consistency", "log"})
LEAF_FIELDS = {  # of the log a bundle names (``log``; custody when absent)
    "custody": frozenset({"height", "tx", "index", "type", "asset", "from", "to", "quantity",
                          "data", "details", "time"}),
    "commercial": frozenset({"tx", "data", "name", "time", "index", "height", "contract"})}
VALIDATOR_FIELDS = ("name", "public_key", "consensus_key", "power")
_pool = lru_cache(maxsize=None)(lambda pid: ThreadPoolExecutor(1))  # one per process: a
# forked child has no threads, and a pool it inherited would never run its tasks

class EvidenceError(Exception):
    """The bundle does not prove what it claims; ``reason`` is one of the spec's codes."""
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason, self.message = reason, message

def _require(condition: object, reason: str, message: str) -> None:
    if not condition:
        raise EvidenceError(reason, message)

@dataclass
class Verdict:
    """What the bundle proves, in words a person can read back."""
    event: dict[str, Any]
    facts: list[str]
    signers: list[str]
    genesis_pinned: bool

# -- suites: intl = Ed25519 + SHA-256, gm = SM2 (default ID) + SM3 ----------------------
@dataclass(frozen=True)
class Suite:
    name: str
    hash: Callable[[bytes], bytes]
    verify: Callable[[bytes, bytes, bytes], bool]  # (public key, message, signature)
    note_type: bytes  # the signature type in note key IDs (decision 0101)
    cosignature_type: bytes  # ... in cosignature key IDs (decision 0202)
    hash_size: int = 32

def _ed25519(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """RFC 8032 as libsodium checks it (canonical S and A, no small-order A)."""
    try:
        nacl.bindings.crypto_sign_open(bytes(signature) + bytes(message), bytes(public_key))
        return len(signature) == 64
    except Exception:  # libsodium's CryptoError, or a key or signature of the wrong type
        return False

#: DER SubjectPublicKeyInfo up to the point: id-ecPublicKey, curve SM2 (1.2.156.10197.1.301).
_SM2_SPKI = bytes.fromhex("3059301306072a8648ce3d020106082a811ccf5501822d034200")
_V, _P, _I = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int

@lru_cache(maxsize=1)
def _libcrypto() -> ctypes.CDLL:
    for name in ("libcrypto.so.3", "libcrypto.3.dylib", "libcrypto-3-x64.dll"):
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        for fn, restype, args in (
                ("d2i_PUBKEY", _V, [_V, ctypes.POINTER(_P), ctypes.c_long]),
                ("EVP_PKEY_free", None, [_V]), ("EVP_MD_CTX_new", _V, []),
                ("EVP_MD_CTX_free", None, [_V]), ("ERR_clear_error", None, []),
                ("EVP_DigestVerifyInit_ex", _I, [_V, ctypes.POINTER(_V), _P, _V, _P, _V, _V]),
                ("EVP_PKEY_CTX_set1_id", _I, [_V, _P, _I]),
                ("EVP_DigestVerify", _I, [_V, _P, ctypes.c_size_t, _P, ctypes.c_size_t])):
            getattr(lib, fn).restype, getattr(lib, fn).argtypes = restype, args
        return lib
    raise EvidenceError("genesis", "the gm suite needs OpenSSL 3's libcrypto")

@lru_cache(maxsize=1024)
class _Sm2Key:
    """A libcrypto SM2 public key (NULL unless on the curve), cached: decoding it costs a
    tenth of a verification, and a chain has few signers."""
    def __init__(self, point: bytes) -> None:
        self.lib, spki = _libcrypto(), _SM2_SPKI + point
        self.pointer = self.lib.d2i_PUBKEY(None, ctypes.byref(_P(spki)), len(spki))

    def __del__(self) -> None:
        self.lib.EVP_PKEY_free(self.pointer)

def _sm2(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """SM2-SM3, default ID (GB/T 32918.2); key 04 || x || y, signature r || s (libcrypto
    refuses r or s outside [1, n-1])."""
    if len(signature) != 64 or len(public_key) != 65 or public_key[0] != 4:
        return False
    rs = [int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")]
    ints = [n.to_bytes(n.bit_length() // 8 + 1, "big") for n in rs]  # room for a sign bit
    der = b"".join(b"\x02" + bytes([len(i)]) + i for i in ints)
    der = b"\x30" + bytes([len(der)]) + der  # ECDSA-Sig-Value, as libcrypto reads it
    lib, key, ctx, pkey_ctx = _libcrypto(), _Sm2Key(bytes(public_key)).pointer, None, _V()
    try:
        ok = bool(key) and bool(ctx := lib.EVP_MD_CTX_new()) \
            and lib.EVP_DigestVerifyInit_ex(ctx, ctypes.byref(pkey_ctx), b"SM3", None, None,
                                            key, None) == 1 \
            and lib.EVP_PKEY_CTX_set1_id(pkey_ctx, b"1234567812345678", 16) == 1 \
            and lib.EVP_DigestVerify(ctx, der, len(der), message, len(message)) == 1
        if not ok:
            lib.ERR_clear_error()  # hashlib and ssl read the same error queue
        return ok
    finally:
        lib.EVP_MD_CTX_free(ctx)

SUITES = {
    "intl": Suite("intl", lambda d: hashlib.sha256(d).digest(), _ed25519, b"\x01", b"\x04"),
    "gm": Suite("gm", lambda d: hashlib.new("sm3", d).digest(), _sm2, b"\xffsm2-sm3\x00",
                b"\xfftally-cosignature/v1/sm2-sm3\x00")}

def suite(name: Any) -> Suite:
    _require(name in SUITES, "genesis", f"unknown crypto suite {name!r}")
    return SUITES[name]

# -- strict decoding: JSON, base64, CBOR -------------------------------------------------
#: JSON strings (their brackets are not nesting), unrolled so that matching is linear.
_STRINGS, _BRACKETS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"'), re.compile(r"[\[\]{}]")

def parse_bundle(data: str | bytes) -> dict[str, Any]:
    """A bundle's JSON in its one accepted form: UTF-8 without a byte-order mark, no duplicate
    keys, integers only (no ``58.0``, ``1e3``, ``NaN``), nesting at most ``MAX_DEPTH``."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError:  # UTF-16 among others
        raise EvidenceError("format", "the bundle is not UTF-8 (nor is a UTF-16 byte-order mark)"
                            ) from None
    _require(text[:1] != "\ufeff", "format", "the bundle starts with a byte-order mark")
    depth = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub("", text)):
        if (depth := depth + (1 if bracket in "[{" else -1)) > MAX_DEPTH:
            raise EvidenceError("format", f"the bundle nests deeper than {MAX_DEPTH} levels")
    try:  # (the EvidenceError of a hook below is not a ValueError: it passes through)
        value = json.loads(text, parse_float=_no_float, parse_constant=_no_float,
                           object_pairs_hook=lambda pairs: _require(
                               len({k for k, _ in pairs}) == len(pairs), "format",
                               "a key appears twice in one object") or dict(pairs))
    except (ValueError, RecursionError) as exc:
        raise EvidenceError("format", f"the bundle is not JSON: {exc}") from None
    _require(isinstance(value, dict), "format", "the bundle is not a JSON object")
    return value

def _no_float(text: str) -> None:
    raise EvidenceError("format", f"{text} is not an integer: a bundle's numbers are integers")

def _int(value: Any, what: str) -> int:
    _require(type(value) is int and value >= 0, "format", f"{what} must be a whole number")
    return value

def _fields(value: Any, names: set[str], what: str) -> None:
    _require(isinstance(value, dict) and set(value) == names, "format",
             f"{what} must have the fields {', '.join(sorted(names))}")

def _b64(text: Any, what: str, reason: str = "format") -> bytes:
    """Padded standard base64 in its one canonical spelling (RFC 4648 §4)."""
    try:
        data = base64.b64decode(text, validate=True)
    except (TypeError, ValueError):  # binascii.Error is a ValueError
        raise EvidenceError(reason, f"{what} is not base64") from None
    _require(base64.b64encode(data).decode() == text, reason, f"{what}: non-canonical base64")
    return data

def parse_cbor(data: bytes, what: str) -> Any:
    """Deterministic CBOR (RFC 8949 §4.2.1): it must re-encode to the same bytes."""
    try:
        value = cbor2.loads(data)
    except Exception:
        raise EvidenceError("format", f"{what} is not CBOR") from None
    _require(cbor2.dumps(value, canonical=True) == data, "format", f"{what}: non-canonical CBOR")
    return value

def jsonable(value: Any) -> Any:
    """Decoded CBOR as JSON: bytes become hex."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value.hex() if isinstance(value, bytes) else value

# -- RFC 9162 Merkle proofs ---------------------------------------------------------------
def _hashes(items: Any, s: Suite, reason: str) -> list[bytes]:
    _require(isinstance(items, list), "format", "a proof must be a list")
    out = [_b64(p, "proof hash") for p in items]
    _require(all(len(p) == s.hash_size for p in out), reason, "a proof hash's length is wrong")
    return out

def _walk(h: Callable[[bytes], bytes], fn: int, sn: int, seed: bytes, path: list[bytes]
          ) -> tuple[bytes, bytes]:
    """RFC 9162 §2.1.3.2 step 4 / §2.1.4.2 step 6: roots (fr, sr), or empty if too long/short."""
    fr = sr = seed
    for c in path:
        if sn == 0:
            return b"", b""
        if fn & 1 or fn == sn:
            fr, sr = h(b"\x01" + c + fr), h(b"\x01" + c + sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = h(b"\x01" + sr + c)
        fn, sn = fn >> 1, sn >> 1
    return (fr, sr) if sn == 0 else (b"", b"")

def verify_inclusion(h: Callable[[bytes], bytes], index: int, size: int, leaf: bytes,
                     proof: list[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2 for the leaf bytes ``leaf`` (its hash is H(0x00 || leaf))."""
    return index < size and _walk(h, index, size - 1, h(b"\x00" + leaf), proof)[1] == root

def verify_consistency(h: Callable[[bytes], bytes], size1: int, size2: int,
                       proof: list[bytes], root1: bytes, root2: bytes) -> bool:
    """RFC 9162 §2.1.4.2 for 0 < size1 <= size2 (equal sizes: empty proof, equal roots)."""
    if not 0 < size1 <= size2 or (size1 == size2) != (not proof):
        return False
    if size1 == size2:
        return root1 == root2
    path = [root1, *proof] if size1 & (size1 - 1) == 0 else proof
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    return _walk(h, fn, sn, path[0], path[1:]) == (root1, root2)

def _included(inclusion: dict[str, Any], s: Suite, index: int, leaf: bytes, size: int,
              root: bytes, reason: str) -> None:
    """RFC 9162 §2.1.3.2: ``inclusion`` puts ``leaf`` at ``index`` in the tree (size, root)."""
    _require(_int(inclusion["tree_size"], "tree_size") == size, reason,
             "the proof is for another tree size than the checkpoint")
    _require(verify_inclusion(s.hash, index, size, leaf, _hashes(inclusion["proof"], s, reason),
                              root), reason, f"entry {index} is not in the log of size {size}")

# -- C2SP checkpoints in signed notes, with cosignatures -----------------------------------
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
        """The value of the one ``<name> <value>`` line."""
        values = [e[len(name) + 1:] for e in self.extensions if e.startswith(name + " ")]
        _require(len(values) == 1, "checkpoint", f"the checkpoint has no single '{name}' line")
        return values[0]

    def number(self, name: str) -> int:
        _require(_DECIMAL.match(text := self.extension(name)), "checkpoint", f"bad '{name}'")
        return int(text)

def parse_checkpoint(body: str, hash_size: int = 32) -> Checkpoint:
    """A checkpoint text (ending in a newline) in the one form that re-encodes to itself."""
    lines = body[:-1].split("\n") if isinstance(body, str) and body.endswith("\n") else []
    _require(len(lines) >= 3 and lines[0] and "" not in lines[3:] and not _CONTROL.search(body)
             and _DECIMAL.match(lines[1]) and int(lines[1]) <= MAX_U63, "checkpoint",
             "malformed checkpoint text")
    root = _b64(lines[2], "root hash", "checkpoint")
    _require(len(root) == hash_size, "checkpoint", "the root hash has the wrong length")
    return Checkpoint(lines[0], int(lines[1]), root, tuple(lines[3:]))

def key_id(name: str, signature_type: bytes, public_key: bytes) -> bytes:
    """c2sp.org/signed-note: SHA-256(name || 0x0A || type || public key)[:4], every suite."""
    return hashlib.sha256(name.encode() + b"\n" + signature_type + public_key).digest()[:4]

def open_note(note: Any, keys: dict[str, bytes], s: Suite) -> tuple[Checkpoint, list[str]]:
    """A signed note's checkpoint and the known keys that signed it (note signature or
    cosignature/v1). A known key's bad signature, or none known, refuses the note."""
    _require(isinstance(note, str) and len(note) <= MAX_NOTE_BYTES and note.endswith("\n")
             and not _CONTROL.search(note) and len(note.encode()) <= MAX_NOTE_BYTES
             and "\n\n" in note[:-1], "checkpoint", "not a signed note")
    split = note.rfind("\n\n")
    body, lines = note[:split + 1], note[split + 2:-1].split("\n")
    checkpoint = parse_checkpoint(body, s.hash_size)
    _require(len(lines) <= MAX_SIGNATURES, "checkpoint", "the note has too many signatures")
    known = {(name, key_id(name, kind, public_key)): (name, public_key, kind == s.note_type)
             for name, public_key in keys.items() for kind in (s.note_type, s.cosignature_type)}
    signed: list[str] = []
    for line in lines:
        parts = line[2:].split(" ") if line.startswith("\u2014 ") else []
        _require(len(parts) == 2 and parts[0] and not re.search(r"[+\s]", parts[0]), "checkpoint",
                 f"not a signature line: {line[:80]!r}")
        raw = _b64(parts[1], "signature", "checkpoint")
        _require(len(raw) >= 5, "checkpoint", "a signature is shorter than a key ID")
        if (key := known.get((parts[0], raw[:4]))) is None:
            continue
        name, public_key, plain = key
        message, signature = body.encode(), raw[4:]
        if not plain:  # cosignature/v1: u64 timestamp || signature over header and body
            time = int.from_bytes(raw[4:12], "big")
            message = f"cosignature/v1\ntime {time}\n{body}".encode()
            signature = raw[12:] if len(raw) > 12 and time <= MAX_U63 else b""
        _require(s.verify(public_key, message, signature), "checkpoint",
                 f"bad_signature: invalid signature by {name}")
        signed += [] if name in signed else [name]
    _require(signed, "checkpoint", "no_quorum: no validator signed the checkpoint")
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
    A checkpoint is signed by a quorum of the set that voted on its block and names the
    set all updates up to it give (none may be left out). ``bound_from``: see verify_bundle."""
    def __init__(self, genesis_docs: list[dict[str, Any]], suite: Suite, chain_id: str,
                 genesis_hash: bytes | None = None, bound: bool = False,
                 bound_from: int | None = None) -> None:
        self.suite, self.origin = suite, f"tally/{chain_id}/custody"
        self.genesis_docs, self.genesis_hash = genesis_docs, genesis_hash
        self.bound, self.bound_from = bound, bound_from
        self.updates: list[tuple[int, dict[str, Any]]] = []  # (height, details), log order
        self.unbound = False  # set once a checkpoint is accepted without a genesis line

    def set_after(self, height: int) -> list[dict[str, Any]]:
        """The set once the updates of blocks up to ``height`` apply (power 0 removes)."""
        docs: dict[str, Any] = {v["name"]: v for v in self.genesis_docs}
        for d in (d for h, d in self.updates if h <= height):
            docs[d["name"]] = None if d["power"] == 0 else {k: d[k] for k in VALIDATOR_FIELDS}
        return [docs[n] for n in sorted(docs) if docs[n] is not None]

    def check(self, note: Any) -> tuple[Checkpoint, list[str]]:
        """The checkpoint of a quorum-signed note of this chain, and its signers."""
        _require(isinstance(note, str), "format", "a checkpoint note is text")
        height = parse_checkpoint(note.split("\n\n", 1)[0] + "\n").number("height")
        voters = self.set_after(height - VALIDATOR_UPDATE_DELAY)
        powers = {v["name"]: int(v["power"]) for v in voters}
        _require(voters and min(powers.values()) > 0, "checkpoint", "no voting power")
        checkpoint, signers = open_note(
            note, {v["name"]: bytes.fromhex(v["public_key"]) for v in voters}, self.suite)
        power, total = sum(powers[n] for n in signers), sum(powers.values())
        _require(power * 3 > total * 2, "checkpoint", f"no_quorum: {power} of {total} power signed")
        _require(checkpoint.origin == self.origin, "checkpoint", f"origin {checkpoint.origin!r}")
        self.check_genesis(checkpoint)
        expected = self.suite.hash(cbor2.dumps(self.set_after(height), canonical=True))
        _require(_b64(checkpoint.extension("validators"), "validators") == expected,
                 "validators", f"the validator set at {height} is not the one the updates give")
        return checkpoint, signers

    def check_genesis(self, checkpoint: Checkpoint) -> None:
        """From protocol version 3 a checkpoint names its genesis: a chain's copy cannot pass."""
        if any(e.startswith("genesis ") for e in checkpoint.extensions):
            _require(_b64(checkpoint.extension("genesis"), "genesis") == self.genesis_hash,
                     "genesis", "the checkpoint was made on a chain with another genesis")
            return
        late = self.bound_from is not None and checkpoint.number("height") >= self.bound_from
        _require(not self.bound and not late, "genesis", "the checkpoint does not name its genesis")
        self.unbound = True

    def prove(self, updates: Any) -> None:
        """Learn ``validator_updates``: all, then their proofs. Each update of block u is
        proven by a checkpoint of block u or u + 1, so signed by the set before it: an
        update signed by the key it adds would prove itself."""
        _require(isinstance(updates, list), "format", "validator_updates must be a list")
        parsed, last, s = [], -1, self.suite
        for item in updates:
            _fields(item, {"index", "leaf", "details", "inclusion", "checkpoint"}, "an update")
            _fields(item["inclusion"], {"tree_size", "proof"}, "an update's inclusion")
            index, leaf = item["index"], _b64(item["leaf"], "update leaf")
            _require(type(index) is int and index > last, "validators", "updates out of order")
            last, fields = index, parse_cbor(leaf, "update leaf")
            details = _b64(item["details"], "update details")
            _require(isinstance(fields, dict) and fields.get("type") == "validator.update"
                     and fields.get("details") == s.hash(details), "validators",
                     f"entry {index} is not a validator update")
            _require(not self.updates or fields["height"] >= self.updates[-1][0], "validators",
                     "updates out of order")
            self.updates.append((fields["height"], parse_cbor(details, "update details")))
            parsed.append((fields["height"], index, leaf, item))
        for height, index, leaf, item in parsed:
            checkpoint, _ = self.check(item["checkpoint"])
            _require(checkpoint.number("height") < height + VALIDATOR_UPDATE_DELAY,
                     "validators", f"update {index} is not proven by the set before it")
            _included(item["inclusion"], s, index, leaf, checkpoint.size, checkpoint.root,
                      "validators")

# -- the bundle ----------------------------------------------------------------------------
def verify_bundle(bundle: dict[str, Any] | str | bytes, *, genesis_hash: str | None = None,
                  bound_from_height: int | None = None) -> Verdict:
    """A :class:`Verdict`, or :class:`EvidenceError`; text and bytes are parsed strictly.
    ``bound_from_height``: an upgraded chain's first height at protocol version 3."""
    if isinstance(bundle, (str, bytes)):
        bundle = parse_bundle(bundle)
    _require(isinstance(bundle, dict) and bundle.get("format") == FORMAT, "format",
             f"not a {FORMAT} bundle")
    keys = set(bundle)  # type: ignore[arg-type]
    _require(BUNDLE_FIELDS <= keys <= BUNDLE_FIELDS | OPTIONAL_FIELDS, "format",
             f"unexpected or missing fields: {sorted(keys ^ BUNDLE_FIELDS - OPTIONAL_FIELDS)}")
    try:  # (an EvidenceError is none of these: it passes through)
        return _verify(bundle, genesis_hash, bound_from_height)  # type: ignore[arg-type]
    except (KeyError, TypeError, IndexError, AttributeError, ValueError) as exc:
        raise EvidenceError("format", f"missing or mistyped field: {exc!r}") from None

def _verify(bundle: dict[str, Any], pinned: str | None, bound_from: int | None) -> Verdict:
    # 1. The trust anchor: genesis and its validators.
    genesis = parse_cbor(genesis_bytes := _b64(bundle["genesis"], "genesis"), "genesis")
    s = suite(genesis.get("suite"))
    actual = s.hash(genesis_bytes).hex()
    _require(bundle["suite"] == s.name, "genesis", "the bundle's suite is not the genesis's")
    _require(bundle["genesis_hash"] == actual, "genesis", "genesis_hash is not the genesis's")
    _require(pinned is None or pinned.lower() == actual, "genesis",
             f"genesis hash {actual} is not the pinned {pinned}")
    _require(bundle["chain_id"] == (chain_id := genesis["chain_id"]), "genesis",
             "the bundle's chain id is not the genesis's")
    # The transaction's signature is checked on a thread meanwhile (its error, if any, is
    # raised at step 4): libcrypto and libsodium release the GIL, so on gm the two SM2
    # verifications (0.75 ms each) overlap. A bundle without a transaction skips it.
    tx = None if bundle["transaction"] is None else _pool(os.getpid()).submit(
        _transaction, _b64(bundle["transaction"], "transaction"), chain_id, s)
    # 2. The validator sets since genesis; the event's checkpoint, signed by its set.
    history = ValidatorHistory(genesis_validator_docs(genesis), s, chain_id,
                               bytes.fromhex(actual), binds_genesis(genesis), bound_from)
    history.prove(bundle["validator_updates"])
    checkpoint, signers = history.check(bundle["checkpoint"])
    # 3. The event is in its log: the custody log, or the commercial log it names.
    log = bundle.get("log", "custody")
    _require(log in LEAF_FIELDS, "format", "log is 'custody' or 'commercial'")
    size, root = _tree(checkpoint, commercial := log == "commercial")
    _fields(event := bundle["event"], {"index", "leaf", "details"}, "event")
    index, leaf = _int(event["index"], "event index"), _b64(event["leaf"], "event leaf")
    _fields(bundle["inclusion"], {"tree_size", "proof"}, "inclusion")
    _included(bundle["inclusion"], s, index, leaf, size, root, "inclusion")
    # 4. What the leaf says, its details, and the transaction behind it.
    fields, details = parse_cbor(leaf, "event leaf"), {}
    _require(isinstance(fields, dict) and set(fields) == LEAF_FIELDS[log] and not (
        commercial and event["details"] is not None), "leaf", "the leaf is not a Tally event")
    named = not commercial and fields["details"] is not None  # the leaf names details
    _require((event["details"] is not None) == named, "details",
             "the leaf's details are missing" if named else "details the leaf does not name")
    if named:
        _require(s.hash(details_bytes := _b64(event["details"], "details")) == fields["details"],
                 "details", "the details do not hash to the leaf's details hash")
        details = parse_cbor(details_bytes, "details")
    tx_id, signer = (None, None) if tx is None else tx.result()
    _require(tx_id in (None, fields["tx"]), "transaction", "not the event's tx")
    if isinstance(signer, EvidenceError):
        raise signer
    data = parse_cbor(fields["data"], "contract event data") if commercial else fields["data"]
    who = f"signed by {', '.join(signers)}"
    facts = [_describe(fields, data if commercial else details, index, signer),
             f"It is entry {index} of the commercial log, whose root at size {size} is named "
             f"by the custody checkpoint of height {checkpoint.number('height')} {who}."
             if commercial else f"It is entry {index} of log {checkpoint.origin!r}, included "
             f"in the checkpoint of size {checkpoint.size} {who}."]
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
        _fields(later := bundle["consistency"], {"checkpoint", "proof"}, "consistency")
        checkpoint2, signers2 = history.check(later["checkpoint"])
        size2, root2 = _tree(checkpoint2, commercial)
        proof = _hashes(later["proof"], s, "consistency")
        _require(verify_consistency(s.hash, size, size2, proof, root, root2), "consistency",
                 f"the log at size {size2} does not extend that at size {size}")
        facts.append(f"The log at the later checkpoint of size {size2} (signed by "
                     f"{', '.join(signers2)}) still contains it unchanged.")
    if pinned is None:
        facts.append(f"The genesis hash {actual} was not pinned: compare it with the "
                     "consortium's published value.")
    described = jsonable(fields | {"data": data, "details": details})
    return Verdict(described, facts, signers, pinned is not None)

def _tree(checkpoint: Checkpoint, commercial: bool) -> tuple[int, bytes]:
    """The custody log's (size, root), or the commercial log's as its line names it."""
    if not commercial:
        return checkpoint.size, checkpoint.root
    parts = checkpoint.extension("commercial").split(" ")
    _require(len(parts) == 2 and _DECIMAL.match(parts[0]), "checkpoint", "bad 'commercial'")
    return int(parts[0]), _b64(parts[1], "commercial root")

def _transaction(raw: bytes, chain_id: str, s: Suite) -> tuple[bytes | None, Any]:
    """(id, signer address or the EvidenceError why not) of the transaction ``[body,
    signature]``; the caller checks the id against the leaf's first, as the spec orders."""
    try:
        envelope = parse_cbor(raw, "transaction")
        _require(isinstance(envelope, list) and len(envelope) == 2, "transaction",
                 "not a Tally tx")
    except EvidenceError as exc:
        return None, exc
    try:
        return s.hash(body_bytes := envelope[0]), _signer(body_bytes, envelope[1], chain_id, s)
    except EvidenceError as exc:
        return s.hash(body_bytes), exc

def _signer(body_bytes: bytes, signature: bytes, chain_id: str, s: Suite) -> str:
    body = parse_cbor(body_bytes, "transaction body")
    _require(body.get("chain") == chain_id, "transaction", "the tx is for another chain")
    _require(s.verify(body["signer"], TX_SIGNING_DOMAIN + body_bytes, signature),
             "transaction", "the transaction's signature does not verify")
    return s.hash(body["signer"])[:20].hex()  # the signer's account address

def _describe(f: dict[str, Any], details: Any, index: int, signer: str | None) -> str:
    """The event in words; ``details``: a contract event's decoded data instead."""
    when = dt.datetime.fromtimestamp(f["time"] / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if "contract" in f:  # an event of the commercial log
        data = json.dumps(jsonable(details), sort_keys=True)
        text = (f"Contract event {index}: contract {f['contract']!r} emitted {f['name']!r} "
                f"{data} at height {f['height']}, {when}.")
    else:
        parts = [f"Event {index} ({f['type']}) at height {f['height']}, {when}:",
                 f"{f['quantity']} units of {f['asset']}" if f["quantity"] else
                 f"asset {f['asset']}" if f["asset"] else "",
                 f"from {f['from']}" if f["from"] else "", f"to {f['to']}" if f["to"] else "",
                 "" if f["data"] is None else f"document hash {f['data'].hex()}",
                 "details " + json.dumps(jsonable(details), sort_keys=True) if details else ""]
        text = " ".join(p for p in parts if p) + "."
    return text + (f" Requested by transaction {f['tx'].hex()} signed by account {signer}."
                   if signer else "")

# -- the command line ----------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """``tally-verify bundle.json [--genesis-hash H] [--json]``: exit 0 when the bundle
    is valid, 1 when it does not prove what it claims, 2 when unreadable or malformed."""
    parser = argparse.ArgumentParser(prog="tally-verify", description=main.__doc__)
    parser.add_argument("bundle")
    parser.add_argument("--genesis-hash", help="the chain's genesis hash, obtained out of band")
    parser.add_argument("--bound-from-height", type=int,
                        help="an upgraded chain's first height at protocol version 3")
    parser.add_argument("--json", action="store_true", help="print the verdict as JSON")
    args = parser.parse_args(argv)
    try:
        with open(args.bundle, "rb") as file:
            v = verify_bundle(file.read(), genesis_hash=args.genesis_hash,
                              bound_from_height=args.bound_from_height)
        out = {"valid": True, **vars(v)}  # event, facts, signers, genesis_pinned
    except (OSError, EvidenceError) as exc:
        reason, message = getattr(exc, "reason", "unreadable"), getattr(exc, "message", exc)
        out = {"valid": False, "reason": reason, "message": str(message)}
    print(json.dumps(out) if args.json else "\n  ".join(["VALID", *out["facts"]])
          if out["valid"] else f"INVALID ({out['reason']}): {out['message']}",
          file=sys.stdout if args.json or out["valid"] else sys.stderr)
    return 0 if out["valid"] else 2 if out["reason"] in ("format", "unreadable") else 1
