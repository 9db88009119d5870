"""Finding the pinned CometBFT binary and asking its version.

Every other module of the package starts cometbft through `find_cometbft`, so one
place decides which binary a node, a test or a benchmark runs: an explicit path,
then $TALLY_COMETBFT, then $(go env GOPATH)/bin (where scripts/install_cometbft.sh
puts the pinned version), then PATH.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

PINNED_VERSION = "0.38.26"


class CometBFTNotFound(FileNotFoundError):
    """No usable cometbft binary; run scripts/install_cometbft.sh."""



def _go_binary() -> str | None:
    return shutil.which("go") or (
        "/usr/local/go/bin/go" if os.access("/usr/local/go/bin/go", os.X_OK) else None
    )


def find_cometbft(binary: str | os.PathLike[str] | None = None) -> Path:
    """Path of the cometbft binary: explicit, $TALLY_COMETBFT, $(go env GOPATH)/bin, PATH."""
    candidates: list[str] = []
    if binary:
        candidates.append(str(binary))
    if os.environ.get("TALLY_COMETBFT"):
        candidates.append(os.environ["TALLY_COMETBFT"])
    go = _go_binary()
    if go:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            gopath = subprocess.run(
                [go, "env", "GOPATH"], capture_output=True, text=True, timeout=10
            ).stdout.strip()
            if gopath:
                candidates.append(str(Path(gopath.split(os.pathsep)[0]) / "bin" / "cometbft"))
    found = shutil.which("cometbft")
    if found:
        candidates.append(found)
    for c in candidates:
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return Path(c)
    raise CometBFTNotFound(
        "cometbft not found (looked at TALLY_COMETBFT, $(go env GOPATH)/bin, PATH); "
        "install it with scripts/install_cometbft.sh"
    )


def cometbft_version(binary: str | os.PathLike[str] | None = None) -> str:
    out = subprocess.run(
        [str(find_cometbft(binary)), "version"], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()
