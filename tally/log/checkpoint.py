"""C2SP checkpoints (tlog-checkpoint) in C2SP signed notes, with cosignatures,
quorum counting and conflict detection.

Formats (see docs/log.md for examples):

* signed note (c2sp.org/signed-note): ``text`` (ending in a newline), a blank
  line, then lines ``— <name> <base64(key ID || signature)>``; key ID =
  SHA-256(name || 0x0A || signature type || public key)[:4].
* checkpoint (c2sp.org/tlog-checkpoint): origin line, decimal tree size, base64
  root hash, then optional non-empty extension lines (Tally writes ``height N``,
  ``state <base64>``, ``time <ms>``).
* cosignature (c2sp.org/tlog-cosignature, Ed25519 type 0x04): the signature is
  ``u64 big-endian timestamp || sig`` over ``"cosignature/v1\\ntime <t>\\n" +
  checkpoint text``. Suites other than Ed25519 use the same message and layout
  under signature type ``0xff || "tally-cosignature/v1/<algorithm>"``
  (docs/decisions/0202-cosignatures-for-every-suite.md).

Everything here is parsed strictly: a court verifies these bytes offline, and two
encodings of one checkpoint would let two parties "agree" on different texts.

This module takes the suite as a parameter and only imports ``tally.crypto``
for type hints, so the standalone evidence verifier depends on nothing else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from hmac import compare_digest
from typing import TYPE_CHECKING, Protocol

from tally.errors import VerificationFailed
from tally.log.merkle import HashFn, ProofError, empty_root, roots_from_prefix_proof

if TYPE_CHECKING:
    from tally.crypto.suite import PrivateKey, Suite

__all__ = [
    "NoteError",
    "QuorumError",
    "Checkpoint",
    "parse_checkpoint",
    "key_id",
    "NoteSignature",
    "NoteSigner",
    "NoteVerifier",
    "CosignatureSigner",
    "CosignatureVerifier",
    "cosignature_type",
    "note_signature_type",
    "cosignature_message",
    "VerifiedNote",
    "parse_note",
    "signature_line",
    "sign_note",
    "add_signatures",
    "with_cosignatures",
    "open_note",
    "QuorumResult",
    "verify_quorum",
    "Misbehaviour",
    "find_conflict",
    "MAX_SIGNATURES",
    "MAX_NOTE_BYTES",
]

#: Most signature lines a note may carry (the spec requires accepting >= 16).
MAX_SIGNATURES = 100
#: Largest note accepted, in UTF-8 bytes: bounds the work an adversarial note costs.
MAX_NOTE_BYTES = 1 << 20
#: Largest tree size / timestamp: both are u64 on the wire, capped at 2^63 - 1 as in
#: tlog-cosignature (and Go's int64 tree sizes).
MAX_U63 = (1 << 63) - 1

_EM_DASH = "\u2014"
_SIG_PREFIX = _EM_DASH + " "
_COSIG_HEADER = "cosignature/v1\n"
_DECIMAL = re.compile(r"(?:0|[1-9][0-9]*)\Z")
_B64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?\Z")


class NoteError(VerificationFailed, ValueError):
    """A note or checkpoint is malformed, or its signatures do not check out.

    ``reason`` is one of the ``NoteError.*`` constants.
    """

    MALFORMED_NOTE = "malformed_note"
    MALFORMED_CHECKPOINT = "malformed_checkpoint"
    BAD_SIGNATURE = "bad_signature"
    NO_KNOWN_SIGNATURE = "no_known_signature"
    AMBIGUOUS_KEY = "ambiguous_key"
    NO_QUORUM = "no_quorum"


class QuorumError(NoteError):
    """The note is validly signed, but by too little voting power."""

    def __init__(self, message: str, signers: list[str], power: int, total: int) -> None:
        super().__init__(NoteError.NO_QUORUM, message)
        self.signers = signers
        self.power = power
        self.total = total


# -- small strict parsers -------------------------------------------------------


def _b64decode(text: str, what: str, reason: str) -> bytes:
    """Standard base64 (RFC 4648 §4), padded, canonical: exactly one spelling per
    byte string, so a signed text cannot be re-encoded into a "different" one."""
    if not _B64.match(text):
        raise NoteError(reason, f"{what} is not padded standard base64: {text!r}")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise NoteError(reason, f"{what} is not valid base64: {e}") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise NoteError(reason, f"{what} is not canonical base64 (non-zero padding bits)")
    return raw


def _parse_decimal(text: str, what: str, reason: str) -> int:
    # int() would accept "+5", " 5", "1_000" and non-ASCII digits: all rejected here.
    if not _DECIMAL.match(text):
        raise NoteError(
            reason, f"{what} must be a decimal with no sign or leading zeros, got {text!r}"
        )
    if len(text) > 19:  # 2^63 - 1 has 19 digits; also keeps int() off huge inputs
        raise NoteError(reason, f"{what} exceeds 2^63 - 1")
    value = int(text)
    if value > MAX_U63:
        raise NoteError(reason, f"{what} {value} exceeds 2^63 - 1")
    return value


def _has_control(text: str) -> bool:
    return any(c < " " and c != "\n" for c in text)


def _check_key_name(name: str) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError("a key name must be a non-empty string")
    if "+" in name or any(c.isspace() for c in name) or _has_control(name):
        raise ValueError(f"key name {name!r} must not contain spaces, '+' or control characters")


# -- checkpoints ----------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A log's signed statement "the tree called ``origin`` has ``size`` leaves and
    root ``root``", plus opaque extension lines (Tally: height, state root, time)."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not self.origin or "\n" in self.origin:
            raise ValueError("origin must be a non-empty single line")
        if _has_control(self.origin):
            raise ValueError("origin must not contain control characters")
        if not isinstance(self.size, int) or isinstance(self.size, bool):
            raise ValueError("size must be an int")
        if not 0 <= self.size <= MAX_U63:
            raise ValueError(f"size {self.size} not in [0, 2^63 - 1]")
        if not isinstance(self.root, bytes) or not self.root:
            raise ValueError("root must be non-empty bytes")
        if not isinstance(self.extensions, tuple):
            raise ValueError("extensions must be a tuple of lines")
        for line in self.extensions:
            if not isinstance(line, str) or not line or "\n" in line or _has_control(line):
                raise ValueError(f"extension line {line!r} must be a non-empty single line")

    def body(self) -> str:
        """The note text: origin, size, base64 root, extensions, each ending in \\n."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode("ascii")]
        lines.extend(self.extensions)
        return "\n".join(lines) + "\n"


def parse_checkpoint(body: str, hash_size: int = 32) -> Checkpoint:
    """Parse a checkpoint's note text (not a signed note: open it first).

    Rejects anything :meth:`Checkpoint.body` would not have produced, so
    ``parse_checkpoint(b).body() == b`` for every accepted ``b``.
    """
    r = NoteError.MALFORMED_CHECKPOINT
    if not isinstance(body, str):
        raise NoteError(r, "checkpoint text must be a str")
    if not body.endswith("\n"):
        raise NoteError(r, "checkpoint text must end with a newline")
    if _has_control(body):
        raise NoteError(r, "checkpoint text contains control characters")
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError(
            r, f"checkpoint needs origin, size and root lines, got {len(lines)} line(s)"
        )
    origin, size_text, root_text, *extensions = lines
    if not origin:
        raise NoteError(r, "empty origin line")
    size = _parse_decimal(size_text, "tree size", r)
    root = _b64decode(root_text, "root hash", r)
    if len(root) != hash_size:
        raise NoteError(r, f"root hash is {len(root)} bytes, expected {hash_size}")
    for i, line in enumerate(extensions):
        if not line:
            raise NoteError(r, f"extension line {i + 1} is empty")
    return Checkpoint(origin, size, root, tuple(extensions))


# -- keys, signers, verifiers ----------------------------------------------------


def key_id(name: str, signature_type: bytes, public_key: bytes) -> bytes:
    """C2SP signed-note key ID: SHA-256(name || 0x0A || type || public key)[:4].

    SHA-256 regardless of the chain's suite: the spec fixes it, and key IDs are
    identifiers, not security-critical hashes.
    """
    return hashlib.sha256(name.encode("utf-8") + b"\n" + signature_type + public_key).digest()[:4]


def note_signature_type(suite: Suite) -> bytes:
    """The signature-type bytes that go into a suite's note key IDs: the assigned
    byte (0x01 for Ed25519), or for 0xff — the spec's byte for unassigned types,
    which ``gm`` uses for SM2 (decision 0101) — 0xff followed by the algorithm name
    and a NUL, as the spec recommends (decision 0202)."""
    t = suite.note_signature_type
    if t == 0xFF:
        return b"\xff" + suite.signature_name.encode("ascii") + b"\x00"
    return bytes([t])


def cosignature_type(suite: Suite) -> bytes:
    """The signature-type bytes of a suite's cosignatures: C2SP's 0x04 for Ed25519;
    for other algorithms the spec's extension byte 0xff followed by a Tally
    identifier naming the algorithm and a NUL (decision 0202)."""
    if suite.signature_name == "ed25519":
        return b"\x04"
    return b"\xfftally-cosignature/v1/" + suite.signature_name.encode("ascii") + b"\x00"


def cosignature_message(body: str, timestamp: int) -> bytes:
    """The bytes a cosigner signs: ``cosignature/v1``, ``time <t>``, checkpoint text."""
    return f"{_COSIG_HEADER}time {timestamp}\n{body}".encode()


class Signer(Protocol):
    name: str
    key_id: bytes

    def sign(self, text: bytes) -> bytes:
        """The signature blob (without the key ID) for note text ``text``."""
        ...


class Verifier(Protocol):
    name: str
    key_id: bytes

    def verify(self, text: bytes, blob: bytes) -> bool:
        """Whether ``blob`` (the signature without its key ID) signs ``text``."""
        ...


class NoteSigner:
    """Signs note text with a suite key (signature type :func:`note_signature_type`)."""

    def __init__(self, name: str, private_key: PrivateKey) -> None:
        _check_key_name(name)
        self.name = name
        self._key = private_key
        self.public_key = private_key.public_key
        self.key_id = key_id(name, note_signature_type(private_key.suite), self.public_key)

    def sign(self, text: bytes) -> bytes:
        return self._key.sign(text)


class NoteVerifier:
    """Checks note signatures by one known key."""

    def __init__(self, name: str, public_key: bytes, suite: Suite) -> None:
        _check_key_name(name)
        self.name = name
        self.public_key = bytes(public_key)
        self.suite = suite
        self.key_id = key_id(name, note_signature_type(suite), self.public_key)

    def verify(self, text: bytes, blob: bytes) -> bool:
        return self.suite.verify(self.public_key, text, blob)


class CosignatureSigner:
    """A witness/validator that cosigns checkpoints (tlog-cosignature v1).

    ``clock`` returns POSIX seconds; a node passes its block time so that every
    replay of a block produces the same cosignature.
    """

    def __init__(
        self, name: str, private_key: PrivateKey, clock: Callable[[], int] | None = None
    ) -> None:
        _check_key_name(name)
        self.name = name
        self._key = private_key
        self.public_key = private_key.public_key
        self.key_id = key_id(name, cosignature_type(private_key.suite), self.public_key)
        self._clock = clock if clock is not None else (lambda: int(time.time()))

    def sign(self, text: bytes) -> bytes:
        return self.cosign(text.decode("utf-8"), self._clock())

    def cosign(self, body: str, timestamp: int) -> bytes:
        """The blob ``u64 BE timestamp || signature`` for checkpoint text ``body``."""
        if not isinstance(timestamp, int) or not 0 <= timestamp <= MAX_U63:
            raise ValueError(f"timestamp {timestamp!r} not in [0, 2^63 - 1]")
        parse_checkpoint(body, self._key.suite.hash_size)  # cosign checkpoints only
        sig = self._key.sign(cosignature_message(body, timestamp))
        return timestamp.to_bytes(8, "big") + sig


class CosignatureVerifier:
    """Checks cosignatures by one known cosigner key."""

    def __init__(self, name: str, public_key: bytes, suite: Suite) -> None:
        _check_key_name(name)
        self.name = name
        self.public_key = bytes(public_key)
        self.suite = suite
        self.key_id = key_id(name, cosignature_type(suite), self.public_key)

    @staticmethod
    def timestamp_of(blob: bytes) -> int:
        return int.from_bytes(blob[:8], "big")

    def verify(self, text: bytes, blob: bytes) -> bool:
        if len(blob) <= 8:
            return False
        timestamp = self.timestamp_of(blob)
        if timestamp > MAX_U63:
            return False
        try:
            body = text.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return self.suite.verify(self.public_key, cosignature_message(body, timestamp), blob[8:])


# -- notes ------------------------------------------------------------------------


@dataclass(frozen=True)
class NoteSignature:
    """One parsed (not yet verified) signature line."""

    name: str
    key_id: bytes
    blob: bytes  # the signature after the 4-byte key ID

    def line(self) -> str:
        return f"{_SIG_PREFIX}{self.name} {base64.b64encode(self.key_id + self.blob).decode()}\n"


@dataclass(frozen=True)
class VerifiedNote:
    """A note whose text is vouched for by at least one known key."""

    body: str
    signed_by: list[str]
    #: For each cosigner in ``signed_by`` whose cosignature verified: its timestamp.
    cosigned_at: dict[str, int] = field(default_factory=dict)


def _check_text(body: str, reason: str) -> None:
    if not isinstance(body, str) or not body.endswith("\n"):
        raise NoteError(reason, "note text must be a str ending in a newline")
    if _has_control(body):
        raise NoteError(reason, "note text contains control characters")


def parse_note(note: str | bytes) -> tuple[str, list[NoteSignature]]:
    """Split a signed note into its text and signature lines, checking only syntax.

    The text ends at the last blank line (signed-note §Format); everything after
    it must be well-formed signature lines, and nothing else.
    """
    r = NoteError.MALFORMED_NOTE
    if isinstance(note, bytes | bytearray):
        if len(note) > MAX_NOTE_BYTES:
            raise NoteError(r, f"note is larger than {MAX_NOTE_BYTES} bytes")
        try:
            note = bytes(note).decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError(r, "note is not valid UTF-8") from None
    if not isinstance(note, str):
        raise NoteError(r, "note must be str or bytes")
    if len(note) > MAX_NOTE_BYTES:
        raise NoteError(r, f"note is larger than {MAX_NOTE_BYTES} bytes")
    try:
        note.encode("utf-8")
    except UnicodeEncodeError:
        raise NoteError(r, "note is not valid Unicode text (lone surrogate)") from None
    if _has_control(note):
        raise NoteError(r, "note contains control characters other than newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError(r, "no blank line separates the text from the signatures")
    body, sig_block = note[: split + 1], note[split + 2 :]
    if not sig_block:
        raise NoteError(r, "note has no signature lines")
    if not sig_block.endswith("\n"):
        raise NoteError(r, "the last signature line does not end with a newline")
    lines = sig_block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(r, f"note has {len(lines)} signatures, more than {MAX_SIGNATURES}")
    sigs: list[NoteSignature] = []
    for line in lines:
        if not line.startswith(_SIG_PREFIX):
            raise NoteError(r, f"not a signature line: {line[:80]!r}")
        parts = line[len(_SIG_PREFIX) :].split(" ")
        if len(parts) != 2:
            raise NoteError(r, f"a signature line is '— name base64', got {line[:80]!r}")
        name, b64 = parts
        try:
            _check_key_name(name)
        except ValueError as e:
            raise NoteError(r, str(e)) from None
        raw = _b64decode(b64, f"signature of {name!r}", r)
        if len(raw) < 5:
            raise NoteError(r, f"signature of {name!r} is shorter than a key ID plus one byte")
        sigs.append(NoteSignature(name, raw[:4], raw[4:]))
    return body, sigs


def signature_line(body: str, signer: Signer) -> str:
    """One signature line ``— name base64(key ID || signature)`` over ``body``, for
    a node that gathers validators' lines one by one."""
    _check_text(body, NoteError.MALFORMED_NOTE)
    blob = signer.sign(body.encode("utf-8"))
    return NoteSignature(signer.name, signer.key_id, blob).line()


def sign_note(body: str, signers: Sequence[Signer]) -> str:
    """A signed note: ``body``, a blank line, one signature line per signer."""
    if not signers:
        raise ValueError("a signed note needs at least one signer")
    return body + "\n" + "".join(signature_line(body, s) for s in signers)


def add_signatures(note: str, signers: Sequence[Signer]) -> str:
    """``note`` with the signers' lines appended (e.g. cosignatures on a log-signed
    checkpoint). Existing lines are kept, not verified; a signer whose key already
    signed is not added twice."""
    body, sigs = parse_note(note)
    have = {(s.name, s.key_id) for s in sigs}
    lines = [s.line() for s in sigs]
    for s in signers:
        if (s.name, s.key_id) not in have:
            lines.append(signature_line(body, s))
            have.add((s.name, s.key_id))
    return body + "\n" + "".join(lines)


def with_cosignatures(note: str, lines: Sequence[str]) -> str:
    """A stored note plus signature lines collected for it apart (a block's cosignatures),
    one line per signer name, in name order. Nothing is parsed or verified: a line's
    second field is its signer's name, and a name already present keeps its line."""
    end = note.find("\n\n")
    body = note if end < 0 else note[:end + 1]
    signed = {} if end < 0 else {line.split(" ", 2)[1]: line + "\n"
                                 for line in note[end + 2:].splitlines() if line}
    for line in lines:
        signed.setdefault(line.split(" ", 2)[1], line)
    return body + "\n" + "".join(signed[name] for name in sorted(signed)) if signed else body


def open_note(note: str | bytes, verifiers: Sequence[Verifier]) -> VerifiedNote:
    """Verify a signed note against known keys (signed-note §Signatures).

    Signatures whose (name, key ID) match no known key are ignored, as the spec
    requires (they may be other witnesses' or a rotated key's). A signature from a
    known key that fails rejects the whole note: an honest signer never emits one,
    so the note has been tampered with. A note with no verified known signature is
    rejected.
    """
    body, sigs = parse_note(note)
    known: dict[tuple[str, bytes], Verifier] = {}
    for v in verifiers:
        k = (v.name, v.key_id)
        other = known.get(k)
        if (
            other is not None
            and other is not v
            and (
                getattr(other, "public_key", None) != getattr(v, "public_key", None)
                or type(other) is not type(v)
            )
        ):
            raise NoteError(
                NoteError.AMBIGUOUS_KEY,
                f"two known keys share name {v.name!r} and key ID {v.key_id.hex()}",
            )
        known[k] = v
    text = body.encode("utf-8")
    signed_by: list[str] = []
    cosigned_at: dict[str, int] = {}
    seen: set[tuple[str, bytes]] = set()
    for s in sigs:
        k = (s.name, s.key_id)
        v = known.get(k)
        if v is None:
            continue
        if not v.verify(text, s.blob):
            raise NoteError(
                NoteError.BAD_SIGNATURE,
                f"invalid signature by known key {s.name} ({s.key_id.hex()})",
            )
        if k in seen:
            continue
        seen.add(k)
        if s.name not in signed_by:
            signed_by.append(s.name)
        if isinstance(v, CosignatureVerifier):
            cosigned_at[s.name] = v.timestamp_of(s.blob)
    if not signed_by:
        raise NoteError(NoteError.NO_KNOWN_SIGNATURE, "no signature from a known key")
    return VerifiedNote(body, signed_by, cosigned_at)


# -- quorum ------------------------------------------------------------------------


@dataclass(frozen=True)
class QuorumResult:
    """A checkpoint signed by more than the threshold of voting power."""

    checkpoint: Checkpoint
    signers: list[str]
    power: int
    total: int


def _verifiers_for(keys: Mapping[str, bytes], suite: Suite) -> list[Verifier]:
    out: list[Verifier] = []
    for name, pk in keys.items():
        out.append(NoteVerifier(name, pk, suite))
        out.append(CosignatureVerifier(name, pk, suite))
    return out


def verify_quorum(
    note_text: str | bytes,
    keyset: Mapping[str, tuple[bytes, int]],
    suite: Suite,
    numerator: int = 2,
    denominator: int = 3,
) -> QuorumResult:
    """Check that a checkpoint note is signed by validators holding strictly more
    than ``numerator/denominator`` of the total voting power in ``keyset``
    (name -> (public key, power)).

    A validator counts once, whether it signed the note with its key as a plain
    note signature or as a cosignature (decision 0202). Exactly 2/3 is not enough:
    BFT safety needs any two quorums to share an honest validator.
    """
    if not keyset:
        raise ValueError("empty keyset")
    if not (
        isinstance(numerator, int) and isinstance(denominator, int) and 0 <= numerator < denominator
    ):
        raise ValueError("need integers 0 <= numerator < denominator")
    total = 0
    for name, (_, power) in keyset.items():
        if not isinstance(power, int) or isinstance(power, bool) or power <= 0:
            raise ValueError(f"power of {name!r} must be a positive int")
        total += power
    verifiers = _verifiers_for({n: pk for n, (pk, _) in keyset.items()}, suite)
    try:
        opened = open_note(note_text, verifiers)
    except NoteError as e:
        if e.reason != NoteError.NO_KNOWN_SIGNATURE:
            raise
        raise QuorumError(
            f"no validator signed (need > {numerator}/{denominator} of {total})", [], 0, total
        ) from None
    checkpoint = parse_checkpoint(opened.body, suite.hash_size)
    power = sum(keyset[n][1] for n in opened.signed_by)
    if power * denominator <= total * numerator:
        raise QuorumError(
            f"signers hold {power} of {total} voting power; need more than {numerator}/{denominator}",
            list(opened.signed_by),
            power,
            total,
        )
    return QuorumResult(checkpoint, list(opened.signed_by), power, total)


# -- misbehaviour ------------------------------------------------------------------


@dataclass(frozen=True)
class Misbehaviour:
    """Two validly signed, conflicting checkpoints of one log, and the keys that
    signed both: evidence that those keys equivocated (showed a split view)."""

    origin: str
    checkpoint_a: Checkpoint
    checkpoint_b: Checkpoint
    signers: tuple[str, ...]
    reason: str
    note_a: str
    note_b: str


def find_conflict(
    note_a: str,
    note_b: str,
    verifiers: Sequence[Verifier],
    *,
    hash_size: int = 32,
    prefix_proof: Sequence[bytes] | None = None,
    hash_fn: HashFn | None = None,
) -> Misbehaviour | None:
    """A :class:`Misbehaviour` if the two notes are validly signed checkpoints of
    the same origin that cannot both be true, and at least one key signed both;
    None otherwise.

    Same size and different roots always conflict. Different sizes can only be
    shown to conflict with evidence from the larger tree: ``prefix_proof``
    (:meth:`MerkleLog.prefix_proof`, checked with ``hash_fn``) must lead to the
    larger checkpoint's root; the smaller checkpoint conflicts if its root is not
    the prefix root the proof implies. A failed ordinary consistency proof is *not*
    accepted as evidence, because anyone can fabricate a failing proof; a prefix
    proof that does not reach the larger root raises :class:`ProofError` for the
    same reason. A conflict that no key signed both sides of is no evidence
    against any key, so it returns None. Either note failing to open raises
    :class:`NoteError`.
    """
    va, vb = open_note(note_a, verifiers), open_note(note_b, verifiers)
    ca, cb = parse_checkpoint(va.body, hash_size), parse_checkpoint(vb.body, hash_size)
    if ca.origin != cb.origin:
        return None
    if ca.size == cb.size:
        if ca.root == cb.root:
            return None
        reason = f"two different roots for tree size {ca.size}"
    else:
        small, large = (ca, cb) if ca.size < cb.size else (cb, ca)
        if prefix_proof is None:
            return None
        if hash_fn is None:
            raise ValueError("hash_fn is needed to check a prefix proof")
        if small.size == 0:  # no proof needed: the empty tree has one root
            prefix_root = empty_root(hash_fn)
        else:
            prefix_root, large_root = roots_from_prefix_proof(
                hash_fn, small.size, large.size, prefix_proof
            )
            if not compare_digest(large_root, large.root):
                raise ProofError(
                    ProofError.ROOT_MISMATCH,
                    f"prefix proof does not lead to the signed root of size {large.size}",
                )
        if compare_digest(prefix_root, small.root):
            return None
        reason = (
            f"the tree of size {large.size} does not extend the signed tree of size "
            f"{small.size}: its first {small.size} leaves hash to {prefix_root.hex()}"
        )
    both = tuple(n for n in va.signed_by if n in vb.signed_by)
    if not both:
        return None
    return Misbehaviour(ca.origin, ca, cb, both, reason, note_a, note_b)
