"""The layers of the ``tally`` package, and a test that every import respects them.

``LAYERS`` below is the declared order, lowest first; docs/architecture.md cites it. A
module belongs to the layer of the longest prefix listed for it (``tally.node.reader``
to "node parts", the rest of ``tally.node`` to "node"), and may import from its own
layer and the layers below, never from one above. Every import counts: at the top of a
module, inside a function, and under ``if TYPE_CHECKING:`` (a type-only import is still
a dependency, and the one import cycle the tree had ran through such imports).

Besides the order:

* the evidence verifier (``tally.evidence.verify``) imports only the standalone
  ``tally_verify`` package, the log, the crypto suites and the error codes, and
  ``tally_verify`` imports nothing of Tally at all, so that it is audited and published
  alone (statically here, and at run time in a fresh interpreter; decision 0024);
* the SDK never imports the node, the API or the executor: a client needs none of them;
* nothing outside the node, the ledger, consensus and the state package reaches into a
  store (an attribute ``store``) or the ledger's commercial log (``log2``): everything
  else reads through :class:`tally.node.reader.ChainReader`.

A new module needs a line in ``LAYERS`` (the test fails for a module with no layer).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

#: The layers, lowest first: (name, module prefixes). The root package ``tally`` itself
#: (its ``__init__``) is matched exactly, not as a prefix.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundations", ("tally", "tally.errors", "tally.codec", "tally.crypto", "tally.bounded",
                     "tally.identity", "tally.identity.certs", "tally.identity.credit_code",
                     "tally.privacy")),
    ("formats", ("tally.log", "tally.state", "tally.protocol", "tally.tx", "tally.keys",
                 "tally.genesis", "tally.evidence", "tally.evidence.verify")),
    ("contract VM", ("tally.vm",)),
    ("execution rules", ("tally.exec",)),
    ("block path", ("tally.admission", "tally.mempool", "tally.ledger")),
    ("consensus", ("tally.consensus", "tally.net.cometbft")),
    ("node parts", ("tally.node.engine", "tally.node.reader")),
    ("consumers of the reader", ("tally.evidence.export", "tally.metrics", "tally.audit")),
    ("node", ("tally.node",)),
    ("supervision", ("tally.supervision",)),
    ("API", ("tally.api",)),
    ("clients and tools", ("tally.sdk", "tally.cli", "tally.cli.net_ceremony", "tally.demo",
                           "tally.demo_consortium",
                           "tally.home", "tally.net", "tally.net.ceremony", "tally.apps",
                           "tally.witness", "tally.__main__")),
]

#: What Tally's evidence verifier may import (besides its own package's __init__): the
#: standalone verifier it re-exports, the error codes it converts to, and the log and
#: the suites its equivocation check (find_misbehaviour) runs on.
VERIFIER = "tally.evidence.verify"
VERIFIER_MAY_IMPORT = ("tally_verify", "tally.log", "tally.crypto", "tally.errors")
#: The standalone verifier's sources (verifier/, published as tally-verify).
STANDALONE = Path(__file__).resolve().parents[2] / "verifier" / "tally_verify"

#: Imports forbidden even where the layer order would allow them.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "tally.sdk": ("tally.node", "tally.api", "tally.exec"),
}

#: The only modules that may hold a store or the ledger's commercial log.
STORE_OWNERS = ("tally.node", "tally.ledger", "tally.consensus", "tally.state")
PRIVATE_ATTRIBUTES = ("store", "log2")

ROOT = Path(__file__).resolve().parents[2] / "tally"
ROOT_PACKAGE = "tally"


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        if "proto_gen" in path.parts:  # generated protobuf code
            continue
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts).removesuffix(".__init__")
        out[name] = path
    return out


MODULES = _modules()


def _within(module: str, prefix: str) -> bool:
    if prefix == ROOT_PACKAGE:
        return module == prefix
    return module == prefix or module.startswith(prefix + ".")


def layer_of(module: str) -> int | None:
    best: tuple[int, int] | None = None  # (prefix length, layer)
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if _within(module, prefix) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), index)
    return None if best is None else best[1]


def _known(name: str) -> str | None:
    """The module of ours that importing ``name`` loads (the longest known prefix)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str, source: str | None = None) -> list[tuple[int, str]]:
    """(line, module) of every import of a ``tally`` module anywhere in ``module``."""
    path = MODULES.get(module)
    tree = ast.parse(source if source is not None else path.read_text())  # type: ignore[union-attr]
    is_package = path is not None and path.name == "__init__.py"
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[:len(package) - node.level + 1]
                base = ".".join(package + ([base] if base else []))
            # ``from a import b`` loads a.b when b is a module, else a.
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                     for alias in node.names]
        else:
            continue
        for name in names:
            target = _known(name)
            if target is not None and target.startswith(ROOT_PACKAGE) and target != module:
                found.append((node.lineno, target))
    return found


def violations(module: str, source: str | None = None) -> list[str]:
    """Every import of ``module`` that breaks the declared layers or a rule above."""
    own = layer_of(module)
    problems = []
    for line, target in imports_of(module, source):
        theirs = layer_of(target)
        if own is not None and theirs is not None and theirs > own:
            problems.append(f"{module}:{line} imports {target}: layer {LAYERS[theirs][0]!r} "
                            f"is above {LAYERS[own][0]!r}")
        for prefix, banned in FORBIDDEN.items():
            if _within(module, prefix) and any(_within(target, b) for b in banned):
                problems.append(f"{module}:{line} imports {target}, which {prefix} must not")
        if module == VERIFIER and not (
                target in ("tally", "tally.evidence")
                or any(_within(target, p) for p in VERIFIER_MAY_IMPORT)):
            problems.append(f"{module}:{line} imports {target}; the verifier may import only "
                            f"{', '.join(VERIFIER_MAY_IMPORT)}")
    return problems


def test_every_module_has_a_layer() -> None:
    assert [m for m in MODULES if layer_of(m) is None] == []


def test_imports_follow_the_layers() -> None:
    problems = [p for module in MODULES for p in violations(module)]
    assert problems == []


def test_only_the_node_ledger_consensus_and_state_touch_a_store() -> None:
    problems = []
    for module, path in MODULES.items():
        if any(_within(module, owner) for owner in STORE_OWNERS):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in PRIVATE_ATTRIBUTES:
                problems.append(f"{module}:{node.lineno} reads .{node.attr}; read through "
                                "the ChainReader")
    assert problems == []


@pytest.mark.parametrize(("module", "added", "expected"), [
    ("tally.metrics", "from tally.node import Node\n", "tally.node"),
    ("tally.metrics", "def f():\n    import tally.api.app\n", "tally.api.app"),
    ("tally.evidence.export", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                              "    from tally.node.node import Node\n", "tally.node.node"),
    ("tally.node.reader", "from tally.evidence.export import export_bundle\n",
     "tally.evidence.export"),
    ("tally.evidence.verify", "from tally import codec\n", "tally.codec"),
    ("tally.sdk.client", "from tally.exec.executor import Executor\n", "tally.exec.executor"),
])
def test_the_check_catches_an_upward_import(module: str, added: str, expected: str) -> None:
    """The test is not vacuous: adding a forbidden import to a module is caught."""
    source = MODULES[module].read_text() + "\n" + added
    assert violations(module) == []
    assert any(f"imports {expected}" in p for p in violations(module, source))


def test_the_verifier_imports_only_tally_verify_log_crypto_and_errors_at_run_time() -> None:
    code = ("import sys, tally.evidence.verify; "
            "print(sorted(m for m in sys.modules if m.startswith('tally')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    modules = eval(out)  # a list literal printed by the child
    allowed = ("tally", "tally.evidence", VERIFIER)
    assert all(m in allowed or any(_within(m, p) for p in VERIFIER_MAY_IMPORT)
               for m in modules), modules


def test_the_standalone_verifier_imports_nothing_of_tally() -> None:
    """tally_verify, its console entry point included, runs without Tally: no import of
    ``tally`` in its sources, and none loaded when a fresh interpreter imports it."""
    sources = sorted(STANDALONE.glob("*.py"))
    assert sources, STANDALONE
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n == "tally" or n.startswith("tally.") for n in names), (path, names)
    code = ("import sys, tally_verify, tally_verify.__main__; "
            "print(sorted(m for m in sys.modules if m == 'tally' or m.startswith('tally.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert eval(out) == []  # a list literal printed by the child


def test_the_readers_consumers_load_without_the_node() -> None:
    """The metrics and the exporter name the reader and the engine for types only: loading
    them loads no part of the node (nor, so, the writer's side of it)."""
    code = ("import sys, tally.metrics, tally.evidence.export; "
            "print(sorted(m for m in sys.modules if m.startswith('tally.node')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert eval(out) == []
