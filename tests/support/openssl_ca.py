"""Certificate authorities made with the ``openssl`` command line, as a member's IT
department would make them: ``openssl genpkey``, ``req``, ``x509`` and ``ca`` in a
directory of their own (OpenSSL 3.0 or later).

* roots are self-signed (``req -x509``); intermediates are issued from a CSR
  (``req`` then ``x509 -req``);
* a leaf for a key Tally generated binds *that* key: the raw key is written as a PEM
  SubjectPublicKeyInfo (:func:`tally.identity.certs.public_key_pem`, what ``tally keys
  show --pem`` prints) and placed with ``x509 -new -force_pubkey``;
* a leaf with chosen dates in the past or future is issued by ``openssl ca
  -startdate/-enddate`` (``x509`` in OpenSSL 3.0 has only ``-days``), from a CSR;
* SM2 certificates are signed ``-sm3 -sigopt distid:1234567812345678``: GM/T 0015's
  default ID, which OpenSSL 3.0 does not use by itself (it signs with an empty ID).

Every openssl run costs ~0.1 s, so :class:`OpensslPki` keeps each CA it makes: build
one per test session and ask it for the same CA again.
"""

from __future__ import annotations

import itertools
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tally.identity.certs import public_key_pem

#: Key algorithms openssl makes here: Tally's three, and RSA (which Tally refuses).
ALGORITHMS = ("ed25519", "p256", "sm2", "rsa")
SM2_DEFAULT_ID = "1234567812345678"

_GENPKEY = {
    "ed25519": ["-algorithm", "ED25519"],
    "p256": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-pkeyopt", "ec_param_enc:named_curve"],
    "sm2": ["-algorithm", "SM2"],
    "rsa": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
}
CA_EXTENSIONS = ["basicConstraints = critical,CA:TRUE", "keyUsage = critical,keyCertSign,cRLSign",
                 "subjectKeyIdentifier = hash"]
LEAF_EXTENSIONS = ["basicConstraints = critical,CA:FALSE", "keyUsage = critical,digitalSignature",
                   "subjectKeyIdentifier = hash", "authorityKeyIdentifier = keyid"]


def openssl(*args: str | Path, cwd: Path) -> bytes:
    """Run ``openssl args``; its stdout, or an error carrying its stderr."""
    done = subprocess.run(["openssl", *map(str, args)], cwd=cwd, capture_output=True)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(map(str, args))} failed:\n"
                           f"{done.stderr.decode(errors='replace')}")
    return done.stdout


def sign_options(algorithm: str, sm2_id: str | None = SM2_DEFAULT_ID) -> list[str]:
    """The digest and signature options for a key of ``algorithm`` (none for Ed25519;
    ``sm2_id=None`` signs SM2 as OpenSSL 3.0 does by default, with an empty ID)."""
    if algorithm == "sm2":
        return ["-sm3"] + ([] if sm2_id is None else ["-sigopt", f"distid:{sm2_id}"])
    return [] if algorithm == "ed25519" else ["-sha256"]


@dataclass(frozen=True)
class Ca:
    """A CA openssl made: its key and certificate files."""

    name: str
    algorithm: str
    key: Path
    cert: Path

    @property
    def pem(self) -> bytes:
        return self.cert.read_bytes()


class OpensslPki:
    """Makes and keeps CAs and issues leaves, in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._names = itertools.count(1)
        self._serials = itertools.count(0x1000)
        self._cas: dict[tuple[object, ...], Ca] = {}

    def _path(self, suffix: str) -> Path:
        return self.directory / f"f{next(self._names)}{suffix}"

    def _extensions(self, lines: list[str]) -> Path:
        path = self._path(".cnf")
        path.write_text("[ext]\n" + "\n".join(lines) + "\n")
        return path

    def _run(self, *args: str | Path) -> bytes:
        return openssl(*args, cwd=self.directory)

    def key(self, algorithm: str) -> Path:
        """A fresh private key, as PEM, made by ``openssl genpkey``."""
        path = self._path(".key")
        self._run("genpkey", *_GENPKEY[algorithm], "-out", path)
        return path

    def root(self, name: str, algorithm: str, *, days: int = 3650,
             extensions: list[str] | None = None, sm2_id: str | None = SM2_DEFAULT_ID,
             copy: int = 0) -> Ca:
        """A self-signed root CA (kept: the same arguments give the same CA; another
        ``copy`` number gives another CA of the same name, with its own key)."""
        memo = ("root", name, algorithm, days, tuple(extensions or ()), sm2_id, copy)
        if memo not in self._cas:
            key, cert = self.key(algorithm), self._path(".pem")
            config = self._extensions(extensions if extensions is not None else CA_EXTENSIONS)
            config.write_text(config.read_text() + "[req]\ndistinguished_name = dn\n[dn]\n")
            self._run("req", "-new", "-x509", "-key", key, "-subj", f"/C=CN/O={name}/CN={name}",
                      "-days", str(days), "-set_serial", str(next(self._serials)),
                      "-config", config, "-extensions", "ext",
                      *sign_options(algorithm, sm2_id), "-out", cert)
            self._cas[memo] = Ca(name, algorithm, key, cert)
        return self._cas[memo]

    def intermediate(self, parent: Ca, name: str, algorithm: str | None = None, *,
                     extensions: list[str] | None = None, days: int = 1825) -> Ca:
        """A CA issued by ``parent`` from a CSR (kept, like roots)."""
        algorithm = algorithm or parent.algorithm
        memo = ("intermediate", parent, name, algorithm, tuple(extensions or ()), days)
        if memo not in self._cas:
            key, csr = self.key(algorithm), self._path(".csr")
            self._run("req", "-new", "-key", key, "-subj", f"/C=CN/O={parent.name}/CN={name}",
                      *sign_options(algorithm), "-out", csr)
            cert = self._issue(parent, ["-req", "-in", csr], days,
                               extensions if extensions is not None else CA_EXTENSIONS,
                               csr_algorithm=algorithm)
            self._cas[memo] = Ca(name, algorithm, key, cert)
        return self._cas[memo]

    def leaf(self, issuer: Ca, name: str, *, public_key: bytes | None = None,
             algorithm: str | None = None, days: int = 365,
             extensions: list[str] | None = None, sm2_id: str | None = SM2_DEFAULT_ID) -> bytes:
        """A leaf certificate (PEM) issued by ``issuer`` for ``public_key``, a raw key of
        ``algorithm`` (default: the issuer's), or for a fresh openssl key when None."""
        algorithm = algorithm or issuer.algorithm
        pub = self._path(".pub")
        if public_key is None:
            self._run("pkey", "-in", self.key(algorithm), "-pubout", "-out", pub)
        else:
            pub.write_bytes(public_key_pem(algorithm, public_key))
        cert = self._issue(issuer, ["-new", "-subj", f"/C=CN/O={issuer.name}/CN={name}",
                                    "-force_pubkey", pub], days,
                           extensions if extensions is not None else LEAF_EXTENSIONS,
                           sm2_id=sm2_id)
        return cert.read_bytes()

    def _issue(self, issuer: Ca, source: list[str | Path], days: int, extensions: list[str],
               *, csr_algorithm: str | None = None,
               sm2_id: str | None = SM2_DEFAULT_ID) -> Path:
        cert = self._path(".pem")
        verify = (["-vfyopt", f"distid:{SM2_DEFAULT_ID}"] if csr_algorithm == "sm2" else [])
        self._run("x509", *source, *verify, "-CA", issuer.cert, "-CAkey", issuer.key,
                  "-days", str(days), "-set_serial", str(next(self._serials)),
                  "-extfile", self._extensions(extensions), "-extensions", "ext",
                  *sign_options(issuer.algorithm, sm2_id), "-out", cert)
        return cert

    def server_leaf(self, issuer: Ca, name: str, *, ips: tuple[str, ...] = ("127.0.0.1",),
                    dns: tuple[str, ...] = ("localhost",), algorithm: str | None = None,
                    days: int = 365) -> tuple[Path, Path]:
        """A TLS server certificate for a fresh key, issued by ``issuer``, with the
        subject alternative names ``ips`` and ``dns`` and serverAuth: (cert file, key
        file), both PEM, for ``tally node run --tls-cert --tls-key``."""
        algorithm = algorithm or issuer.algorithm
        key, csr = self.key(algorithm), self._path(".csr")
        self._run("req", "-new", "-key", key, "-subj", f"/C=CN/O={issuer.name}/CN={name}",
                  *sign_options(algorithm), "-out", csr)
        names = ",".join([f"IP:{ip}" for ip in ips] + [f"DNS:{d}" for d in dns])
        cert = self._issue(issuer, ["-req", "-in", csr], days, [
            "basicConstraints = critical,CA:FALSE", "keyUsage = critical,digitalSignature",
            "extendedKeyUsage = serverAuth", f"subjectAltName = {names}",
            "subjectKeyIdentifier = hash", "authorityKeyIdentifier = keyid"],
            csr_algorithm=algorithm)
        return cert, key

    def dated_leaf(self, issuer: Ca, name: str, *, not_before: str, not_after: str,
                   extensions: list[str] | None = None) -> bytes:
        """A leaf (PEM, for a fresh key) valid from ``not_before`` to ``not_after``
        (``YYYYMMDDHHMMSSZ``), issued by ``openssl ca``."""
        work = self._path(".ca")
        work.mkdir()
        (work / "index.txt").write_text("")
        (work / "serial").write_text(f"{next(self._serials):X}\n")
        config = work / "ca.cnf"
        config.write_text(
            "[ca]\ndefault_ca = dated\n[dated]\n"
            f"dir = {work}\ndatabase = $dir/index.txt\nnew_certs_dir = $dir\n"
            "serial = $dir/serial\npolicy = any\nunique_subject = no\n"
            "default_md = default\ncopy_extensions = none\n"
            "[any]\ncountryName = optional\norganizationName = optional\n"
            "commonName = supplied\n[ext]\n"
            + "\n".join(extensions if extensions is not None else LEAF_EXTENSIONS) + "\n")
        key, csr, cert = self.key(issuer.algorithm), work / "leaf.csr", work / "leaf.pem"
        self._run("req", "-new", "-key", key, "-subj", f"/C=CN/O={issuer.name}/CN={name}",
                  *sign_options(issuer.algorithm), "-out", csr)
        digest = {"ed25519": "default", "sm2": "sm3"}.get(issuer.algorithm, "sha256")
        sm2 = (["-sigopt", f"distid:{SM2_DEFAULT_ID}", "-vfyopt", f"distid:{SM2_DEFAULT_ID}"]
               if issuer.algorithm == "sm2" else [])
        self._run("ca", "-batch", "-config", config, "-cert", issuer.cert, "-keyfile", issuer.key,
                  "-in", csr, "-startdate", not_before, "-enddate", not_after,
                  "-extensions", "ext", "-md", digest, *sm2, "-notext", "-out", cert)
        return cert.read_bytes()
