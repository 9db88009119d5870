"""Writing a node home: ``cometbft init``, the node's keys, and config.toml edits.

`update_config` edits CometBFT's own config.toml line by line (keeping its comments)
and refuses keys it does not find, so a key renamed between CometBFT versions fails
loudly instead of being ignored; what a localnet sets lives in
:func:`tally.net.cometbft.localnet.localnet_config`.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any

from .binary import find_cometbft


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} to TOML")


_SECTION = re.compile(r"^\s*\[([\w.\-]+)\]\s*$")
_KEYLINE = re.compile(r"^(\s*)([\w.\-]+)(\s*=\s*)(.*)$")


def update_config(home: str | os.PathLike[str], changes: dict[str, dict[str, Any]]) -> None:
    """Set keys in ``home/config/config.toml``: {"" or "section": {key: value}}.

    Edits lines in place, keeping CometBFT's comments, and refuses unknown keys so a typo
    (or a key renamed between CometBFT versions) fails loudly instead of being ignored.
    """
    path = Path(home) / "config" / "config.toml"
    lines = path.read_text().splitlines(keepends=True)
    pending = {(sec, k): v for sec, kv in changes.items() for k, v in kv.items()}
    section = ""
    for i, line in enumerate(lines):
        m = _SECTION.match(line)
        if m:
            section = m[1]
            continue
        if line.lstrip().startswith("#"):
            continue
        m = _KEYLINE.match(line)
        if m and (section, m[2]) in pending:
            lines[i] = f"{m[1]}{m[2]}{m[3]}{_toml_value(pending.pop((section, m[2])))}\n"
    if pending:
        raise KeyError(f"keys not in {path}: {sorted(pending)}")
    path.write_text("".join(lines))



@dataclass
class NodeKeys:
    """Identity of an initialised home: p2p node id and validator key."""

    node_id: str
    validator_address: str  # upper-case hex, as CometBFT prints it
    validator_pubkey: str  # base64 Ed25519


def read_node_keys(home: str | os.PathLike[str]) -> NodeKeys:
    home = Path(home)
    nk = json.loads((home / "config" / "node_key.json").read_text())
    node_priv = base64.b64decode(nk["priv_key"]["value"])
    node_id = sha256(node_priv[32:]).digest()[:20].hex()  # ed25519: seed || pubkey
    pv = json.loads((home / "config" / "priv_validator_key.json").read_text())
    return NodeKeys(node_id, pv["address"], pv["pub_key"]["value"])


def init_node(
    home: str | os.PathLike[str], moniker: str, *, binary: str | os.PathLike[str] | None = None
) -> NodeKeys:
    """`cometbft init` into `home` (keys, default config, single-validator genesis)."""
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [str(find_cometbft(binary)), "init", "--home", str(home)],
        check=True,
        capture_output=True,
        text=True,
    )
    update_config(home, {"": {"moniker": moniker}})
    return read_node_keys(home)
