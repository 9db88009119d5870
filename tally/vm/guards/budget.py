"""The budget primitives every guard charges through: steps, frames, memory.

`make_budget` binds them to one meter; each guard family takes the `Budget` and
copies the functions it calls into its own locals, so the guards it builds reach
them through their closure, as fast as before the families were split.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from ..errors import MemoryLimitExceeded, OutOfSteps, RecursionLimitExceeded
from ..limits import Limits
from .runtime import _CONTAINERS, _SIZED, Meter, size_of


class Budget(NamedTuple):
    """The primitives of one meter (see `make_budget`)."""

    step: Callable[[int], None]
    tick: Callable[[int], bool]
    entered: Callable[[], None]
    lambda_enter: Callable[[int], None]
    lambda_exit: Callable[[None, Any], Any]
    alloc: Callable[[int], None]
    check_int: Callable[[Any], Any]
    deep: Callable[[Any], int]
    materialize: Callable[[Any], list[Any]]
    sized: Callable[[Any], Any]
    walkable: Callable[[Any], Any]
    spread: Callable[[Any], Any]


def make_budget(m: Meter, limits: Limits) -> Budget:
    """Charge steps (``step``, ``tick``), frames (``entered``, the lambda pair) and
    memory (``alloc``), and bound integers (``check_int``), all on meter ``m``; and
    the helpers that charge for walking a value (``deep``, ``materialize``, ``sized``,
    ``walkable``, ``spread``)."""
    max_bits = limits.max_int_bits
    int_lim = 1 << max_bits
    max_frames = limits.max_frames

    def out_of_steps() -> OutOfSteps:
        return OutOfSteps(f"step budget of {m.budget} exhausted")

    def step(n: int) -> None:
        m.steps -= n
        if m.steps < 0:
            raise out_of_steps()

    def tick(n: int) -> bool:
        m.steps -= n
        if m.steps < 0:
            raise out_of_steps()
        return True

    # A function entry charges its weight and counts a frame; its exit uncounts the
    # frame. The compiler writes both out on the meter `_m` in each function (and
    # read_only += 1 / -= 1 around a view's body) and calls `_entered` only when a
    # check fails; a lambda calls `_lamenter` and `_lamexit`.

    def entered() -> None:
        """Raise the error of a function entry whose check failed."""
        if m.steps < 0:
            raise out_of_steps()
        raise RecursionLimitExceeded(f"more than {max_frames} nested contract frames")

    def lambda_enter(n: int) -> None:
        m.steps -= n
        m.frames += 1
        if m.steps < 0 or m.frames > max_frames:
            entered()

    def lambda_exit(_: None, value: Any) -> Any:
        m.frames -= 1
        return value

    def alloc(nbytes: int) -> None:
        m.memory -= nbytes
        if m.memory < 0:
            raise MemoryLimitExceeded(f"memory budget of {limits.max_memory} bytes exhausted")
        if nbytes >= 64:
            step(nbytes >> 6)

    def check_int(r: Any) -> Any:
        if type(r) is int and not -int_lim < r < int_lim:
            raise MemoryLimitExceeded(f"integer larger than {max_bits} bits")
        return r

    def deep(x: Any) -> int:
        """Nodes in a nested value, counted without recursion and cut off once the
        count passes the steps left: the caller is about to charge it anyway."""
        limit = m.steps + 1
        count = 0
        stack = [x]
        while stack:
            v = stack.pop()
            t = type(v)
            count += 1
            if t is list or t is tuple:
                count += len(v)
                stack.extend(c for c in v if type(c) in _CONTAINERS)
            elif t is dict:
                count += len(v)
                stack.extend(c for c in v.values() if type(c) in _CONTAINERS)
            elif t is str or t is bytes:
                count += len(v) >> 6
            if count > limit:
                break
        return count

    def materialize(it: Any) -> list[Any]:
        """A list of ``it``'s items, charged per item: the only way a lazy iterable
        reaches a builtin that would otherwise loop over it in C, unmetered."""
        t = type(it)
        if t in _SIZED:
            n = len(it)
            alloc(8 * n)
            step(n >> 3)
            return list(it)
        out: list[Any] = []
        append = out.append
        for item in it:
            m.steps -= 1
            m.memory -= 64
            if m.steps < 0:
                raise out_of_steps()
            if m.memory < 0:
                raise MemoryLimitExceeded(f"memory budget of {limits.max_memory} bytes exhausted")
            append(item)
        return out

    def sized(it: Any) -> Any:
        """``it`` itself if it has a length (charged for a copy), else a list of it."""
        if type(it) in _SIZED:
            n = len(it)
            alloc(8 * n)
            step(n >> 3)
            return it
        return materialize(it)

    def walkable(it: Any) -> Any:
        """``it`` for a builtin that only walks it once (no copy): charged per item."""
        if type(it) in _SIZED:
            step(len(it))
            return it
        return materialize(it)

    def spread(x: Any) -> Any:
        if type(x) is dict:
            alloc(size_of(x))
            return x
        return sized(x)

    return Budget(
        step, tick, entered, lambda_enter, lambda_exit, alloc, check_int, deep,
        materialize, sized, walkable, spread,
    )  # fmt: skip
