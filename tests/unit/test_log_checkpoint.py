"""tally.log.checkpoint: C2SP checkpoints and signed notes (interoperable with Go's
golang.org/x/mod/sumdb/note), cosignatures, quorum counting and conflict evidence."""

from __future__ import annotations

import base64
import hashlib

import nacl.signing
import pytest

from tally.crypto import get_suite
from tally.crypto.intl import IntlSuite
from tally.log import (
    Checkpoint,
    CosignatureSigner,
    CosignatureVerifier,
    DictNodeStore,
    MerkleLog,
    NoteError,
    NoteSigner,
    NoteVerifier,
    ProofError,
    QuorumError,
    add_signatures,
    cosignature_message,
    cosignature_type,
    find_conflict,
    key_id,
    note_signature_type,
    open_note,
    parse_checkpoint,
    parse_note,
    sign_note,
    signature_line,
    verify_quorum,
)
from tally.log.checkpoint import MAX_SIGNATURES

INTL = get_suite("intl")
ROOT = hashlib.sha256(b"root").digest()
ORIGIN = "tally.example/chain-1"


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def keypair(seed_byte: int):
    return INTL.load_private_key(bytes([seed_byte]) * 32)


def reason(fn, *args, **kw) -> str:
    with pytest.raises(NoteError) as e:
        fn(*args, **kw)
    return e.value.reason


# -- checkpoints -------------------------------------------------------------------


def test_checkpoint_body_is_the_c2sp_text() -> None:
    cp = Checkpoint(ORIGIN, 42, ROOT, ("height 7", "time 1700000000000"))
    assert cp.body() == (
        f"{ORIGIN}\n42\n{base64.b64encode(ROOT).decode()}\nheight 7\ntime 1700000000000\n"
    )
    assert parse_checkpoint(cp.body()) == cp


def test_parse_checkpoint_accepts_the_spec_example() -> None:
    body = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    cp = parse_checkpoint(body)
    assert (cp.origin, cp.size, cp.extensions) == ("example.com/behind-the-sofa", 20852163, ())
    assert cp.body() == body


def test_empty_tree_checkpoint_has_size_zero() -> None:
    cp = Checkpoint(ORIGIN, 0, sha256(b""))
    assert cp.body().split("\n")[1] == "0"
    assert parse_checkpoint(cp.body()).size == 0


GOOD_ROOT_LINE = base64.b64encode(ROOT).decode()


@pytest.mark.parametrize(
    "size_line",
    [
        "01",
        "+1",
        "-1",
        " 1",
        "1 ",
        "1_000",
        "\u0661",
        "0x10",
        "",
        "1.0",
        str(1 << 63),
        "9" * 30,
        "9" * 5000,
    ],
)
def test_parse_checkpoint_rejects_non_canonical_sizes(size_line: str) -> None:
    body = f"{ORIGIN}\n{size_line}\n{GOOD_ROOT_LINE}\n"
    assert reason(parse_checkpoint, body) == "malformed_checkpoint"


@pytest.mark.parametrize(
    "root_line",
    [
        GOOD_ROOT_LINE.rstrip("="),  # missing padding
        GOOD_ROOT_LINE[:-2] + "B=",  # non-zero padding bits (non-canonical)
        GOOD_ROOT_LINE.replace("=", "") + "==",  # wrong padding
        "!" + GOOD_ROOT_LINE[1:],  # not in the alphabet
        base64.urlsafe_b64encode(b"\xfb\xff" + ROOT[2:]).decode(),  # URL-safe alphabet ("-_")
        " " + GOOD_ROOT_LINE,
        base64.b64encode(ROOT[:31]).decode(),  # 31 bytes
        base64.b64encode(ROOT + b"\x00").decode(),  # 33 bytes
        base64.b64encode(hashlib.sha512(b"x").digest()).decode(),
        "",
    ],
)
def test_parse_checkpoint_rejects_bad_root_lines(root_line: str) -> None:
    body = f"{ORIGIN}\n5\n{root_line}\n"
    assert reason(parse_checkpoint, body) == "malformed_checkpoint"


@pytest.mark.parametrize(
    "body",
    [
        f"{ORIGIN}\n5\n{GOOD_ROOT_LINE}",  # no final newline
        f"{ORIGIN}\n5\n",  # no root line
        f"\n5\n{GOOD_ROOT_LINE}\n",  # empty origin
        f"{ORIGIN}\n5\n{GOOD_ROOT_LINE}\n\n",  # empty extension line
        f"{ORIGIN}\n5\n{GOOD_ROOT_LINE}\nheight 1\n\nx\n",
        f"{ORIGIN}\r\n5\n{GOOD_ROOT_LINE}\n",  # control character
        f"{ORIGIN}\n5\n{GOOD_ROOT_LINE}\nheight\t1\n",
    ],
)
def test_parse_checkpoint_rejects_malformed_texts(body: str) -> None:
    assert reason(parse_checkpoint, body) == "malformed_checkpoint"


def test_checkpoint_refuses_to_build_what_it_could_not_parse() -> None:
    for bad in [
        lambda: Checkpoint("", 1, ROOT),
        lambda: Checkpoint("a\nb", 1, ROOT),
        lambda: Checkpoint(ORIGIN, -1, ROOT),
        lambda: Checkpoint(ORIGIN, 1 << 63, ROOT),
        lambda: Checkpoint(ORIGIN, 1, ROOT, ("",)),
        lambda: Checkpoint(ORIGIN, 1, ROOT, ("a\nb",)),
        lambda: Checkpoint(ORIGIN, True, ROOT),
    ]:
        with pytest.raises(ValueError):
            bad()


# -- signed notes: interoperability with Go's golang.org/x/mod/sumdb/note ----------------
# Vectors from golang/mod sumdb/note/note_test.go (TestSign, TestOpen).

GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_PETER_SIG = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
GO_ENOCH_SIG = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
GO_PETER_SKEY = base64.b64decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")  # 0x01 || seed
GO_PETER_VKEY = base64.b64decode("ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")  # 0x01 || pub
GO_ENOCH_VKEY = base64.b64decode("ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop")


def peter_verifier() -> NoteVerifier:
    return NoteVerifier("PeterNeumann", GO_PETER_VKEY[1:], INTL)


def enoch_verifier() -> NoteVerifier:
    return NoteVerifier("EnochRoot", GO_ENOCH_VKEY[1:], INTL)


def test_signing_matches_go_byte_for_byte() -> None:
    signer = NoteSigner("PeterNeumann", INTL.load_private_key(GO_PETER_SKEY[1:]))
    assert signer.public_key == GO_PETER_VKEY[1:]
    assert signer.key_id == bytes.fromhex("c74f20a3")
    assert sign_note(GO_TEXT, [signer]) == GO_TEXT + "\n" + GO_PETER_SIG


def test_go_signed_note_opens_and_unknown_signatures_are_ignored() -> None:
    note = GO_TEXT + "\n" + GO_PETER_SIG + GO_ENOCH_SIG
    opened = open_note(note, [peter_verifier()])
    assert opened.body == GO_TEXT
    assert opened.signed_by == ["PeterNeumann"]
    both = open_note(note, [peter_verifier(), enoch_verifier()])
    assert both.signed_by == ["PeterNeumann", "EnochRoot"]
    assert reason(open_note, note, []) == "no_known_signature"


def test_go_malformed_notes_are_rejected() -> None:
    # golang/mod sumdb/note/note_test.go TestOpen badMsgs
    bad = [
        GO_TEXT,
        GO_TEXT + "\n",
        GO_TEXT + "\n" + GO_PETER_SIG[:-1],
        "\x01" + GO_TEXT + "\n" + GO_PETER_SIG,
        GO_TEXT
        + "\n"
        + "— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=",
        GO_TEXT + "\n" + GO_PETER_SIG + "Unexpected line.\n",
    ]
    for note in bad:
        assert reason(open_note, note, [peter_verifier()]) == "malformed_note"
    assert reason(
        open_note, b"\xff" + GO_TEXT.encode() + b"\n" + GO_PETER_SIG.encode(), [peter_verifier()]
    ) == ("malformed_note")


def test_go_note_with_a_corrupted_known_signature_is_rejected_whole() -> None:
    corrupted = GO_PETER_SIG[:60] + "ABCD" + GO_PETER_SIG[60:]
    note = GO_TEXT + "\n" + corrupted + GO_ENOCH_SIG
    assert reason(open_note, note, [peter_verifier(), enoch_verifier()]) == "bad_signature"


def test_duplicate_signature_lines_count_once() -> None:
    note = GO_TEXT + "\n" + GO_PETER_SIG + GO_PETER_SIG + GO_ENOCH_SIG
    assert open_note(note, [peter_verifier()]).signed_by == ["PeterNeumann"]


# -- signed notes: Tally keys ---------------------------------------------------------


def test_key_id_follows_the_spec_formula() -> None:
    k = keypair(1)
    want = hashlib.sha256(b"v1.example\n\x01" + k.public_key).digest()[:4]
    assert key_id("v1.example", b"\x01", k.public_key) == want
    assert NoteSigner("v1.example", k).key_id == want
    assert NoteVerifier("v1.example", k.public_key, INTL).key_id == want


def test_sign_and_open_round_trip() -> None:
    a, b = keypair(1), keypair(2)
    body = Checkpoint(ORIGIN, 10, ROOT, ("height 3",)).body()
    note = sign_note(body, [NoteSigner("a.example", a), NoteSigner("b.example", b)])
    opened = open_note(
        note,
        [
            NoteVerifier("a.example", a.public_key, INTL),
            NoteVerifier("b.example", b.public_key, INTL),
        ],
    )
    assert opened.body == body
    assert opened.signed_by == ["a.example", "b.example"]
    assert parse_checkpoint(opened.body).extensions == ("height 3",)


def _note_and_verifier():
    k = keypair(3)
    body = Checkpoint(ORIGIN, 10, ROOT).body()
    return sign_note(body, [NoteSigner("k.example", k)]), NoteVerifier(
        "k.example", k.public_key, INTL
    )


def test_tampered_body_is_rejected() -> None:
    note, v = _note_and_verifier()
    tampered = note.replace("\n10\n", "\n11\n", 1)
    assert tampered != note
    assert reason(open_note, tampered, [v]) == "bad_signature"


def test_tampered_signature_is_rejected() -> None:
    note, v = _note_and_verifier()
    body, sigs = parse_note(note)
    blob = bytearray(sigs[0].blob)
    blob[10] ^= 1
    raw = base64.b64encode(sigs[0].key_id + bytes(blob)).decode()
    assert reason(open_note, f"{body}\n— k.example {raw}\n", [v]) == "bad_signature"


def test_signature_by_an_unknown_key_only_is_rejected() -> None:
    note, _ = _note_and_verifier()
    stranger = NoteVerifier("k.example", keypair(9).public_key, INTL)  # same name, other key
    other_name = NoteVerifier("other.example", keypair(3).public_key, INTL)  # same key, other name
    assert reason(open_note, note, [stranger]) == "no_known_signature"
    assert reason(open_note, note, [other_name]) == "no_known_signature"


def test_two_known_keys_with_the_same_name_and_key_id_are_ambiguous() -> None:
    note, v = _note_and_verifier()

    class Clash(NoteVerifier):
        pass

    clash = Clash("k.example", keypair(9).public_key, INTL)
    clash.key_id = v.key_id
    assert reason(open_note, note, [v, clash]) == "ambiguous_key"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda n: n.replace("\n\n", "\n", 1),  # missing blank line
        lambda n: n.replace("— ", "- ", 1),  # hyphen instead of em dash
        lambda n: n.replace("— ", "—", 1),  # no space after the dash
        lambda n: n.replace("k.example", "k example", 1),  # space in the name
        lambda n: n.replace("k.example ", "k+example ", 1),  # '+' in the name
        lambda n: n.replace("k.example ", "k.example  ", 1),  # two spaces
        lambda n: n[:-2] + "!\n",  # bad base64
        lambda n: n[:-1],  # no final newline
        lambda n: n + "trailing\n",  # text after the signatures
        lambda n: n.rsplit(" ", 1)[0] + " AAAA\n",  # 3 bytes: shorter than a key ID
        lambda n: n.replace("\n\n", "\n\n\x07", 1),  # control character
        lambda n: n.split("\n\n")[0] + "\n\n",  # no signature lines
    ],
)
def test_malformed_signed_notes_are_rejected(mangle) -> None:
    note, v = _note_and_verifier()
    bad = mangle(note)
    assert bad != note
    assert reason(open_note, bad, [v]) == "malformed_note"


def test_too_many_signature_lines_are_rejected() -> None:
    note, v = _note_and_verifier()
    body, sigs = parse_note(note)
    line = sigs[0].line()
    assert open_note(body + "\n" + line * MAX_SIGNATURES, [v]).signed_by == ["k.example"]
    assert reason(open_note, body + "\n" + line * (MAX_SIGNATURES + 1), [v]) == "malformed_note"


def test_notes_whose_text_has_blank_lines_split_at_the_last_one() -> None:
    k = keypair(4)
    body = "first\n\nsecond\n"
    note = sign_note(body, [NoteSigner("k.example", k)])
    assert open_note(note, [NoteVerifier("k.example", k.public_key, INTL)]).body == body


def test_bytes_notes_are_accepted_as_utf8() -> None:
    note, v = _note_and_verifier()
    assert open_note(note.encode(), [v]).signed_by == ["k.example"]


def test_key_names_are_validated() -> None:
    for bad in ["", "a b", "a+b", "a\u3000b"]:
        with pytest.raises(ValueError):
            NoteSigner(bad, keypair(1))


# -- cosignatures -------------------------------------------------------------------------


def test_ed25519_cosignature_is_c2sp_cosignature_v1() -> None:
    """Rebuilds the tlog-cosignature bytes by hand and checks them with PyNaCl."""
    w = keypair(5)
    body = Checkpoint(ORIGIN, 20852163, ROOT).body()
    signer = CosignatureSigner("witness.example/w1", w, clock=lambda: 1679315147)
    line = signature_line(body, signer)
    name, b64 = line[2:-1].split(" ")
    raw = base64.b64decode(b64)
    assert name == "witness.example/w1"
    assert raw[:4] == hashlib.sha256(b"witness.example/w1\n\x04" + w.public_key).digest()[:4]
    assert raw[4:12] == (1679315147).to_bytes(8, "big")
    assert len(raw) == 4 + 8 + 64
    message = b"cosignature/v1\ntime 1679315147\n" + body.encode()
    assert cosignature_message(body, 1679315147) == message
    nacl.signing.VerifyKey(w.public_key).verify(message, raw[12:])  # raises if wrong


def test_cosigned_checkpoint_opens_with_timestamps() -> None:
    log_key, w1, w2 = keypair(6), keypair(7), keypair(8)
    body = Checkpoint(ORIGIN, 5, ROOT).body()
    note = sign_note(body, [NoteSigner(ORIGIN, log_key)])
    note = add_signatures(note, [CosignatureSigner("w1", w1, clock=lambda: 100)])
    note = add_signatures(note, [CosignatureSigner("w2", w2, clock=lambda: 200)])
    again = add_signatures(note, [CosignatureSigner("w2", w2, clock=lambda: 300)])
    assert again == note  # a key that already signed is not added twice
    verifiers = [
        NoteVerifier(ORIGIN, log_key.public_key, INTL),
        CosignatureVerifier("w1", w1.public_key, INTL),
        CosignatureVerifier("w2", w2.public_key, INTL),
    ]
    opened = open_note(note, verifiers)
    assert opened.signed_by == [ORIGIN, "w1", "w2"]
    assert opened.cosigned_at == {"w1": 100, "w2": 200}


def test_cosignatures_and_note_signatures_are_not_interchangeable() -> None:
    w = keypair(7)
    body = Checkpoint(ORIGIN, 5, ROOT).body()
    cosigned = sign_note(body, [CosignatureSigner("w", w, clock=lambda: 1)])
    plain = sign_note(body, [NoteSigner("w", w)])
    # Different key IDs: each verifier ignores the other kind of signature.
    assert (
        reason(open_note, cosigned, [NoteVerifier("w", w.public_key, INTL)]) == "no_known_signature"
    )
    assert (
        reason(open_note, plain, [CosignatureVerifier("w", w.public_key, INTL)])
        == "no_known_signature"
    )


def test_cosignature_with_a_changed_timestamp_is_rejected() -> None:
    w = keypair(7)
    body = Checkpoint(ORIGIN, 5, ROOT).body()
    note = sign_note(body, [CosignatureSigner("w", w, clock=lambda: 1000)])
    _, sigs = parse_note(note)
    blob = (1001).to_bytes(8, "big") + sigs[0].blob[8:]
    forged = body + "\n— w " + base64.b64encode(sigs[0].key_id + blob).decode() + "\n"
    assert (
        reason(open_note, forged, [CosignatureVerifier("w", w.public_key, INTL)]) == "bad_signature"
    )
    # A correctly signed cosignature whose timestamp is past 2^63 - 1 (the spec's
    # bound) is still rejected.
    t = 1 << 63
    blob = t.to_bytes(8, "big") + w.sign(cosignature_message(body, t))
    forged = body + "\n— w " + base64.b64encode(sigs[0].key_id + blob).decode() + "\n"
    assert (
        reason(open_note, forged, [CosignatureVerifier("w", w.public_key, INTL)]) == "bad_signature"
    )


def test_cosigners_only_sign_checkpoints() -> None:
    signer = CosignatureSigner("w", keypair(7), clock=lambda: 1)
    with pytest.raises(NoteError):
        sign_note("not a checkpoint\n", [signer])
    with pytest.raises(ValueError):
        signer.cosign(Checkpoint(ORIGIN, 1, ROOT).body(), -1)


class OtherAlgSuite(IntlSuite):
    """A suite whose signature algorithm is not Ed25519 (as ``gm``'s SM2 is), to
    exercise Tally's cosignature type for such suites with keys available here."""

    name = "other"
    signature_name = "sm2-sm3"
    note_signature_type = 0xFF


def test_non_ed25519_suites_cosign_under_tallys_extension_type() -> None:
    suite = OtherAlgSuite()
    assert cosignature_type(INTL) == b"\x04"
    assert cosignature_type(suite) == b"\xfftally-cosignature/v1/sm2-sm3\x00"
    k = suite.load_private_key(b"\x11" * 32)
    signer = CosignatureSigner("v", k, clock=lambda: 5)
    assert (
        signer.key_id
        == hashlib.sha256(b"v\n\xfftally-cosignature/v1/sm2-sm3\x00" + k.public_key).digest()[:4]
    )
    # Plain note signatures of a 0xff suite carry the algorithm name too.
    assert note_signature_type(suite) == b"\xffsm2-sm3\x00"
    assert (
        NoteSigner("v", k).key_id
        == hashlib.sha256(b"v\n\xffsm2-sm3\x00" + k.public_key).digest()[:4]
    )
    body = Checkpoint(ORIGIN, 3, ROOT).body()
    note = sign_note(body, [signer])
    assert open_note(note, [CosignatureVerifier("v", k.public_key, suite)]).cosigned_at == {"v": 5}
    # The same key under the Ed25519 cosignature type is a different key: ignored.
    assert (
        reason(open_note, note, [CosignatureVerifier("v", k.public_key, INTL)])
        == "no_known_signature"
    )


# -- quorum ---------------------------------------------------------------------------------


def validators(powers: list[int]):
    keys = {f"val{i}": keypair(20 + i) for i in range(len(powers))}
    keyset = {n: (k.public_key, p) for (n, k), p in zip(keys.items(), powers, strict=True)}
    return keys, keyset


def cosigned_by(names, keys, body) -> str:
    return sign_note(body, [CosignatureSigner(n, keys[n], clock=lambda: 1) for n in names])


def test_quorum_of_more_than_two_thirds_of_power_passes() -> None:
    keys, keyset = validators([10, 20, 30, 40])
    body = Checkpoint(ORIGIN, 9, ROOT).body()
    result = verify_quorum(cosigned_by(["val1", "val3", "val0"], keys, body), keyset, INTL)
    assert sorted(result.signers) == ["val0", "val1", "val3"]
    assert (result.power, result.total) == (70, 100)
    assert result.checkpoint == parse_checkpoint(body)


def test_exactly_two_thirds_is_not_a_quorum() -> None:
    keys, keyset = validators([1, 1, 1])
    body = Checkpoint(ORIGIN, 9, ROOT).body()
    with pytest.raises(QuorumError) as e:
        verify_quorum(cosigned_by(["val0", "val1"], keys, body), keyset, INTL)
    assert (e.value.power, e.value.total, sorted(e.value.signers)) == (2, 3, ["val0", "val1"])
    assert verify_quorum(cosigned_by(["val0", "val1", "val2"], keys, body), keyset, INTL).power == 3


def test_quorum_counts_power_not_heads() -> None:
    keys, keyset = validators([70, 10, 10, 10])
    body = Checkpoint(ORIGIN, 9, ROOT).body()
    with pytest.raises(QuorumError):
        verify_quorum(cosigned_by(["val1", "val2", "val3"], keys, body), keyset, INTL)
    assert verify_quorum(cosigned_by(["val0"], keys, body), keyset, INTL).power == 70


def test_a_validator_signing_twice_counts_once_and_strangers_count_zero() -> None:
    keys, keyset = validators([1, 1, 1])
    body = Checkpoint(ORIGIN, 9, ROOT).body()
    note = sign_note(
        body,
        [
            NoteSigner("val0", keys["val0"]),
            CosignatureSigner("val0", keys["val0"], clock=lambda: 1),
        ],
    )
    note = add_signatures(note, [CosignatureSigner("val9", keypair(99), clock=lambda: 1)])
    with pytest.raises(QuorumError) as e:
        verify_quorum(note, keyset, INTL)
    assert e.value.power == 1


def test_quorum_with_no_validator_signature_is_a_quorum_error() -> None:
    _, keyset = validators([1, 1, 1])
    note = sign_note(Checkpoint(ORIGIN, 9, ROOT).body(), [NoteSigner("x", keypair(99))])
    with pytest.raises(QuorumError) as e:
        verify_quorum(note, keyset, INTL)
    assert e.value.power == 0


def test_quorum_rejects_a_bad_validator_signature_and_bad_powers() -> None:
    keys, keyset = validators([1, 1, 1])
    body = Checkpoint(ORIGIN, 9, ROOT).body()
    good = cosigned_by(["val0", "val1", "val2"], keys, body)
    assert reason(verify_quorum, good.replace("\n9\n", "\n8\n", 1), keyset, INTL) == "bad_signature"
    with pytest.raises(ValueError):
        verify_quorum(good, {"val0": (keys["val0"].public_key, 0)}, INTL)
    with pytest.raises(ValueError):
        verify_quorum(good, {}, INTL)


# -- conflicts --------------------------------------------------------------------------------


def conflict_setup():
    keys, keyset = validators([1, 1, 1, 1])
    verifiers = [CosignatureVerifier(n, pk, INTL) for n, (pk, _) in keyset.items()]
    return keys, verifiers


def test_same_size_different_roots_names_the_double_signers() -> None:
    keys, verifiers = conflict_setup()
    a = cosigned_by(["val0", "val1", "val2"], keys, Checkpoint(ORIGIN, 9, ROOT).body())
    b = cosigned_by(["val1", "val2", "val3"], keys, Checkpoint(ORIGIN, 9, sha256(b"other")).body())
    m = find_conflict(a, b, verifiers)
    assert m is not None
    assert m.signers == ("val1", "val2")
    assert m.origin == ORIGIN
    assert (m.checkpoint_a.root, m.checkpoint_b.root) == (ROOT, sha256(b"other"))
    assert (m.note_a, m.note_b) == (a, b)


def test_no_conflict_for_agreeing_or_unrelated_checkpoints() -> None:
    keys, verifiers = conflict_setup()
    a = cosigned_by(["val0", "val1"], keys, Checkpoint(ORIGIN, 9, ROOT).body())
    same = cosigned_by(["val1", "val2"], keys, Checkpoint(ORIGIN, 9, ROOT, ("height 1",)).body())
    other_log = cosigned_by(
        ["val0", "val1"], keys, Checkpoint("other.example", 9, sha256(b"x")).body()
    )
    disjoint = cosigned_by(["val2", "val3"], keys, Checkpoint(ORIGIN, 9, sha256(b"x")).body())
    larger = cosigned_by(["val0", "val1"], keys, Checkpoint(ORIGIN, 10, sha256(b"x")).body())
    assert find_conflict(a, same, verifiers) is None
    assert find_conflict(a, other_log, verifiers) is None
    assert find_conflict(a, disjoint, verifiers) is None  # nobody signed both
    assert find_conflict(a, larger, verifiers) is None  # no evidence about different sizes


def test_conflicting_sizes_are_shown_with_a_prefix_proof_from_the_larger_tree() -> None:
    keys, verifiers = conflict_setup()
    log = MerkleLog(sha256, DictNodeStore())
    log.append_many([b"%d" % i for i in range(13)])
    big = cosigned_by(["val0", "val1", "val2"], keys, Checkpoint(ORIGIN, 13, log.root()).body())
    for size1 in (1, 4, 6, 8, 12):
        honest = cosigned_by(
            ["val1", "val2"], keys, Checkpoint(ORIGIN, size1, log.root(size1)).body()
        )
        forged = cosigned_by(
            ["val1", "val2"], keys, Checkpoint(ORIGIN, size1, sha256(b"fork")).body()
        )
        proof = log.prefix_proof(size1)
        assert find_conflict(honest, big, verifiers, prefix_proof=proof, hash_fn=sha256) is None
        m = find_conflict(forged, big, verifiers, prefix_proof=proof, hash_fn=sha256)
        assert m is not None and m.signers == ("val1", "val2")
        assert "does not extend" in m.reason


def test_a_fabricated_prefix_proof_is_not_evidence() -> None:
    keys, verifiers = conflict_setup()
    log = MerkleLog(sha256, DictNodeStore())
    log.append_many([b"%d" % i for i in range(13)])
    big = cosigned_by(["val0", "val1"], keys, Checkpoint(ORIGIN, 13, log.root()).body())
    honest = cosigned_by(["val0", "val1"], keys, Checkpoint(ORIGIN, 6, log.root(6)).body())
    proof = log.prefix_proof(6)
    proof[-1] = sha256(b"garbage")
    with pytest.raises(ProofError):
        find_conflict(honest, big, verifiers, prefix_proof=proof, hash_fn=sha256)


def test_conflict_requires_both_notes_to_be_validly_signed() -> None:
    keys, verifiers = conflict_setup()
    a = cosigned_by(["val0"], keys, Checkpoint(ORIGIN, 9, ROOT).body())
    b = cosigned_by(["val0"], keys, Checkpoint(ORIGIN, 9, sha256(b"x")).body())
    assert reason(find_conflict, a, b.replace("\n9\n", "\n8\n"), verifiers) == "bad_signature"
    stranger = sign_note(Checkpoint(ORIGIN, 9, sha256(b"x")).body(), [NoteSigner("s", keypair(99))])
    assert reason(find_conflict, a, stranger, verifiers) == "no_known_signature"


def test_gm_suite_signs_notes_cosignatures_and_quorums() -> None:
    gm = get_suite("gm")
    keys = {f"v{i}": gm.generate_private_key() for i in range(3)}
    body = Checkpoint(ORIGIN, 4, gm.hash(b"root")).body()
    note = sign_note(body, [NoteSigner("v0", keys["v0"])])
    note = add_signatures(
        note, [CosignatureSigner(n, keys[n], clock=lambda: 9) for n in ("v1", "v2")]
    )
    verifiers = [NoteVerifier("v0", keys["v0"].public_key, gm)] + [
        CosignatureVerifier(n, keys[n].public_key, gm) for n in ("v1", "v2")
    ]
    opened = open_note(note, verifiers)
    assert opened.signed_by == ["v0", "v1", "v2"]
    assert opened.cosigned_at == {"v1": 9, "v2": 9}
    keyset = {n: (k.public_key, 1) for n, k in keys.items()}
    assert verify_quorum(note, keyset, gm).power == 3
    # gm keys are not intl keys, even under the same names.
    with pytest.raises(NoteError):
        verify_quorum(note, {n: (keypair(1).public_key, 1) for n in keys}, INTL)


DOC_EXAMPLE = """tally.example/custody-1
42
sV/ZxKUjUFToxHJMzaCss838Z0c1h8JHWfDVsLfEZQ8=
height 7
state S6aXNcpTdl7WpwnttWxuoja3GTo7KaazkMNG8PQ0Dk4=
time 1767225600000

— validator-0.tally.example WwGh03b+di4R8BsTS8mc0cv02ciqVkXJamkTG7M72EKp2CrfKe/EM3NQ4Gv/V3NVUmsHgnKIzwwZE8ccf+C+qZXAuAE=
— validator-1.tally.example nPKzzwAAAABpVbkB3/7v9xSXACBAK2eTCcWpCJJvPsZKxrjXVKUCxzfbfQlK1t//br3D965DGTeF+dYVjLTqDT1jiEhE9Z0zXkE2AA==
"""


def test_the_documented_example_is_reproduced_exactly() -> None:
    """docs/log.md's example: pins the text formats, key IDs and signature layout."""
    k0, k1 = INTL.load_private_key(b"\x00" * 32), INTL.load_private_key(b"\x01" * 32)
    log = MerkleLog(INTL.hash, DictNodeStore())
    log.append_many([b"event %d" % i for i in range(42)])
    state = base64.b64encode(hashlib.sha256(b"state").digest()).decode()
    cp = Checkpoint(
        ORIGIN.replace("chain-1", "custody-1"),
        42,
        log.root(),
        ("height 7", f"state {state}", "time 1767225600000"),
    )
    note = sign_note(cp.body(), [NoteSigner("validator-0.tally.example", k0)])
    note = add_signatures(
        note, [CosignatureSigner("validator-1.tally.example", k1, clock=lambda: 1767225601)]
    )
    assert note == DOC_EXAMPLE
    keyset = {
        "validator-0.tally.example": (k0.public_key, 1),
        "validator-1.tally.example": (k1.public_key, 1),
    }
    assert verify_quorum(DOC_EXAMPLE, keyset, INTL).signers == list(keyset)


def test_a_key_cosigning_twice_counts_once_with_its_first_timestamp() -> None:
    w = keypair(7)
    body = Checkpoint(ORIGIN, 5, ROOT).body()
    first = signature_line(body, CosignatureSigner("w", w, clock=lambda: 10))
    second = signature_line(body, CosignatureSigner("w", w, clock=lambda: 20))
    opened = open_note(body + "\n" + first + second, [CosignatureVerifier("w", w.public_key, INTL)])
    assert opened.signed_by == ["w"]
    assert opened.cosigned_at == {"w": 10}
