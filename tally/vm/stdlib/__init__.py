"""The contract standard library: modules in the contract language that contracts
import with ``from std.<module> import <name>`` (docs/contracts.md, decision 0904).

A library function runs in the importing contract's frame, as if its text were in the
contract: the same metering, ``ctx``, ``emit`` and ``host_call``, the contract's own
storage through the instance it is given. Nothing is called across contracts.

Each module's text is **frozen**: its SHA-256 is pinned in :data:`PINNED`, checked when
the module is loaded, and folded into the code id of every contract that imports it
(:func:`tally.vm.compiler.linked_code_id`). A published module never changes; a fix or
an addition is a new module name (``std.token2``), so a deployed contract's code id
keeps naming the code that runs. The first deploy that imports a module writes its text
into state under ``c/!lib/<module>`` (:func:`library_key`), where an auditor reads it.
"""

from __future__ import annotations

import hashlib
from importlib import resources

#: Module name -> file in this package (not named after the module: a file token.py
#: here would shadow Python's own token module for a script run from this folder).
LIBRARIES = {
    "std.checks": "std_checks.py",
    "std.token": "std_token.py",
}

#: SHA-256 of each module's text: a node refuses to load a module that differs.
PINNED = {
    "std.checks": "02a1063334ec64ef73f3876d431ca9ce579ef02cab981275f51fb754b710ba7e",
    "std.token": "421662a35645f0616df8362869f76eb953359dcc571b57f80b2c3cc1cb6e33cc",
}


def library_key(module: str) -> bytes:
    """Where a module's text is kept in state (CBOR text), written by the first deploy
    that imports it. ``!lib`` is no contract name, so no contract's keys collide."""
    return b"c/!lib/" + module.encode("ascii")


def source(module: str) -> str:
    """The text of library ``module``, exactly as pinned."""
    if module not in LIBRARIES:
        raise KeyError(f"no library module {module!r}; modules: {', '.join(LIBRARIES)}")
    text = resources.files(__name__).joinpath(LIBRARIES[module]).read_text(encoding="utf-8")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    if digest != PINNED[module]:
        raise RuntimeError(f"library {module} differs from its pinned text ({digest}): a "
                           "published module never changes; add a new module instead")
    return text


__all__ = ["LIBRARIES", "PINNED", "library_key", "source"]
