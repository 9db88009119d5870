"""X.509 chains as members' CAs make them with the openssl command line: valid chains for
every algorithm Tally accepts, and every bad case refused with its reason."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtensionOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tally.crypto import get_suite
from tally.errors import Code, TallyError
from tally.identity.certs import (
    MAX_CERTIFICATE_SIZE,
    Certificate,
    CertificateError,
    VerifiedChain,
    check_root,
    fingerprint,
    key_fingerprint,
    key_matches,
    parse_certificate,
    verify_chain,
)
from tests.support.openssl_ca import (
    CA_EXTENSIONS,
    LEAF_EXTENSIONS,
    Ca,
    OpensslPki,
    openssl,
)

#: (suite, CA key algorithm): Ed25519 and P-256 CAs on intl, SM2 on gm.
CASES = [("intl", "ed25519"), ("intl", "p256"), ("gm", "sm2")]
ACCOUNT_ALGORITHM = {"intl": "ed25519", "gm": "sm2"}
E = CertificateError


@pytest.fixture(scope="session")
def account_keys() -> dict[str, bytes]:
    return {name: get_suite(name).generate_private_key().public_key for name in ("intl", "gm")}


def parse_ca(ca: Ca) -> Certificate:
    return parse_certificate(ca.pem)


def block_time(cert: Certificate) -> int:
    """A block a minute after ``cert`` was issued (no clock: the certificate's own time)."""
    return cert.not_before_ms + 60_000


def refused(reason: str, call: Callable[[], object]) -> CertificateError:
    with pytest.raises(CertificateError) as caught:
        call()
    assert caught.value.reason == reason, caught.value
    assert isinstance(caught.value, TallyError) and caught.value.code is Code.INVALID_PAYLOAD
    return caught.value


class Setup:
    """A root, an intermediate, and the account's leaf under each, for one case."""

    def __init__(self, pki: OpensslPki, suite: str, algorithm: str, key: bytes) -> None:
        self.pki, self.suite, self.key = pki, suite, key
        self.root_ca = pki.root(f"Bank {algorithm}", algorithm)
        self.inter_ca = pki.intermediate(self.root_ca, f"Bank {algorithm} Retail")
        self.root = parse_ca(self.root_ca)
        self.inter = parse_ca(self.inter_ca)
        account = ACCOUNT_ALGORITHM[suite]
        self.leaf = parse_certificate(pki.leaf(self.root_ca, "alice", public_key=key,
                                               algorithm=account))
        self.deep_leaf = parse_certificate(pki.leaf(self.inter_ca, "bob", public_key=key,
                                                    algorithm=account))
        self.at = block_time(self.deep_leaf)

    def verify(self, leaf: Certificate, intermediates: list[Certificate] | None = None,
               roots: list[Certificate] | None = None, *, at_ms: int | None = None,
               usage: str = "account", revoked: Collection[tuple[str, int]] = (),
               public_key: bytes | None = None) -> VerifiedChain:
        return verify_chain(leaf, intermediates or [], [self.root] if roots is None else roots,
                            at_ms=self.at if at_ms is None else at_ms, suite_name=self.suite,
                            usage=usage, revoked=revoked, public_key=public_key)


_setups: dict[tuple[str, str], Setup] = {}


@pytest.fixture(params=CASES, ids=[f"{s}-{a}" for s, a in CASES])
def setup(request: pytest.FixtureRequest, pki: OpensslPki,
          account_keys: dict[str, bytes]) -> Setup:
    suite, algorithm = request.param
    if (suite, algorithm) not in _setups:
        _setups[suite, algorithm] = Setup(pki, suite, algorithm, account_keys[suite])
    return _setups[suite, algorithm]


# --- valid chains ---------------------------------------------------------------------


def test_root_to_leaf_binds_the_account_key(setup: Setup) -> None:
    result = setup.verify(setup.leaf, public_key=setup.key)
    assert result.path == (setup.leaf, setup.root)
    assert re.fullmatch(r"CN=alice,O=Bank \w+,C=CN", result.subject)
    assert result.serial == setup.leaf.serial
    assert result.public_key == setup.key
    assert result.key_algorithm == ACCOUNT_ALGORITHM[setup.suite]
    assert result.root_fingerprint == fingerprint(setup.root, setup.suite)
    assert result.issuer_key_fingerprint == key_fingerprint(setup.root, setup.suite)
    assert key_matches(setup.leaf, setup.key, setup.suite)


def test_root_to_intermediate_to_leaf(setup: Setup) -> None:
    result = setup.verify(setup.deep_leaf, [setup.inter], public_key=setup.key)
    assert result.path == (setup.deep_leaf, setup.inter, setup.root)
    assert result.issuer_key_fingerprint == key_fingerprint(setup.inter, setup.suite)
    assert result.root_fingerprint == fingerprint(setup.root, setup.suite)


def test_an_intermediate_verifies_as_a_ca(setup: Setup) -> None:
    assert setup.verify(setup.inter, usage="ca").path == (setup.inter, setup.root)
    check_root(setup.root, at_ms=setup.at, suite_name=setup.suite)


def test_a_trailing_copy_of_the_root_is_ignored(setup: Setup) -> None:
    result = setup.verify(setup.deep_leaf, [setup.inter, setup.root])
    assert result.path == (setup.deep_leaf, setup.inter, setup.root)


def test_pem_and_der_are_the_same_certificate(setup: Setup, tmp_path: Path) -> None:
    pem = tmp_path / "root.pem"
    pem.write_bytes(setup.root_ca.pem)
    der = openssl("x509", "-in", pem, "-outform", "DER", cwd=tmp_path)
    assert parse_certificate(der) == setup.root
    assert parse_certificate(bytearray(der)) == setup.root


def test_validity_bounds_are_inclusive(setup: Setup) -> None:
    leaf = setup.leaf
    setup.verify(leaf, at_ms=leaf.not_before_ms)
    setup.verify(leaf, at_ms=leaf.not_after_ms)
    refused(E.NOT_YET_VALID, lambda: setup.verify(leaf, at_ms=leaf.not_before_ms - 1))
    refused(E.EXPIRED, lambda: setup.verify(leaf, at_ms=leaf.not_after_ms + 1))


def test_the_answer_depends_on_no_order(setup: Setup, pki: OpensslPki) -> None:
    """Several roots, the same name among them: whichever order, one answer."""
    twin = parse_ca(pki.root(setup.root_ca.name, setup.root_ca.algorithm, copy=1))
    other = parse_ca(pki.root("Other Bank", setup.root_ca.algorithm))
    assert twin.subject_der == setup.root.subject_der and twin.public_key != setup.root.public_key
    revoked = [(key_fingerprint(other, setup.suite), 1), ("00" * 32, setup.leaf.serial)]
    answers = {setup.verify(setup.leaf, roots=roots, revoked=rev)
               for roots in ([setup.root, twin, other], [other, twin, setup.root])
               for rev in (revoked, set(revoked), list(reversed(revoked)))}
    assert len(answers) == 1
    assert answers.pop().path[-1] == setup.root


def test_an_ecdsa_p256_key_for_a_node(pki: OpensslPki) -> None:
    root_ca = pki.root("Bank p256", "p256")
    node = parse_certificate(pki.leaf(root_ca, "node-1"))  # a fresh openssl P-256 key
    result = verify_chain(node, [], [parse_ca(root_ca)], at_ms=block_time(node),
                          suite_name="intl", usage="node")
    assert result.key_algorithm == "ecdsa-p256" and len(result.public_key) == 65
    assert not key_matches(node, node.public_key, "intl")  # not an account key on intl


# --- refusals ---------------------------------------------------------------------------


def test_expired_and_not_yet_valid_leaves(setup: Setup) -> None:
    pki = setup.pki
    old = parse_certificate(pki.dated_leaf(setup.root_ca, "old", not_before="20200101000000Z",
                                           not_after="20210101000000Z"))
    assert old.not_after_ms == 1609459200000
    refused(E.EXPIRED, lambda: setup.verify(old))
    future = parse_certificate(pki.dated_leaf(setup.root_ca, "future",
                                              not_before="20900101000000Z",
                                              not_after="20910101000000Z"))
    refused(E.NOT_YET_VALID, lambda: setup.verify(future))
    # An expired root expires everything under it.
    refused(E.EXPIRED, lambda: setup.verify(setup.leaf, at_ms=setup.root.not_after_ms + 1))


def test_revoked(setup: Setup) -> None:
    by_root = (key_fingerprint(setup.root, setup.suite), setup.leaf.serial)
    refused(E.REVOKED, lambda: setup.verify(setup.leaf, revoked={by_root}))
    # the same serial from another issuer is another certificate
    setup.verify(setup.leaf, revoked={(key_fingerprint(setup.inter, setup.suite),
                                       setup.leaf.serial)})
    # a revoked intermediate revokes every leaf under it
    intermediate = (key_fingerprint(setup.root, setup.suite), setup.inter.serial)
    refused(E.REVOKED, lambda: setup.verify(setup.deep_leaf, [setup.inter],
                                            revoked=[intermediate]))


def test_unknown_ca(setup: Setup, pki: OpensslPki) -> None:
    other = parse_ca(pki.root("Other Bank", setup.root_ca.algorithm))
    refused(E.UNKNOWN_CA, lambda: setup.verify(setup.leaf, roots=[other]))
    refused(E.UNKNOWN_CA, lambda: setup.verify(setup.deep_leaf, roots=[setup.root]))
    refused(E.UNKNOWN_CA, lambda: setup.verify(setup.leaf, roots=[]))
    # an intermediate that is not the leaf's issuer
    refused(E.UNKNOWN_CA, lambda: setup.verify(setup.leaf, [setup.inter]))


def test_the_leaf_must_bind_the_accounts_key(setup: Setup) -> None:
    other = get_suite(setup.suite).generate_private_key().public_key
    refused(E.KEY_MISMATCH, lambda: setup.verify(setup.leaf, public_key=other))
    assert not key_matches(setup.leaf, other, setup.suite)


def test_a_twin_ca_with_the_same_name_but_another_key(setup: Setup, pki: OpensslPki) -> None:
    """An impostor CA copies the member CA's name: what it signs does not verify."""
    twin_ca = pki.root(setup.root_ca.name, setup.root_ca.algorithm, copy=1)
    forged = parse_certificate(pki.leaf(twin_ca, "mallory", public_key=setup.key,
                                        algorithm=ACCOUNT_ALGORITHM[setup.suite]))
    assert forged.issuer_der == setup.root.subject_der
    error = refused(E.BAD_SIGNATURE, lambda: setup.verify(forged, public_key=setup.key))
    assert "mallory" in error.message


def test_an_issuer_that_is_not_a_ca(setup: Setup, pki: OpensslPki) -> None:
    not_ca = pki.intermediate(setup.root_ca, "Branch not a CA", extensions=[
        "basicConstraints = critical,CA:FALSE", "keyUsage = critical,keyCertSign,digitalSignature"])
    leaf = parse_certificate(pki.leaf(not_ca, "carol", public_key=setup.key,
                                      algorithm=ACCOUNT_ALGORITHM[setup.suite]))
    refused(E.NOT_A_CA, lambda: setup.verify(leaf, [parse_ca(not_ca)]))
    no_bc = pki.intermediate(setup.root_ca, "Branch no constraints",
                             extensions=["keyUsage = critical,keyCertSign"])
    leaf = parse_certificate(pki.leaf(no_bc, "carol", public_key=setup.key,
                                      algorithm=ACCOUNT_ALGORITHM[setup.suite]))
    refused(E.NOT_A_CA, lambda: setup.verify(leaf, [parse_ca(no_bc)]))


def test_a_ca_without_key_cert_sign(setup: Setup, pki: OpensslPki) -> None:
    ca = pki.intermediate(setup.root_ca, "Branch signs CRLs only", extensions=[
        "basicConstraints = critical,CA:TRUE", "keyUsage = critical,cRLSign"])
    leaf = parse_certificate(pki.leaf(ca, "dave", public_key=setup.key,
                                      algorithm=ACCOUNT_ALGORITHM[setup.suite]))
    refused(E.KEY_USAGE, lambda: setup.verify(leaf, [parse_ca(ca)]))


@pytest.mark.parametrize("extensions", [
    ["basicConstraints = critical,CA:FALSE", "keyUsage = critical,keyEncipherment"],
    ["basicConstraints = critical,CA:FALSE"],  # no keyUsage at all
    CA_EXTENSIONS,  # a CA certificate is no account's
], ids=["key-encipherment-only", "no-key-usage", "ca-as-account"])
def test_a_leaf_without_digital_signature(setup: Setup, extensions: list[str]) -> None:
    leaf = parse_certificate(setup.pki.leaf(setup.root_ca, "erin", public_key=setup.key,
                                            algorithm=ACCOUNT_ALGORITHM[setup.suite],
                                            extensions=extensions))
    refused(E.KEY_USAGE, lambda: setup.verify(leaf))
    refused(E.KEY_USAGE, lambda: setup.verify(leaf, usage="node"))


def test_a_critical_extension_tally_does_not_enforce(setup: Setup) -> None:
    leaf = parse_certificate(setup.pki.leaf(setup.root_ca, "frank", public_key=setup.key,
                                            algorithm=ACCOUNT_ALGORITHM[setup.suite],
                                            extensions=[*LEAF_EXTENSIONS,
                                                        "extendedKeyUsage = critical,serverAuth"]))
    assert leaf.unhandled_critical == ("2.5.29.37",)
    refused(E.CRITICAL_EXTENSION, lambda: setup.verify(leaf))


def test_too_long_a_chain(setup: Setup, pki: OpensslPki) -> None:
    a = pki.intermediate(setup.root_ca, "Level 1")
    b = pki.intermediate(a, "Level 2")
    c = pki.intermediate(b, "Level 3")
    account = ACCOUNT_ALGORITHM[setup.suite]
    two = parse_certificate(pki.leaf(b, "gina", public_key=setup.key, algorithm=account))
    setup.verify(two, [parse_ca(b), parse_ca(a)])  # 4 certificates: the most
    three = parse_certificate(pki.leaf(c, "hank", public_key=setup.key, algorithm=account))
    refused(E.CHAIN_TOO_LONG,
            lambda: setup.verify(three, [parse_ca(c), parse_ca(b), parse_ca(a)]))


def test_path_length_constraint(setup: Setup, pki: OpensslPki) -> None:
    root_ca = pki.root(f"Flat {setup.root_ca.algorithm}", setup.root_ca.algorithm, extensions=[
        "basicConstraints = critical,CA:TRUE,pathlen:0", "keyUsage = critical,keyCertSign"])
    account = ACCOUNT_ALGORITHM[setup.suite]
    root = parse_ca(root_ca)
    direct = parse_certificate(pki.leaf(root_ca, "ivan", public_key=setup.key, algorithm=account))
    setup.verify(direct, roots=[root])
    inter_ca = pki.intermediate(root_ca, "Flat Retail")
    deep = parse_certificate(pki.leaf(inter_ca, "judy", public_key=setup.key, algorithm=account))
    refused(E.CHAIN_TOO_LONG, lambda: setup.verify(deep, [parse_ca(inter_ca)], roots=[root]))


@pytest.mark.parametrize("extensions", [
    CA_EXTENSIONS,
    ["basicConstraints = critical,CA:TRUE,pathlen:3", "keyUsage = keyCertSign,digitalSignature"],
    LEAF_EXTENSIONS,
    ["keyUsage = critical,digitalSignature,nonRepudiation,keyEncipherment,dataEncipherment,"
     "keyAgreement,keyCertSign,cRLSign,encipherOnly,decipherOnly"],
    ["subjectAltName = critical,email:a@example.cn", "certificatePolicies = 1.2.3.4"],
], ids=["ca", "pathlen", "leaf", "every-bit", "other-critical"])
def test_extensions_read_as_cryptography_reads_them(pki: OpensslPki,
                                                    extensions: list[str]) -> None:
    """The DER walk reads basicConstraints, keyUsage and criticality as cryptography does."""
    root_ca = pki.root("Bank ed25519", "ed25519")
    ours = parse_certificate(pki.leaf(root_ca, "x", extensions=extensions))
    theirs = x509.load_der_x509_certificate(ours.der)
    constraints = {e.oid: e for e in theirs.extensions}
    bc = constraints.get(ExtensionOID.BASIC_CONSTRAINTS)
    assert ours.is_ca == (bc is not None and bc.value.ca)  # type: ignore[attr-defined]
    assert ours.path_length == (bc.value.path_length if bc else None)  # type: ignore[attr-defined]
    ku = constraints.get(ExtensionOID.KEY_USAGE)
    if ku is None:
        assert ours.key_usage is None
    else:
        value = ku.value
        names = ["digital_signature", "content_commitment", "key_encipherment",
                 "data_encipherment", "key_agreement", "key_cert_sign", "crl_sign"]
        expected = {n for n in names if getattr(value, n)}
        if value.key_agreement:  # type: ignore[attr-defined]
            expected |= {n for n in ("encipher_only", "decipher_only") if getattr(value, n)}
        assert set(ours.key_usage or ()) == expected
    critical = sorted(e.oid.dotted_string for e in theirs.extensions if e.critical
                      and e.oid not in (ExtensionOID.BASIC_CONSTRAINTS, ExtensionOID.KEY_USAGE))
    assert list(ours.unhandled_critical) == critical


def test_extensions_cryptography_refuses_are_read_by_the_rfc(pki: OpensslPki) -> None:
    """cryptography refuses decipherOnly without keyAgreement when asked for the
    extension; RFC 5280 leaves it undefined, not invalid. The walk reads the bits, and
    no newer cryptography rule about extensions can change a verdict."""
    root_ca = pki.root("Bank ed25519", "ed25519")
    ours = parse_certificate(pki.leaf(root_ca, "y", extensions=["keyUsage = decipherOnly"]))
    assert ours.key_usage == ("decipher_only",)
    with pytest.raises(ValueError):
        _ = x509.load_der_x509_certificate(ours.der).extensions


# --- algorithms -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def foreign(pki: OpensslPki) -> dict[str, tuple[Certificate, Certificate]]:
    """(root, leaf) pairs made with each algorithm, RSA included."""
    out = {}
    for algorithm in ("rsa", "sm2", "ed25519", "p256"):
        root_ca = pki.root(f"Foreign {algorithm}", algorithm)
        out[algorithm] = (parse_ca(root_ca), parse_certificate(pki.leaf(root_ca, "zed")))
    return out


@pytest.mark.parametrize(("suite", "algorithm"), [
    ("intl", "rsa"), ("gm", "rsa"), ("intl", "sm2"), ("gm", "ed25519"), ("gm", "p256"),
])
def test_an_algorithm_the_suite_does_not_accept(
        foreign: dict[str, tuple[Certificate, Certificate]], suite: str, algorithm: str) -> None:
    root, leaf = foreign[algorithm]
    refused(E.ALGORITHM, lambda: verify_chain(leaf, [], [root], at_ms=block_time(leaf),
                                              suite_name=suite))
    refused(E.ALGORITHM, lambda: check_root(root, at_ms=block_time(root), suite_name=suite))


def test_a_leaf_signed_by_an_ed25519_ca_under_a_p256_name(pki: OpensslPki,
                                                          account_keys: dict[str, bytes]) -> None:
    """A signature of one kind under an issuer whose key makes another: ``algorithm``."""
    p256 = pki.root("Mixed", "p256")
    ed = pki.root("Mixed", "ed25519")
    leaf = parse_certificate(pki.leaf(ed, "kim", public_key=account_keys["intl"],
                                      algorithm="ed25519"))
    refused(E.ALGORITHM, lambda: verify_chain(leaf, [], [parse_ca(p256)],
                                              at_ms=block_time(leaf), suite_name="intl"))
    verify_chain(leaf, [], [parse_ca(p256), parse_ca(ed)], at_ms=block_time(leaf),
                 suite_name="intl")


def test_sm2_signed_with_openssls_empty_id_is_refused_and_said_so(
        pki: OpensslPki, account_keys: dict[str, bytes]) -> None:
    """OpenSSL 3.0 signs SM2 with an empty distinguishing ID unless told otherwise."""
    root_ca = pki.root("Bank sm2", "sm2")
    leaf = parse_certificate(pki.leaf(root_ca, "lee", public_key=account_keys["gm"],
                                      algorithm="sm2", sm2_id=None))
    error = refused(E.BAD_SIGNATURE, lambda: verify_chain(
        leaf, [], [parse_ca(root_ca)], at_ms=block_time(leaf), suite_name="gm"))
    assert "distid:1234567812345678" in error.message
    bare_root = parse_ca(pki.root("Bank sm2 bare", "sm2", sm2_id=None))
    refused(E.BAD_SIGNATURE, lambda: check_root(bare_root, at_ms=block_time(bare_root),
                                                suite_name="gm"))


# --- malformed input --------------------------------------------------------------------


def test_malformed_input(setup: Setup) -> None:
    pem = setup.root_ca.pem
    der = setup.root.der
    cases = {
        "empty": b"",
        "garbage": b"not a certificate",
        "truncated DER": der[:-1],
        "truncated more": der[: len(der) // 2],
        "trailing bytes": der + b"\x00",
        "two PEM blocks": pem + pem,
        "PEM not base64": pem.replace(pem[40:44], b"!!!!"),
        "text before PEM": b"Subject: someone\n" + pem,
        "a public key PEM": pem.replace(b"CERTIFICATE", b"PUBLIC KEY"),
        "oversized": b"\x30" + b"\x00" * MAX_CERTIFICATE_SIZE,
        "a string": pem.decode(),
    }
    for name, data in cases.items():
        error = refused(E.MALFORMED, lambda d=data: parse_certificate(d))  # type: ignore[misc]
        assert error.message, name
    parse_certificate(b"\n" + pem + b"\r\n")  # surrounding whitespace is fine


def test_unused_bits_in_the_signature_are_refused(setup: Setup) -> None:
    """Setting the unused-bits count of the signature BIT STRING would leave the value a
    lenient parser reads unchanged: DER says 0, and so does the parser."""
    der = bytearray(setup.leaf.der)
    at = len(der) - len(setup.leaf.signature) - 1
    assert der[at] == 0
    der[at] = 1
    refused(E.MALFORMED, lambda: parse_certificate(bytes(der)))


def test_outer_and_signed_algorithms_must_agree(pki: OpensslPki) -> None:
    der = parse_ca(pki.root("Foreign p256", "p256")).der
    ecdsa_sha256 = b"\x30\x0a\x06\x08" + bytes.fromhex("2a8648ce3d040302")
    assert der.count(ecdsa_sha256) == 2  # signed, in tbsCertificate, and outside it
    at = der.rfind(ecdsa_sha256)
    sha384 = ecdsa_sha256[:-1] + b"\x03"
    refused(E.MALFORMED, lambda: parse_certificate(der[:at] + sha384 + der[at + 12:]))


def test_a_name_cryptography_cannot_decode_is_compared_as_bytes(setup: Setup) -> None:
    """Found by the byte flips: a subject value with a tag no string type has (0x0d)
    passes the DER walk; the signature fails, and showing the name does not raise."""
    der = setup.leaf.der
    alice = b"\x0c\x05alice"  # UTF8String "alice"
    assert der.count(alice) == 1
    odd = parse_certificate(der.replace(alice, b"\x0d\x05alice"))
    assert odd.subject.startswith("#30")
    refused(E.BAD_SIGNATURE, lambda: setup.verify(odd))


@pytest.fixture(scope="session")
def flip_targets(pki: OpensslPki,
                 account_keys: dict[str, bytes]) -> dict[str, tuple[bytes, Certificate, int]]:
    out = {}
    for suite, algorithm in (("intl", "ed25519"), ("gm", "sm2")):
        root_ca = pki.root(f"Bank {algorithm}", algorithm)
        leaf = pki.leaf(root_ca, "alice", public_key=account_keys[suite],
                        algorithm=ACCOUNT_ALGORITHM[suite])
        parsed, root = parse_certificate(leaf), parse_ca(root_ca)
        verify_chain(parsed, [], [root], at_ms=block_time(parsed), suite_name=suite)
        out[suite] = (parsed.der, root, block_time(parsed))
    return out


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(suite=st.sampled_from(["intl", "gm"]), data=st.data())
def test_flipped_bytes_never_verify(flip_targets: dict[str, tuple[bytes, Certificate, int]],
                                    suite: str, data: st.DataObject) -> None:
    """Random changes to a valid leaf: refused with a CertificateError, nothing else."""
    der, root, at = flip_targets[suite]
    changed = bytearray(der)
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(der) - 1))
        changed[at] ^= data.draw(st.integers(1, 255))
    if bytes(changed) == der:
        return
    with pytest.raises(CertificateError):
        leaf = parse_certificate(bytes(changed))
        verify_chain(leaf, [], [root], at_ms=at, suite_name=suite)
