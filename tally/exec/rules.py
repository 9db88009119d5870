"""The rules of each protocol version: the one place that lists what a chain has.

A version's rules are composed from modules (tally.exec.module): their operations, their
committee actions, their contracts' host functions and their genesis writes. To add a
module to the chain, write its package and add it to the list of the version that brings
it — a new version, so that blocks made before it replay by the rules that made them::

    def _v3() -> tuple[Module, ...]:
        return (*_v2(), identity.MODULE)

Like ``ethereum/execution-specs``' one package per fork, every version stays executable
for as long as a chain may hold its blocks; unlike it, versions share the modules that did
not change instead of copying them, and a module whose rule changes gets a new function
(or a new module) in the version that changes it, never an edit of the old one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from tally.exec import (
    claims,
    committee,
    contracts,
    custody,
    governance,
    identity,
    roles,
    sandbox,
    supervision,
    upgrade,
)
from tally.exec.module import Action, HostFunction, Module
from tally.exec.operation import Operation
from tally.exec.state import StateAccess
from tally.genesis import Genesis, Params
from tally.protocol.versions import KNOWN_VERSIONS
from tally.vm import Host

#: Steps that all contract code of one block may use together (tally.exec.context.
#: BlockSteps): a block of the meter's worst case measured 1.87 s for 8,000,000 steps
#: on the reference machine (bench/bench_block_steps.py), so 6,000,000 keeps the longest
#: block near 1.4 s, under issue 13's 2 s with a margin. The template calls take 300 to
#: 3,000 steps (median 288), so a block still holds thousands of them. Every version has
#: it (decision 0022).
BLOCK_STEPS = 6_000_000


@dataclass(frozen=True)
class Rules:
    """One protocol version's rules, composed."""

    version: int
    modules: tuple[Module, ...]
    #: Where the chain parameters come from: genesis (version 1) or state (version 2 on).
    params_of: Callable[[StateAccess, Genesis], Params]
    #: The step budget all contract code of a block shares.
    block_steps: int = BLOCK_STEPS
    operations: dict[str, Operation] = field(init=False)
    actions: dict[str, Action] = field(init=False)
    host_functions: dict[str, HostFunction] = field(init=False)
    host: Host = field(init=False)

    def __post_init__(self) -> None:
        def table(items: Iterable[Any], what: str) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for item in items:
                key = getattr(item, "kind", None) or item.name
                if key in out:
                    raise ValueError(f"two modules claim the {what} {key!r}")
                out[key] = item
            return out

        names = [m.name for m in self.modules]
        if len(set(names)) != len(names):
            raise ValueError(f"a module is listed twice in version {self.version}: {names}")
        object.__setattr__(self, "operations", table(
            (op for m in self.modules for op in m.operations), "operation"))
        object.__setattr__(self, "actions", table(
            (a for m in self.modules for a in m.actions), "committee action"))
        object.__setattr__(self, "host_functions", table(
            (f for m in self.modules for f in m.host_functions), "host function"))
        object.__setattr__(self, "host", contracts.make_host(self.host_functions.values()))

    def param(self, state: StateAccess, genesis: Genesis, name: str) -> int:
        """One chain parameter as the block sees it (cheaper than :attr:`params_of` on the
        per-transaction path: no Params is built)."""
        if self.params_of is _genesis_params:
            return getattr(genesis.params, name)
        doc = state.get(upgrade.PARAMS_KEY)
        return getattr(genesis.params, name) if doc is None else doc[name]

    def genesis_writes(self, genesis: Genesis) -> dict[bytes, Any]:
        writes: dict[bytes, Any] = {}
        for module in self.modules:
            if module.genesis is not None:
                for key, value in module.genesis(genesis).items():
                    if key in writes:
                        raise ValueError(f"two modules write {key!r} at genesis")
                    writes[key] = value
        return writes


def _with_governance(modules: tuple[Module, ...]) -> tuple[Module, ...]:
    """The modules, and governance over the committee actions they contribute."""
    return (*modules, governance.make_module(a for m in modules for a in m.actions))


def _genesis_params(state: StateAccess, genesis: Genesis) -> Params:
    return genesis.params


def _v1() -> Rules:
    return Rules(1, _with_governance((roles.MODULE, custody.MODULE, contracts.MODULE,
                                      upgrade.MODULE_V1)), _genesis_params)


def _v2() -> Rules:
    return Rules(2, _with_governance((roles.MODULE, custody.MODULE, contracts.MODULE,
                                      upgrade.MODULE_V2)), upgrade.state_params)


def _v3() -> Rules:
    """Version 2's modules; what version 3 changes is in the block's commitments (the
    ledger writes a receipts root and a genesis line when ``version >= BOUND_TO_GENESIS``)."""
    return Rules(3, _with_governance((roles.MODULE, custody.MODULE, contracts.MODULE,
                                      upgrade.MODULE_V2)), upgrade.state_params)


def _v4() -> Rules:
    """Members and identities (decision 0028): the identity and claims modules, roles that
    change only by proposal, and the committee of weighted seats in place of governance."""
    modules = (roles.MODULE_V4, identity.MODULE, claims.MODULE, custody.MODULE,
               supervision.MODULE, contracts.MODULE, sandbox.MODULE, upgrade.MODULE_V2)
    return Rules(4, (*modules, committee.make_module(a for m in modules for a in m.actions),
                     governance.VALIDATORS_MODULE), upgrade.state_params)


_BUILDERS: dict[int, Callable[[], Rules]] = {1: _v1, 2: _v2, 3: _v3, 4: _v4}
assert tuple(_BUILDERS) == KNOWN_VERSIONS, "every known version needs its rules"


def rules_for(version: int) -> Rules:
    """The rules of ``version`` (built fresh: each executor holds its own)."""
    builder = _BUILDERS.get(version)
    if builder is None:
        raise ValueError(f"protocol version {version} is unknown to this build "
                         f"(it knows {KNOWN_VERSIONS}); upgrade the node")
    return builder()
