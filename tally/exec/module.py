"""A module: one part of a chain's rules, and everything it contributes.

A chain's execution rules are composed from a list of modules (custody, roles,
governance, contracts, and later identity, privacy, supervision). Each module declares,
as data, what it adds:

* ``operations`` — transaction kinds, their payload checks and effects;
* ``actions`` — things only the committee may do, proposed and approved through the
  governance module (``gov.propose`` / ``gov.approve``);
* ``host_functions`` — functions contracts may call (``custody.transfer`` ...), so that a
  contract reaches state only through the module that owns it, by the same code that
  transactions use;
* ``genesis`` — the state the module writes when a chain starts.

Nothing registers itself when imported: :mod:`tally.exec.rules` lists the modules of
each protocol version in one place, and :class:`~tally.exec.rules.Rules` checks that no
two modules claim the same name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tally import codec
from tally.exec.operation import Operation

if TYPE_CHECKING:
    from tally.exec.context import TxContext
    from tally.genesis import Genesis
    from tally.vm import HostRequest


@dataclass(frozen=True)
class Action:
    """Something only the committee may do: checked when proposed, applied once more
    than half of the committee approved (and checked again then: state may have moved)."""

    name: str
    parse: Callable[[dict[str, Any]], dict[str, Any]]
    check: Callable[[TxContext, dict[str, Any]], None]
    #: (ctx, args, proposal record, proposal id)
    apply: Callable[[TxContext, dict[str, Any], dict[str, Any], str], None]
    summary: str = ""


@dataclass(frozen=True)
class HostFunction:
    """A function contracts call as ``host(name, *args)``.

    ``call(req, state, *args)`` gets the VM's request and a :class:`HostState` over it
    (decoded values, like the block state transactions see, so a module's own functions
    serve both doors); it raises a TallyError to refuse, and is charged ``cost`` steps on
    top of the VM's own charge."""

    name: str
    call: Callable[..., Any]
    cost: int = 50


class HostState:
    """State as a host function sees it: decoded values over the VM's overlay of the
    contract call (bytes), so its writes revert with the call's."""

    __slots__ = ("req",)

    def __init__(self, req: HostRequest) -> None:
        self.req = req

    def get(self, key: bytes) -> Any:
        raw = self.req.get(key)
        return None if raw is None else codec.decode(raw)

    def put(self, key: bytes, value: Any) -> None:
        self.req.put(key, codec.encode_trusted(value))

    def delete(self, key: bytes) -> None:
        self.req.delete(key)


@dataclass(frozen=True)
class Module:
    name: str
    operations: tuple[Operation, ...] = ()
    actions: tuple[Action, ...] = ()
    host_functions: tuple[HostFunction, ...] = ()
    genesis: Callable[[Genesis], dict[bytes, Any]] | None = None


__all__ = ["Action", "HostFunction", "HostState", "Module"]
