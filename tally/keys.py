"""Key files: a named private key on disk, readable only by its owner.

Format (JSON)::

    {"name": "bank-a", "suite": "intl", "private_key": "<hex>",
     "public_key": "<hex>", "address": "<hex>"}

The public key and address are written for people and tools; on load they are
recomputed from the private key and a mismatch is refused, so a hand-edited file cannot
claim an identity its key does not have.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from tally.crypto import PrivateKey, get_suite

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class NamedKey:
    name: str
    key: PrivateKey

    @property
    def address(self) -> str:
        return self.key.suite.address(self.key.public_key)

    @property
    def public_key(self) -> bytes:
        return self.key.public_key

    def to_json(self) -> str:
        return json.dumps({
            "name": self.name,
            "suite": self.key.suite.name,
            "private_key": self.key.to_bytes().hex(),
            "public_key": self.public_key.hex(),
            "address": self.address,
        }, indent=2) + "\n"


def check_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise ValueError(f"key name {name!r}: use 1-64 letters, digits, '.', '_' or '-'")
    return name


def generate(name: str, suite_name: str) -> NamedKey:
    return NamedKey(check_name(name), get_suite(suite_name).generate_private_key())


def save(path: Path, named: NamedKey) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(named.to_json())


def load(path: Path) -> NamedKey:
    try:
        doc = json.loads(Path(path).read_text())
        suite = get_suite(doc["suite"])
        key = suite.load_private_key(bytes.fromhex(doc["private_key"]))
        name = check_name(doc["name"])
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"cannot read key file {path}: {exc}") from exc
    if "public_key" in doc and doc["public_key"] != key.public_key.hex():
        raise ValueError(f"key file {path}: public_key does not match the private key")
    return NamedKey(name, key)
