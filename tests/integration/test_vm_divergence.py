"""Outcomes that once depended on the host are the same everywhere: the divergence
cases of tests/support/vm_attacks_memory.py run in child processes under different
host memory limits (``RLIMIT_AS``, 1 GiB and 3 GiB), different Python recursion
limits (300 and 10,000) and at different depths of the host's own stack, as
in-process calls, as queries, and as transactions on a solo node, and every run
must give identical codes, messages, steps, write sets, events and return values.

Before the VM accounted memory and nesting itself, the starred copy failed at
126,352 steps under 1 GB and succeeded at 127,062 under 3 GB, and ``len(str(x))``
of ``x = [x]`` n deep failed at n = 990 in process, 984 in a transaction, 986 in a
query, and depended on how deep the call was made.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from tests.support.vm_attacks_memory import DIVERGENCE

GIB = 1 << 30

CHILD = textwrap.dedent(
    '''
    import hashlib, json, resource, sys
    config = json.loads(sys.argv[1])
    if config["rlimit_as"]:
        resource.setrlimit(resource.RLIMIT_AS, (config["rlimit_as"], config["rlimit_as"]))
    import cbor2
    from tests.support.vm_attacks_memory import DIVERGENCE, run_setup
    from tally.vm import VMError
    from tally.vm.testing import Harness

    def digest(value):
        return hashlib.sha256(cbor2.dumps(value, canonical=True)).hexdigest()[:16]

    def as_view(source):
        return source.replace("    def f(self", "    @view\\n    def f(self")

    def vm_mode(query):
        out = {}
        for case in DIVERGENCE:
            if query and "self.l =" in case.source:
                continue  # a view cannot write
            h = Harness()
            h.deploy("c", as_view(case.source) if query else case.source)
            run_setup(h, case)
            try:
                if query:
                    r = h.vm.query("c", case.method, list(case.args), storage=h.storage,
                                   ctx=h.ctx("alice"))
                else:
                    r = h.result("c", case.method, *case.args)
                out[case.name] = ["OK", "", r.steps_used, digest(sorted(r.write_set.items())),
                                  digest([[e.contract, e.name, e.data] for e in r.events]),
                                  digest(r.return_value)]
            except VMError as e:
                out[case.name] = [e.code, e.message, e.steps_used]
        return out

    def node_mode(tmp):
        from pathlib import Path
        from tests.support.chain import Chain
        from tally.errors import TallyError
        chain = Chain(Path(tmp), "intl")
        out = {}
        try:
            for i, case in enumerate(DIVERGENCE):
                name = f"d{i}"
                for source, label in ((case.source, name), (as_view(case.source), name + "v")):
                    r = chain.send("admin", "gov.propose", {"action": "contract.deploy",
                                                            "name": label, "source": source})
                    assert r.ok, r
                r = chain.node.submit_and_wait(chain.sign(
                    "alice", "contract.call",
                    {"contract": name, "method": case.method, "args": list(case.args)}, tier=2))
                out[case.name] = [r.code, r.message, digest(r.result)]
                if "self.l =" not in case.source:
                    try:
                        q = ["OK", digest(chain.node.reader.contract_query(
                            name + "v", case.method, list(case.args)))]
                    except TallyError as e:
                        q = [str(e.code), str(e)]
                    out[case.name + "/query"] = q
        finally:
            chain.stop()
        return out

    def nest(depth, fn):
        return fn() if depth == 0 else nest(depth - 1, fn)

    sys.setrecursionlimit(config["recursion_limit"])
    mode = config["mode"]
    if mode == "node":
        result = node_mode(config["tmp"])
    else:
        result = nest(config["host_depth"], lambda: vm_mode(mode == "query"))
    print(json.dumps(result, sort_keys=True))
    '''
)


def _run(mode: str, rlimit_as: int, recursion_limit: int, host_depth: int = 0,
         tmp: str = "") -> dict[str, Any]:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    config = {"mode": mode, "rlimit_as": rlimit_as, "recursion_limit": recursion_limit,
              "host_depth": host_depth, "tmp": tmp}
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(config)], env=env, cwd=root,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def _codes(outcome: dict[str, Any]) -> dict[str, str]:
    return {name: o[0] for name, o in outcome.items()}


@pytest.mark.parametrize("mode", ["call", "query"])
def test_vm_outcomes_do_not_depend_on_the_host(mode: str) -> None:
    generous = _run(mode, 3 * GIB, 10_000)
    variants = {
        "1 GiB, recursion limit 300": _run(mode, GIB, 300),
        "3 GiB, recursion limit 300, 150 host frames deep": _run(mode, 3 * GIB, 300, 150),
        "1 GiB, recursion limit 10000, 400 host frames deep": _run(mode, GIB, 10_000, 400),
    }
    for label, outcome in variants.items():
        assert outcome == generous, label
    expected = {c.name: c.expect for c in DIVERGENCE if c.name in generous}
    for name, codes in expected.items():
        assert generous[name][0] in codes, (name, generous[name])


def test_node_receipts_do_not_depend_on_the_host(tmp_path: Any) -> None:
    """A transaction and a query on a solo node: the same receipts under 1 GiB and a
    recursion limit of 300 as under 3 GiB and 10,000, and the same codes as the
    in-process calls."""
    small = _run("node", GIB, 300, tmp=str(tmp_path / "a"))
    large = _run("node", 3 * GIB, 10_000, tmp=str(tmp_path / "b"))
    assert small == large
    in_process = _codes(_run("call", 3 * GIB, 10_000))
    for name, code in in_process.items():
        assert small[name][0] == code, (name, small[name], code)
