"""The objects guards work on: the meter, and the runtime types contract code sees.

`Meter` holds the running call's budgets; `SafeType` is a builtin type as contracts
see it; `ContractInstance` and `ContextView` are ``self`` and ``ctx``. The type
tuples and `size_of` are shared by every guard family.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ..compiler import CTX_FIELDS
from ..errors import Forbidden


class Meter:
    """The budgets of the running call. One per VM; the VM resets it per call."""

    __slots__ = ("steps", "memory", "frames", "read_only", "budget")

    def __init__(self) -> None:
        self.steps = 0
        self.memory = 0
        self.frames = 0
        self.read_only = 0
        self.budget = 0

    def reset(self, steps: int, memory: int) -> None:
        self.steps = steps
        self.budget = steps
        self.memory = memory
        self.frames = 0
        self.read_only = 0

    def save(self) -> tuple[int, int, int, int, int]:
        return (self.steps, self.memory, self.frames, self.read_only, self.budget)

    def restore(self, state: tuple[int, int, int, int, int]) -> None:
        self.steps, self.memory, self.frames, self.read_only, self.budget = state


PLAIN = object()  # method table marker: return the bound method as is
_NoneType = type(None)
_SEQUENCES = (str, bytes, list, tuple)
_SIZED = (str, bytes, list, tuple, dict, range)
_CONTAINERS = (list, tuple, dict)
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def text_bytes(s: str) -> int:
    """A deterministic bound of the bytes ``s`` takes, in UTF-8 and in CPython
    (which stores 1, 2 or 4 bytes a character): its length if it is ASCII, else
    four times its length. ``isascii`` is O(1) on a str."""
    return len(s) if s.isascii() else 4 * len(s)


def size_of(x: Any) -> int:
    """Estimated bytes of a value's own storage (not of the values it refers to):
    str by `text_bytes`, bytes by length, 8 a list slot, 48 a dict entry."""
    t = type(x)
    if t is str:
        return len(x) if x.isascii() else 4 * len(x)
    if t is bytes:
        return len(x)
    if t is list or t is tuple:
        return 8 * len(x)
    if t is dict:
        return 48 * len(x)
    return 0


class SafeType:
    """A builtin type as contracts see it: callable through a guard, usable in
    ``isinstance`` and storage declarations, with a few allow-listed class methods."""

    __slots__ = ("name", "pytype", "impl", "attrs")

    def __init__(
        self, name: str, pytype: type, impl: Callable[..., Any], attrs: dict[str, Any]
    ) -> None:
        self.name = name
        self.pytype = pytype
        self.impl = impl
        self.attrs = attrs

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.impl(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<type {self.name}>"


class ContractInstance:
    """``self`` in a contract: one deployed contract (name + code) bound to a VM.

    The VM makes one subclass per deployed contract whose class attributes are
    exactly the contract's members: map proxies, Var slots (data descriptors that
    read and write storage), methods and constants. Contract code reads
    ``self.<member>`` as a plain attribute (the compiler checked the name), so
    nothing else may be reachable: our own state lives in ``_`` slots, which
    contract code cannot name. (No ``__getattr__``: a class with one has every
    attribute read go through it, ``self.<member>`` included. The VM's handler for
    reads through ``_ga`` words a missing attribute; see :func:`instance_getattr`.)
    """

    __slots__ = ("_name", "_compiled", "_functions")

    def __init__(self, name: str, compiled: Any, functions: dict[str, Callable[..., Any]]) -> None:
        self._name = name
        self._compiled = compiled
        self._functions = functions


def instance_getattr(obj: ContractInstance, name: str) -> Any:
    """``_ga(x, name)`` for ``x`` a contract instance (``x = self; x.name``)."""
    try:
        return getattr(obj, name)
    except AttributeError:
        raise AttributeError(f"contract {obj._name} has no attribute {name!r}") from None


class ContextView:
    """The ``ctx`` object in contracts: reads the frame that is running now.

    Contract code reads ``ctx.<field>`` as a plain attribute (the compiler checked
    the name); each field is a property, and nothing else is public: a read
    through ``_ga`` (``c = ctx; c.name``) is answered by :func:`context_getattr`,
    which serves the fields only.
    """

    __slots__ = ("_rt",)

    def __init__(self, rt: Any) -> None:
        self._rt = rt

    caller = property(lambda self: self._rt.frame.caller)
    origin = property(lambda self: self._rt.frame.origin)
    contract = property(lambda self: self._rt.frame.contract)
    height = property(lambda self: self._rt.frame.height)
    time_ms = property(lambda self: self._rt.frame.time_ms)
    tx_id = property(lambda self: self._rt.frame.tx_id)


def context_getattr(obj: ContextView, name: str) -> Any:
    """``_ga(c, name)`` for ``c`` the ctx object: its fields, nothing else (once its
    class attributes were reachable this way, a frozenset among them)."""
    if name in CTX_FIELDS:
        return getattr(obj, name)
    raise Forbidden(f"ctx has no attribute {name!r}")


_NO_MEMBER = object()


def scrub(message: str) -> str:
    """Error text without object addresses, which differ between nodes."""
    return _ADDRESS.sub("", message)[:300]
